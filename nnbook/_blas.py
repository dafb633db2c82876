"""NumPy's own BLAS, called directly for one fused operation: ``W -= x.T @ d``.

Plain SGD with a pre-scaled gradient updates a dense layer's weights by
``W -= x.T @ d``.  Written with NumPy this is two passes over ``W``-sized memory
(``g = x.T @ d`` into a buffer, then ``W -= g``).  BLAS's GEMM computes
``C = alpha * A @ B + beta * C`` in one pass, so with ``alpha = -1, beta = 1``
the update happens inside the matrix product.  NumPy does not expose ``beta``,
so this module finds the CBLAS library that NumPy itself loaded (same library,
same thread pool: no second pool competing for the cores) and calls its
``cblas_?gemm`` through ctypes.

If the library or the symbol cannot be found (a NumPy built against another
BLAS, an unusual platform) :func:`gemm_tn_update` returns ``False`` and the
caller does the two-pass update instead; results agree to rounding.
"""
from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_FUNCS = None   # {dtype: ctypes function} once looked up; {} if unavailable


def _candidates():
    base = os.path.dirname(np.__file__)
    pats = [os.path.join(base + ".libs", "*openblas*"),           # Linux wheels
            os.path.join(base, ".dylibs", "*openblas*"),           # macOS wheels
            os.path.join(base + ".libs", "*blas*")]
    seen = []
    for p in pats:
        for f in sorted(glob.glob(p)):
            if f not in seen and (f.endswith(".so") or ".so." in f or f.endswith(".dylib")):
                seen.append(f)
    return seen


def _lookup():
    global _FUNCS
    if _FUNCS is not None:
        return _FUNCS
    _FUNCS = {}
    if os.environ.get("NNBOOK_NO_FUSED_BLAS"):
        return _FUNCS
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)   # already loaded by NumPy: the same handle and pool
        except OSError:
            continue
        for prefix, suffix, itype in (("scipy_cblas_", "64_", ctypes.c_int64),
                                      ("cblas_", "64_", ctypes.c_int64),
                                      ("scipy_cblas_", "", ctypes.c_int),
                                      ("cblas_", "", ctypes.c_int)):
            try:
                fs = {np.dtype(np.float32): getattr(lib, f"{prefix}sgemm{suffix}"),
                      np.dtype(np.float64): getattr(lib, f"{prefix}dgemm{suffix}")}
            except AttributeError:
                continue
            for dt, f in fs.items():
                real = ctypes.c_float if dt == np.float32 else ctypes.c_double
                f.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, itype, itype, itype,
                              real, ctypes.c_void_p, itype, ctypes.c_void_p, itype,
                              real, ctypes.c_void_p, itype]
                f.restype = None
            _FUNCS = fs
            return _FUNCS
    return _FUNCS


def available() -> bool:
    """Whether the fused update can run here."""
    return bool(_lookup())


class GemmMemo:
    """What :func:`gemm_tn_update` prepared for its last call: reading the array
    addresses and converting fourteen arguments for ctypes costs a few
    microseconds, as much as the GEMM of a small layer.  A training loop calls
    with the same ``W`` and ``x`` again and again (a layer's weights and its input
    buffer); the memo keeps them (so their memory stays valid) and the converted
    arguments around the address of ``d``, which is read at every call (the loss
    gradient is a new array each step).  Copies and pickles start empty: the
    addresses belong to the original arrays."""

    __slots__ = ("key", "call", "before", "after", "d_shape")

    def __init__(self):
        self.key = self.call = self.before = self.after = self.d_shape = None

    def __copy__(self):
        return GemmMemo()

    def __deepcopy__(self, memo):
        return GemmMemo()

    def __reduce__(self):
        return (GemmMemo, ())


def gemm_tn_update(W, x, d, memo=None) -> bool:
    """``W -= x.T @ d`` in place in one GEMM; ``False`` (nothing done) if not possible.

    ``W``: (K, M), ``x``: (N, K), ``d``: (N, M), NumPy arrays of one float dtype,
    C-contiguous.  Anything else (CuPy arrays, views, mixed dtypes) returns False.
    ``memo``: a :class:`GemmMemo` the caller keeps; a call with the very same ``W``
    and ``x`` (same objects, same shapes) then reuses the prepared arguments.
    """
    if memo is not None and memo.key is not None:
        k = memo.key
        if k[0] is W and k[1] is x and k[2] == (W.shape, x.shape) and W.flags.writeable \
                and type(d) is np.ndarray and d.dtype == W.dtype and d.shape == memo.d_shape \
                and d.flags.c_contiguous:
            memo.call(*memo.before, d.ctypes.data, *memo.after)
            return True
    fs = _lookup()
    if not fs or type(W) is not np.ndarray or type(x) is not np.ndarray \
            or type(d) is not np.ndarray:
        return False
    f = fs.get(W.dtype)
    if f is None or x.dtype != W.dtype or d.dtype != W.dtype:
        return False
    if not (W.flags.c_contiguous and W.flags.writeable and x.flags.c_contiguous
            and d.flags.c_contiguous):
        return False
    if x.ndim != 2 or d.ndim != 2 or W.ndim != 2:
        return False
    n, k = x.shape
    m = d.shape[1]
    if d.shape[0] != n or W.shape != (k, m) or n == 0:
        return False
    # C (k, m) = -1 * A^T (k, n) @ B (n, m) + 1 * C, row-major; A is x (n, k) with lda = k
    args = (_ROW_MAJOR, _TRANS, _NO_TRANS, k, m, n, -1.0, x.ctypes.data, k, d.ctypes.data, m,
            1.0, W.ctypes.data, m)
    f(*args)
    if memo is not None:
        # converted once to ctypes values: a later call passes them without conversion
        conv = tuple(t(v) for t, v in zip(f.argtypes, args))
        memo.key, memo.call, memo.d_shape = (W, x, (W.shape, x.shape)), f, d.shape
        memo.before, memo.after = conv[:9], conv[10:]
    return True
