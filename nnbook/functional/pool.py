"""The mathematics of pooling: max and average over windows, with backward passes.

Arrays are NCHW.  A window of ``kernel_size`` moves by ``stride`` (default: the
window size); max-pooling routes each output's gradient to the *first* maximum
of its window in row-major order, as PyTorch does.
"""
from __future__ import annotations

import numpy as np

from .._checks import check_array, describe
from ..backend import get_xp
from .conv import _pair, _taps

__all__ = ["maxpool2d_forward", "maxpool2d_backward", "avgpool2d_forward", "avgpool2d_backward"]


def _max2x2(taps, top, bot, left, upper, first, out):
    """Max of every 2x2 window from its four members ``taps`` (top left, top right,
    bottom left, bottom right; same-shape arrays), into ``out``.  Records which
    member won as 0/1 masks in the data's dtype, the *first* maximum on ties (as
    PyTorch): ``left`` (top row: left beat right), ``upper`` (bottom row: left beat
    right), ``first`` (the top row won).  ``top`` and ``bot`` are scratch."""
    xp = get_xp()
    a00, a01, a10, a11 = taps
    xp.maximum(a00, a01, out=top)
    xp.maximum(a10, a11, out=bot)
    xp.greater_equal(a00, a01, out=left)
    xp.greater_equal(a10, a11, out=upper)
    xp.greater_equal(top, bot, out=first)
    return xp.maximum(top, bot, out=out)


def _route2x2(d, left, upper, first, gtop, gbot, dtaps):
    """Backward of :func:`_max2x2`: each window's gradient ``d`` to the member that
    won, written into the four views ``dtaps``; ``gtop``, ``gbot`` are scratch."""
    xp = get_xp()
    t00, t01, t10, t11 = dtaps
    xp.multiply(d, first, out=gtop)
    xp.subtract(d, gtop, out=gbot)           # exact: each entry is d or 0
    xp.multiply(gtop, left, out=t00)
    xp.subtract(gtop, t00, out=t01)
    xp.multiply(gbot, upper, out=t10)
    xp.subtract(gbot, t10, out=t11)


def _pool_geometry(x, kernel, stride):
    check_array("x", x, ndim=4, floating=True, finite=False)
    kh, kw = kernel
    H, Wd = x.shape[2:]
    if kh > H or kw > Wd:
        raise ValueError(f"x: pooling window {kh}x{kw} is larger than the input "
                         f"{H}x{Wd} ({describe(x)})")
    return (H - kh) // stride[0] + 1, (Wd - kw) // stride[1] + 1


def _storage_order(x):
    """Axis order in which x's memory is C-contiguous: NCHW or (N, H, C, W), else None."""
    if x.flags.c_contiguous:
        return (0, 1, 2, 3)
    if x.transpose(0, 2, 1, 3).flags.c_contiguous:
        return (0, 2, 1, 3)
    return None


