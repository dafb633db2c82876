"""Helpers shared by every kernel module of :mod:`nnbook.kernels`.

* :func:`xp` -- the array module kernels take: CuPy on a GPU, NumPy on the simulator.
* :func:`to_device`, :func:`to_host`, :func:`empty`, :func:`poisoned` -- move and allocate.
* :func:`cdiv`, :func:`grid_for` -- launch geometry for ragged sizes.
* :func:`time_kernel` -- median time of a callable (CUDA events on a GPU).
* :func:`rel_error`, :func:`assert_close` -- the checks every ``check()`` uses.
"""
from __future__ import annotations

import math
import time

import numpy as np

from . import cuda, on_simulator

__all__ = [
    "cuda", "on_simulator", "xp", "to_device", "to_host", "empty", "poisoned",
    "cdiv", "grid_for", "time_kernel", "rel_error", "assert_close", "random_array",
    "sync",
]


def xp():
    """Array module of the device arrays: ``cupy`` on a GPU, ``numpy`` on the simulator."""
    if on_simulator():
        return np
    import cupy  # noqa: PLC0415
    return cupy


def to_device(a, dtype=np.float32):
    """Contiguous copy of ``a`` on the device with ``dtype`` (on the simulator a
    NumPy copy, never a view, so kernels cannot write into the caller's array)."""
    if on_simulator():
        return np.array(_host(a), dtype=dtype, order="C", copy=True)
    import cupy  # noqa: PLC0415
    return cupy.ascontiguousarray(cupy.asarray(a, dtype=dtype))


def _host(a):
    if hasattr(a, "get") and type(a).__module__.startswith("cupy"):
        return a.get()
    return a


def to_host(a) -> np.ndarray:
    """NumPy array with the values of a device array (a copy from the GPU)."""
    return np.asarray(_host(a))


def empty(shape, dtype=np.float32):
    """Uninitialised device array."""
    return xp().empty(shape, dtype=dtype)


def poisoned(shape, dtype=np.float32):
    """Device array filled with NaN: a kernel that skips an element leaves a NaN behind."""
    out = xp().empty(shape, dtype=dtype)
    out[...] = np.nan
    return out


@cuda.jit(device=True, inline=True)
def unravel4(i, B, C, D):
    """The indices (a, b, c, d) of flat index ``i`` in a C-order array of shape
    (·, B, C, D).  The last index varies fastest, so consecutive threads get
    consecutive ``d``: their loads and stores of the innermost axis coalesce."""
    d = i % D
    t = i // D
    c = t % C
    t = t // C
    return t // B, t % B, c, d


def cdiv(a: int, b: int) -> int:
    """Ceiling division: number of tiles of size ``b`` needed to cover ``a``."""
    return -(-int(a) // int(b))


def grid_for(shape, block):
    """Blocks per grid dimension so that ``block`` tiles cover ``shape`` (ragged edges included).

    >>> grid_for((33, 7), (16, 16))
    (3, 1)
    """
    if isinstance(shape, int):
        shape = (shape,)
    if isinstance(block, int):
        block = (block,)
    if len(shape) != len(block):
        raise ValueError(f"grid_for: shape {shape} and block {block} need the same length")
    return tuple(max(1, cdiv(s, b)) for s, b in zip(shape, block))


def sync():
    """Wait for queued device work (no-op on the simulator)."""
    if not on_simulator():
        cuda.synchronize()


def time_kernel(fn, *args, n_warmup: int = 3, n_repeat: int = 20) -> float:
    """Median seconds per call of ``fn(*args)``.

    On a GPU: ``cupyx.profiler.benchmark`` (CUDA events around each call) after
    ``n_warmup`` untimed calls (these also trigger numba's JIT compilation).
    On the simulator: host ``perf_counter``; meaningless as a speed, kept so
    ``benchmark()`` functions run everywhere.
    """
    for _ in range(n_warmup):
        fn(*args)
    if on_simulator():
        ts = []
        for _ in range(n_repeat):
            t = time.perf_counter()
            fn(*args)
            ts.append(time.perf_counter() - t)
        return float(np.median(ts))
    from cupyx.profiler import benchmark as _bench  # noqa: PLC0415
    res = _bench(fn, args, n_repeat=n_repeat, n_warmup=0)
    return float(np.median(res.gpu_times[0]))


def rel_error(out, ref) -> float:
    """‖out − ref‖ / ‖ref‖ in float64 (Frobenius); NaN anywhere gives inf."""
    o = np.asarray(to_host(out), dtype=np.float64)
    r = np.asarray(to_host(ref), dtype=np.float64)
    if o.shape != r.shape:
        raise ValueError(f"rel_error: shapes differ, out {o.shape} vs ref {r.shape}")
    if not np.all(np.isfinite(o)):
        return math.inf
    den = np.linalg.norm(r)
    num = np.linalg.norm(o - r)
    return float(num / den) if den > 0 else float(num)


def assert_close(out, ref, tol: float, what: str = "kernel") -> float:
    """Raise AssertionError unless ``rel_error(out, ref) <= tol``; return the error."""
    err = rel_error(out, ref)
    if not err <= tol:
        raise AssertionError(f"{what}: relative error {err:.3e} > {tol:.1e}")
    return err


def random_array(rng, shape, dtype=np.float32, low=-1.0, high=1.0) -> np.ndarray:
    """Host array of uniform values (never zeros: they hide unwritten outputs)."""
    return rng.uniform(low, high, size=shape).astype(dtype)


def alias_target(out, *inputs):
    """Where a kernel should write ``out`` when ``out`` may alias an input.

    On a GPU in-place elementwise kernels are fine.  The simulator copies every
    NumPy argument to a fake device array and back after the launch, so an
    output that shares memory with an input could be overwritten by the input's
    stale copy: there a temporary is returned (copy it into ``out`` afterwards).
    """
    if on_simulator() and any(a is not None and np.shares_memory(out, a) for a in inputs):
        return np.empty_like(out)
    return out
