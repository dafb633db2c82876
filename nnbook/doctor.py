"""``nb.doctor()``: what this machine offers nnbook, in one report."""
from __future__ import annotations

import importlib
import os
import platform
import sys


def _version(mod):
    try:
        return importlib.import_module(mod).__version__
    except Exception:  # noqa: BLE001
        return None


def report() -> dict:
    """The facts as a dict (what :func:`doctor` prints)."""
    import numpy as np  # noqa: PLC0415

    from .backend import backend_name, gpu_available  # noqa: PLC0415
    from .data import mnist_status  # noqa: PLC0415
    info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "cupy": _version("cupy"),
        "numba": _version("numba"),
        "numba-cuda": _version("numba_cuda"),
        "torch (reference only)": _version("torch"),
        "cuda_driver": None, "cuda_runtime": None, "gpu": None,
    }
    ok = gpu_available()
    if ok:
        import cupy  # noqa: PLC0415
        rt = cupy.cuda.runtime
        info["cuda_driver"] = rt.driverGetVersion()
        info["cuda_runtime"] = rt.runtimeGetVersion()
        info["gpu"] = rt.getDeviceProperties(0)["name"].decode()
    info["gpu_works"] = ok
    info["auto_backend"] = "cupy" if ok else "numpy"
    info["active_backend"] = backend_name()
    info["simulator"] = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
    info["mnist"] = mnist_status()
    return info


def doctor(file=None) -> dict:
    """Print an environment report (Python, NumPy, CuPy, CUDA, GPU, numba-cuda,
    the backend ``use("auto")`` would pick, MNIST) and return it as a dict."""
    info = report()
    width = max(map(len, info))
    lines = [f"{k:<{width}}  {'-' if v is None else v}" for k, v in info.items()]
    print("nnbook doctor\n" + "\n".join(lines), file=file or sys.stdout)
    return info