def _pair_view(a, perm):
    """View a (N, C, H, W), H and W even, as (R, 2, inner, 2) over its memory:
    axis 1 picks the row of a 2x2 window, axis 3 its column; both partners of a
    window are at fixed offsets, and the inner loop runs over `inner` windows."""
    st = a.transpose(perm)
    n_before = int(np.prod(st.shape[:perm.index(2)]))     # axes before H in memory
    return st.reshape(n_before * (a.shape[2] // 2), 2, -1, 2)


def _from_pairs(v, like_shape, perm):
    """(R, inner) window results back to an NCHW-shaped view of (N, ..., H/2, ...) memory."""
    N, C_, H, W = like_shape
    shp = [N, C_, H // 2, W // 2]
    return v.reshape([shp[i] for i in perm]).transpose(np.argsort(perm))


def maxpool2d_forward(x, kernel_size=2, stride=None):
    """Max over kh x kw windows moved by ``stride`` (default: the window size).

    Computed with whole-array ``maximum`` calls on the kh*kw tap views (each a
    strided view of x, so the output keeps x's memory layout).  The common 2x2
    stride-2 case reads x's memory as (rows, 2, windows, 2), so the four
    partners of every window sit at fixed offsets and each operation is one
    long loop; it also records, with three comparisons, which tap won (the
    first one on ties, as PyTorch), so the backward pass is four products.
    Returns ``(out, cache)``.
    """
    kernel = _pair("kernel_size", kernel_size, 1)
    stride = kernel if stride is None else _pair("stride", stride, 1)
    Ho, Wo = _pool_geometry(x, kernel, stride)
    xp = get_xp()
    perm = _storage_order(x)
    if kernel == (2, 2) and stride == (2, 2) and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0 \
            and perm is not None:
        v = _pair_view(x, perm)
        taps = v[:, 0, :, 0], v[:, 0, :, 1], v[:, 1, :, 0], v[:, 1, :, 1]
        # 0/1 masks in x's dtype: the backward products then need no type casts
        top, bot, left, upper, first = (xp.empty(taps[0].shape, dtype=x.dtype)
                                        for _ in range(5))
        out = _max2x2(taps, top, bot, left, upper, first, top)
        return _from_pairs(out, x.shape, perm), ("2x2", x.shape, perm, left, upper, first)
    taps = [tap for _, _, tap in _taps(x, *kernel, stride, Ho, Wo)]
    out = taps[0].copy() if len(taps) == 1 else xp.maximum(taps[0], taps[1])
    for tap in taps[2:]:
        xp.maximum(out, tap, out=out)
    return out, ("taps", x.shape, x, out, kernel, stride)


def _zeros_like_uncovered(x, kernel, stride, Ho, Wo):
    """dx for pooling: zeros where no window reads; the covered part is overwritten."""
    xp = get_xp()
    dx = xp.empty_like(x)          # same memory layout as x
    hc, wc = (Ho - 1) * stride[0] + kernel[0], (Wo - 1) * stride[1] + kernel[1]
    dx[:, :, hc:] = 0
    dx[:, :, :hc, wc:] = 0
    return dx


def maxpool2d_backward(dout, cache):
    """Route each output gradient to the *first* maximum of its window (PyTorch's rule)."""
    xp = get_xp()
    if cache[0] == "2x2":
        _, shape, perm, left, upper, first = cache
        dx = xp.empty(tuple(shape[i] for i in perm), dtype=dout.dtype).transpose(
            np.argsort(perm))                               # x's memory layout
        v = _pair_view(dx, perm)
        d = dout.transpose(perm)
        d = (d if d.flags.c_contiguous else xp.ascontiguousarray(d)).reshape(first.shape)
        _route2x2(d, left, upper, first, xp.empty_like(d), xp.empty_like(d),
                  (v[:, 0, :, 0], v[:, 0, :, 1], v[:, 1, :, 0], v[:, 1, :, 1]))
        return dx
    _, shape, x, out, kernel, stride = cache
    Ho, Wo = out.shape[2:]
    overlap = stride != kernel     # windows overlap or leave gaps: accumulate into zeros
    dx = xp.zeros_like(x) if overlap else _zeros_like_uncovered(x, kernel, stride, Ho, Wo)
    rem = dout.copy()              # gradient not yet handed out (ties: first tap wins)
    taps = list(_taps(x, *kernel, stride, Ho, Wo))
    dtaps = [d for _, _, d in _taps(dx, *kernel, stride, Ho, Wo)]
    for k, ((_, _, tap), dtap) in enumerate(zip(taps, dtaps)):
        hit = xp.equal(tap, out)
        if overlap:
            dtap += rem * hit
        else:
            xp.multiply(rem, hit, out=dtap)
        if k + 1 < len(taps):
            xp.logical_not(hit, out=hit)
            rem *= hit
    return dx


def avgpool2d_forward(x, kernel_size=2, stride=None):
    """Mean over kh x kw windows (no padding).  Returns ``(out, cache)``."""
    kernel = _pair("kernel_size", kernel_size, 1)
    stride = kernel if stride is None else _pair("stride", stride, 1)
    Ho, Wo = _pool_geometry(x, kernel, stride)
    taps = [tap for _, _, tap in _taps(x, *kernel, stride, Ho, Wo)]
    out = taps[0].copy()
    for tap in taps[1:]:
        out += tap
    out *= 1.0 / (kernel[0] * kernel[1])
    return out, (x.shape, x.dtype, kernel, stride)


def avgpool2d_backward(dout, cache):
    shape, dtype, kernel, stride = cache
    xp = get_xp()
    dx = xp.zeros(shape, dtype=dtype)
    g = dout * (1.0 / (kernel[0] * kernel[1]))
    for _, _, dtap in _taps(dx, *kernel, stride, *dout.shape[2:]):
        dtap += g
    return dx
