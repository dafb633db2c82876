"""Run ``mpiexec -n p python ...`` from Python (tests, benchmarks and the book's
notebook, which itself runs in one process).

The mpiexec used is the one installed beside this Python (``pip install mpich``
puts it in the virtual environment's ``bin``), else the first on ``PATH``.
Each process gets ``threads`` BLAS threads (default 1: p processes on p cores).
A run that exceeds its timeout is killed with all its processes.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

__all__ = ["mpiexec_path", "available", "run", "Result"]


def mpiexec_path():
    """The ``mpiexec`` beside this Python, else the one on PATH, else None."""
    here = Path(sys.executable).parent / "mpiexec"
    if here.exists():
        return str(here)
    return shutil.which("mpiexec")


def available():
    """``(True, "")`` if mpi4py and an ``mpiexec`` are installed, else ``(False, why)``."""
    from .comm import mpi_available  # noqa: PLC0415
    ok, why = mpi_available()
    if not ok:
        return ok, why
    if mpiexec_path() is None:
        return False, "no mpiexec found (pip install mpich, or install an MPI library)"
    return True, ""


@dataclasses.dataclass
class Result:
    """What a run printed and how it ended."""
    args: list
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    seconds: float

    def check(self):
        """Raise RuntimeError (with the output) unless the run ended with status 0."""
        if self.timed_out or self.returncode != 0:
            how = "timed out" if self.timed_out else f"exited with status {self.returncode}"
            raise RuntimeError(f"{' '.join(self.args)} {how}\n--- stdout\n{self.stdout[-3000:]}"
                               f"\n--- stderr\n{self.stderr[-3000:]}")
        return self


def run(n, args, timeout=120, threads=1, env=None, cwd=None):
    """Run ``mpiexec -n n <this python> *args`` and return a :class:`Result`.
    ``args``: what follows ``python`` (``["-m", "nnbook", "train", ...]`` or a script
    and its arguments)."""
    import time  # noqa: PLC0415
    exe = mpiexec_path()
    if exe is None:
        raise RuntimeError("no mpiexec found (pip install mpich)")
    cmd = [exe, "-n", str(int(n)), sys.executable, *map(str, args)]
    e = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        e[var] = str(threads)
    e.setdefault("PYTHONUNBUFFERED", "1")
    e.update(env or {})
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=e, cwd=cwd, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)          # mpiexec and every rank it started
        out, err = proc.communicate()
        timed_out = True
    return Result(cmd, proc.returncode, out, err, timed_out, time.perf_counter() - t0)
