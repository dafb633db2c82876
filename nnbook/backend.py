"""Array backend: NumPy on the CPU, CuPy on the GPU, one code path.

Every array operation in :mod:`nnbook` takes its module from :func:`get_xp`
(re-exported as ``nnbook.xp``), so the same layer code runs on either device.
This is the only module of the package that imports CuPy.

>>> import nnbook as nb
>>> nb.use("numpy").__name__
'numpy'
"""
from __future__ import annotations

import os
import random

import numpy as np

__all__ = [
    "use", "get_xp", "backend_name", "gpu_available", "to_numpy", "asarray",
    "seed", "get_rng", "set_default_dtype", "get_default_dtype",
]

_BACKENDS = ("numpy", "cupy", "auto")
_state = {"name": "numpy", "xp": np, "dtype": np.dtype(np.float32),
          "seed": None, "rng": np.random.default_rng()}


def gpu_available() -> bool:
    """True if CuPy imports and can run a kernel on a CUDA device."""
    try:
        import cupy  # noqa: PLC0415
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return False
        (cupy.arange(4) * 2).sum().item()  # a real kernel launch
        return True
    except Exception:  # ImportError, CUDARuntimeError, driver problems ...
        return False


def use(name: str = "auto"):
    """Select the array backend and return its module.

    ``"numpy"``: CPU.  ``"cupy"``: GPU (raises RuntimeError if CuPy or the GPU
    does not work).  ``"auto"``: CuPy only if a GPU really works, else NumPy.
    The environment variable ``NNBOOK_BACKEND`` sets the starting choice.
    """
    if not isinstance(name, str) or name.lower() not in _BACKENDS:
        raise ValueError(f"backend name: expected one of {_BACKENDS}, got {name!r}")
    name = name.lower()
    if name == "auto":
        name = "cupy" if gpu_available() else "numpy"
    if name == "cupy":
        if not gpu_available():
            raise RuntimeError(
                "backend 'cupy' was requested but no working CUDA GPU was found "
                "(install the extra: pip install -e '.[gpu]'; run `python -m nnbook doctor`)")
        import cupy  # noqa: PLC0415
        _state.update(name="cupy", xp=cupy)
    else:
        _state.update(name="numpy", xp=np)
    if _state["seed"] is not None:  # keep seeding consistent across a switch
        seed(_state["seed"])
    return _state["xp"]


def get_xp():
    """The active array module (``numpy`` or ``cupy``)."""
    return _state["xp"]


def backend_name() -> str:
    """The active array module's name: "numpy" or "cupy"."""
    return _state["name"]


def to_numpy(a) -> np.ndarray:
    """Return a NumPy copy-or-view of ``a`` on the host (copies from the GPU)."""
    if isinstance(a, np.ndarray):
        return a
    if hasattr(a, "get") and type(a).__module__.startswith("cupy"):
        return a.get()
    return np.asarray(a)


def asarray(a, dtype=None):
    """Move ``a`` to the active backend (host-to-device copy on the GPU)."""
    xp = get_xp()
    if xp is np:
        return np.asarray(to_numpy(a), dtype=dtype)
    return xp.asarray(a, dtype=dtype)


def seed(value: int) -> None:
    """Seed every random generator nnbook uses (its own, NumPy's, Python's, CuPy's)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"seed: expected an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"seed: expected a non-negative int, got {value}")
    value = int(value)
    _state["seed"] = value
    _state["rng"] = np.random.default_rng(value)
    random.seed(value)
    np.random.seed(value % 2**32)
    if _state["name"] == "cupy":
        import cupy  # noqa: PLC0415
        cupy.random.seed(value)


def get_rng() -> np.random.Generator:
    """nnbook's host random generator (reset by :func:`seed`).

    Random numbers are always drawn on the host and then moved to the active
    backend, so a seed gives the same weights and batch order on CPU and GPU.
    """
    return _state["rng"]


def set_default_dtype(dtype) -> None:
    """Set the floating dtype new parameters get: float32 (default) or float64."""
    d = np.dtype(dtype)
    if d not in (np.float32, np.float64):
        raise ValueError(f"dtype: expected float32 or float64, got {d}")
    _state["dtype"] = d


def get_default_dtype() -> np.dtype:
    """The dtype new layers get their parameters in (float32 unless changed by
    :func:`set_default_dtype`)."""
    return _state["dtype"]


_env = os.environ.get("NNBOOK_BACKEND")
if _env:
    use(_env)
