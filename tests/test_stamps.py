"""Every results file can be rerun: it stamps the git commit and the BLAS kernel.

:func:`nnbook.bench._util.stamp` is the one helper every writer of
``nnbook/results/*.json`` uses; :mod:`nnbook.bench.report` renders what it
recorded, for files of any age.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import nnbook
from nnbook import results
from nnbook.bench import _util as U
from nnbook.bench import report as R

ROOT = Path(nnbook.__file__).resolve().parent.parent      # the directory holding nnbook/
BLAS_KEYS = {"internal_api", "version", "architecture", "threading_layer", "num_threads",
             "filepath"}


def _git(*args, cwd=ROOT):
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True,
                          check=True, env=dict(os.environ, GIT_OPTIONAL_LOCKS="0")).stdout.strip()


def _in_checkout():
    if shutil.which("git") is None:
        return False
    try:
        return Path(_git("rev-parse", "--show-toplevel")).resolve() == ROOT
    except subprocess.CalledProcessError:
        return False


def test_stamp_has_the_keys_and_is_json():
    s = U.stamp("python something.py --flag")
    assert {"date", "command", "git_commit", "git_dirty", "blas"} <= set(s)
    assert s["command"] == "python something.py --flag"
    assert s["git_commit"] is None or (len(s["git_commit"]) == 40
                                       and isinstance(s["git_dirty"], (bool, type(None))))
    b = s["blas"]
    assert isinstance(b, (str, list))
    if isinstance(b, list):
        for pool in b:
            assert set(pool) == BLAS_KEYS
            assert pool["filepath"] is None or os.sep not in pool["filepath"]   # a basename
    assert json.loads(json.dumps(s)) == s


def test_blas_lists_numpys_library_and_kernel():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    b = U.blas_info()
    assert isinstance(b, list)
    apis = [p["internal_api"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    assert [p["internal_api"] for p in b] == apis
    for p in b:
        if p["internal_api"] == "openblas":
            assert p["architecture"]           # the kernel, e.g. Haswell or SkylakeX
        assert isinstance(p["num_threads"], int)


def test_stamp_says_unknown_without_threadpoolctl(monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)     # import now raises ImportError
    with pytest.raises(ImportError):
        import threadpoolctl  # noqa: F401
    assert U.blas_info() == "unknown (threadpoolctl not installed)"
    s = U.stamp("x")
    assert s["blas"] == "unknown (threadpoolctl not installed)"
    assert "git_commit" in s
    assert "BLAS unknown (threadpoolctl not installed)" in R.provenance(s)


@pytest.mark.skipif(not _in_checkout(), reason="nnbook is not imported from a git checkout")
def test_commit_is_the_checkouts_head():
    s = U.stamp("x")
    assert s["git_commit"] == _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    assert s["git_dirty"] is dirty


def test_outside_a_checkout_commit_is_none(tmp_path, monkeypatch):
    assert U.git_revision(tmp_path) == {"git_commit": None, "git_dirty": None}
    assert U.git_revision(tmp_path / "does-not-exist") == {"git_commit": None, "git_dirty": None}
    monkeypatch.setenv("PATH", str(tmp_path))                      # no git at all
    assert U.git_revision(ROOT) == {"git_commit": None, "git_dirty": None}
    s = U.stamp("x")
    assert s["git_commit"] is None and s["git_dirty"] is None


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_an_installed_copy_inside_another_repository_has_no_commit(tmp_path):
    """site-packages inside some project's tree (a .venv) is not nnbook's checkout."""
    repo = tmp_path / "project"
    inner = repo / ".venv" / "site-packages"
    inner.mkdir(parents=True)
    _git("init", "-q", cwd=repo)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x",
         cwd=repo)
    assert U.git_revision(inner) == {"git_commit": None, "git_dirty": None}
    got = U.git_revision(repo)
    assert got["git_commit"] == _git("rev-parse", "HEAD", cwd=repo) and got["git_dirty"] is False
    (repo / "f.txt").write_text("a")
    _git("add", "f.txt", cwd=repo)
    assert U.git_revision(repo)["git_dirty"] is True


def test_a_writer_stamps_its_results_file(tmp_path, monkeypatch):
    from nnbook.bench import peak
    monkeypatch.setattr(peak, "limit_threads", lambda n: None)   # leave this process's pools
    out = tmp_path / "peak.json"
    peak.main(["--sizes", "32", "--repeats", "1", "--out", str(out)])
    rec = json.loads(out.read_text())
    assert {"git_commit", "git_dirty", "blas", "date", "command"} <= set(rec)
    assert rec["git_commit"] == U.git_revision()["git_commit"]


WRITERS = ["nnbook/bench/mlp.py", "nnbook/bench/lenet5.py", "nnbook/bench/peak.py",
           "nnbook/bench/gpu.py", "nnbook/bench/cudnn.py", "benchmarks/record_mlp_mnist.py",
           "benchmarks/record_lenet5.py", "benchmarks/record_optimizers.py",
           "benchmarks/record_metaheuristics.py", "benchmarks/time_notebooks.py"]


@pytest.mark.parametrize("path", WRITERS)
def test_every_results_writer_uses_the_one_stamp(path):
    f = ROOT / path
    if not f.exists():
        pytest.skip(f"{path} is not here (an installed copy)")
    src = f.read_text()
    assert "stamp(" in src
    assert "datetime.now(" not in src and "date.today(" not in src   # no hand-made stamp


# ----------------------------------------------------------------------------- rendering
NEW = {"date": "2026-12-01T10:00:00+00:00", "command": "python benchmarks/record_mlp_mnist.py",
       "git_commit": "0123456789abcdef0123456789abcdef01234567", "git_dirty": False,
       "blas": [{"internal_api": "openblas", "version": "0.3.31", "architecture": "Haswell",
                 "threading_layer": "pthreads", "num_threads": 2,
                 "filepath": "libscipy_openblas64_.so"}],
       "cpu": "AMD EPYC", "numpy": "2.4.6"}


def test_report_shows_commit_and_kernel():
    text = "\n".join(R.stamp_lines(NEW))
    assert "0123456789ab" in text and "uncommitted" not in text
    assert "openblas 0.3.31, Haswell kernel, 2 threads (libscipy_openblas64_.so)" in text
    assert "uncommitted" in R.provenance({**NEW, "git_dirty": True})
    assert "not run from a git checkout" in R.provenance({**NEW, "git_commit": None,
                                                          "git_dirty": None})
    # stamped under "meta" (the optimizer and metaheuristics records)
    assert "Haswell kernel" in "\n".join(R.stamp_lines({"meta": NEW, "runs": []}))
    buf = io.StringIO()
    R.show_stamp(NEW, file=buf)
    assert "      commit: 0123456789ab" in buf.getvalue()


def test_report_renders_old_files_without_the_new_keys():
    old = {k: v for k, v in NEW.items() if k not in ("git_commit", "git_dirty", "blas")}
    lines = R.stamp_lines(old)
    assert lines and not any("commit:" in l or "blas:" in l for l in lines)
    assert R.provenance(old) == ""
    cud = {"env": {"device": "H200", "compute_capability": "9.0", "driver": "1", "cuda_runtime": "2",
                   "cupy": "13", "numba_cuda": "0.2"},
           "settings": {"repeats": 3, "warmup": 1}, "date": "2026", "command": "c"}
    assert "commit" not in R.header(cud)
    assert "commit 0123456789ab" in R.header({**cud, **NEW, "command": "c"})
    assert "Haswell kernel" in R.header({**cud, **NEW, "command": "c"})


@pytest.mark.parametrize("name", results.available())
def test_every_recorded_file_renders(name):
    r = results.load(name)
    lines = R.stamp_lines(r)
    assert isinstance(lines, list)
    R.provenance(r)
