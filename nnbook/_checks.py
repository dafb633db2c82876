"""Argument checks shared by the public API.

Each raises ``TypeError`` or ``ValueError`` whose message names the argument,
what was expected and what was given, so mistakes surface at the call that
made them instead of as a NaN or an IndexError deep inside.
"""
from __future__ import annotations

import numpy as np

from .backend import get_xp


def describe(a) -> str:
    shape = getattr(a, "shape", None)
    dtype = getattr(a, "dtype", None)
    if shape is not None:
        return f"{type(a).__name__} of shape {tuple(shape)} and dtype {dtype}"
    return f"{type(a).__name__}"


_FINITE_CHUNK = 1 << 18     # elements per block of all_finite: 1 MiB of float32, cache-sized


def all_finite(a) -> bool:
    """True if a float array holds no NaN or inf (reductions, no temporary: NaN
    propagates through min/max, and +-inf shows up in one of them).

    A large contiguous float32/float64 NumPy array first gets one BLAS dot
    product with itself, sum_i a_i^2: every term is >= 0 or NaN, so nothing
    cancels, and a finite result proves every entry finite (one multithreaded
    trip through memory: about 5 ms for the 188 MB of MNIST's training images).
    A NaN/inf result can also mean that the squares of huge finite numbers
    overflowed, so it is settled block by block with min/max; each block is
    read from cache by the second reduction.
    """
    if a.size == 0:
        return True
    xp = get_xp()
    if xp is np and a.size > _FINITE_CHUNK and a.flags.c_contiguous:
        flat = a.reshape(-1)
        if a.dtype in (np.float32, np.float64):
            with np.errstate(all="ignore"):
                if np.isfinite(np.dot(flat, flat)):
                    return True
        for i in range(0, flat.size, _FINITE_CHUNK):
            block = flat[i:i + _FINITE_CHUNK]
            if not (np.isfinite(block.min()) and np.isfinite(block.max())):
                return False
        return True
    return bool(xp.isfinite(a.min())) and bool(xp.isfinite(a.max()))


def check_array(name: str, a, *, ndim=None, floating=False, finite=True, nonempty=True):
    """Check that ``a`` is an array of the active backend with the given rank."""
    xp = get_xp()
    if not isinstance(a, xp.ndarray):
        if isinstance(a, np.ndarray) and xp is not np:
            raise TypeError(f"{name}: expected a {xp.__name__} array on the active backend, "
                            f"got a numpy array (move it with nnbook.asarray)")
        raise TypeError(f"{name}: expected an array, got {describe(a)}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if a.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            hint = ""
            if allowed == (2,) and a.ndim > 2:
                hint = ("; for images into dense layers, flatten them first: "
                        f"{name}.reshape(len({name}), -1) or nnbook.data.flatten({name})")
            raise ValueError(f"{name}: expected a {want} array, got {describe(a)}{hint}")
    if nonempty and a.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got {describe(a)}")
    if floating and a.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point array (float32 or float64), "
                        f"got dtype {a.dtype}; convert with .astype(np.float32)")
    if finite and a.dtype.kind == "f" and not all_finite(a):
        bad = int((~xp.isfinite(a)).sum())
        raise ValueError(f"{name}: expected finite values, got {bad} NaN/inf entries in {describe(a)}")
    return a


def check_dtype_match(name: str, a, dtype) -> None:
    if a.dtype != dtype:
        raise TypeError(
            f"{name}: dtype {a.dtype} does not match the layer's parameters ({dtype}); "
            f"convert the input with .astype({np.dtype(dtype).name}) or build the layer "
            f"with dtype={np.dtype(dtype).name!r} to match")


def check_int(name: str, v, *, minimum=None):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(v).__name__} {v!r}")
    if minimum is not None and v < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {v}")
    return int(v)


def check_positive(name: str, v, *, allow_zero=False):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number, got {type(v).__name__} {v!r}")
    v = float(v)
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        want = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: expected a finite number {want}, got {v}")
    return v


def check_choice(name: str, v, choices):
    if v not in choices:
        raise ValueError(f"{name}: expected one of {tuple(choices)}, got {v!r}")
    return v
