"""NumPy's own BLAS, called directly for two fused operations of a dense layer.

BLAS's GEMM computes ``C = alpha * A @ B + beta * C``; NumPy's matmul always
uses ``beta = 0``.  With ``beta = 1`` two steps of a training loop need one pass
over memory instead of two:

* plain SGD with a pre-scaled gradient updates the weights by ``W -= x.T @ d``:
  the update happens inside the matrix product (``alpha = -1``), instead of a
  gradient buffer ``g = x.T @ d`` and a second pass ``W -= g``;
* the forward pass ``out = x @ W + b`` starts from ``out`` filled with the bias
  (a broadcast copy) and lets the product add onto it, instead of a product and
  a second pass ``out += b``.

This module finds the CBLAS library that NumPy itself loaded (same library, same
thread pool: no second pool competing for the cores) and calls its
``cblas_?gemm`` through ctypes (:func:`gemm_acc`).  If the library or the
symbol cannot be found (a NumPy built against another BLAS, an unusual platform)
the functions return ``False`` and the caller takes the two-pass route; results
agree to rounding.
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


def _address(a):
    """Address of a C-contiguous array's first element.  ``a.ctypes.data`` builds a
    helper object (about 0.8 us); a ctypes view of a writeable buffer takes a
    quarter of that, which matters at six GEMMs per training step."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(a))
    except TypeError:           # read-only memory
        return a.ctypes.data


def available() -> bool:
    """Whether the fused update can run here."""
    return bool(_lookup())


class GemmMemo:
    """What :func:`gemm_acc` prepared for its last call: reading the array addresses
    and converting fourteen arguments for ctypes costs a few microseconds, as much
    as the GEMM of a small layer.  A training loop calls with the same ``a`` and
    ``c`` again and again (a layer's input buffer and its weights or output
    buffer); the memo keeps them (so their memory stays valid) and the converted
    arguments around the address of ``b``, which is read at every call (the loss
    gradient is a new array each step).  Copies and pickles start empty: the
    addresses belong to the original arrays."""

    __slots__ = ("key", "call", "before", "after", "b_shape")

    def __init__(self):
        self.key = self.call = self.before = self.after = self.b_shape = None

    def __copy__(self):
        return GemmMemo()

    def __deepcopy__(self, memo):
        return GemmMemo()

    def __reduce__(self):
        return (GemmMemo, ())


def gemm_acc(a, b, c, trans_a=False, alpha=1.0, memo=None) -> bool:
    """``c += alpha * op(a) @ b`` in place in one GEMM (BLAS's beta = 1), with
    ``op(a) = a.T`` if ``trans_a``; ``False`` (nothing done) if not possible.

    ``op(a)``: (M, K), ``b``: (K, N), ``c``: (M, N); NumPy arrays of one float dtype,
    C-contiguous, ``c`` writeable.  Anything else (CuPy arrays, views, mixed
    dtypes) returns False.  ``memo``: a :class:`GemmMemo` the caller keeps; a call
    with the very same ``a`` and ``c`` (same objects, same shapes), the same
    ``trans_a`` and ``alpha`` then reuses the prepared arguments.
    """
    if memo is not None and memo.key is not None:
        k = memo.key
        if k[0] is a and k[1] is c and k[2] == (a.shape, c.shape, trans_a, alpha) \
                and c.flags.writeable and type(b) is np.ndarray and b.dtype == c.dtype \
                and b.shape == memo.b_shape and b.flags.c_contiguous:
            memo.call(*memo.before, _address(b), *memo.after)
            return True
    fs = _lookup()
    if not fs or type(a) is not np.ndarray or type(b) is not np.ndarray \
            or type(c) is not np.ndarray:
        return False
    f = fs.get(c.dtype)
    if f is None or a.dtype != c.dtype or b.dtype != c.dtype:
        return False
    if not (c.flags.c_contiguous and c.flags.writeable and a.flags.c_contiguous
            and b.flags.c_contiguous):
        return False
    if a.ndim != 2 or b.ndim != 2 or c.ndim != 2:
        return False
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    n = b.shape[1]
    if b.shape[0] != k or c.shape != (m, n) or k == 0 or m == 0 or n == 0:
        return False
    # row-major C (m, n) = alpha * op(A) (m, k) @ B (k, n) + 1 * C; lda is a's row length
    args = (_ROW_MAJOR, _TRANS if trans_a else _NO_TRANS, _NO_TRANS, m, n, k, alpha,
            a.ctypes.data, a.shape[1], b.ctypes.data, n, 1.0, c.ctypes.data, n)
    f(*args)
    if memo is not None:
        # converted once to ctypes values: a later call passes them without conversion
        conv = tuple(t(v) for t, v in zip(f.argtypes, args))
        memo.key, memo.call, memo.b_shape = (a, c, (a.shape, c.shape, trans_a, alpha)), f, b.shape
        memo.before, memo.after = conv[:9], conv[10:]
    return True


def gemm_tn_update(W, x, d, memo=None) -> bool:
    """``W -= x.T @ d`` in place in one GEMM (the plain-SGD weight step with a
    pre-scaled gradient); ``False`` (nothing done) if not possible.

    ``W``: (K, M), ``x``: (N, K), ``d``: (N, M); see :func:`gemm_acc`.
    """
    return gemm_acc(x, d, W, trans_a=True, alpha=-1.0, memo=memo)
