"""Max and average pooling on the GPU: forward and backward (NCHW, float32).

Windows of ``kernel`` (kh, kw) taps moved by ``stride`` over an input padded by
``padding`` (max-pool pads with −∞, average-pool with zeros and divides by
kh·kw, PyTorch's default ``count_include_pad=True``)::

    P = (H + 2·ph − kh) // sh + 1,  Q likewise.

Max-pool forward also returns ``idx`` (N, C, P, Q) int32: the flat position
``h·W + v`` of the winning input pixel in its plane (the first one on ties, as
PyTorch).  Backward routes each ``dy`` to that pixel.  Both backward kernels
*gather* (one thread per input pixel, looping over the windows that contain
it), so overlapping windows need no atomic adds.

Versions: v1 of each (one thread per output / input element) -- pooling is
memory-bound; there is no arithmetic to block.
"""
from __future__ import annotations


import numpy as np

from ._common import (assert_close, cdiv, cuda, on_simulator, poisoned, random_array, sync,
                      time_kernel, to_device, unravel4)
from ._common import empty as _empty
from .conv2d import pair

def _new(shape, dtype=np.float32):
    """Output buffer: NaN-filled on the simulator (an element a kernel forgets fails the check)."""
    return poisoned(shape, dtype) if on_simulator() and np.dtype(dtype).kind == "f" else _empty(shape, dtype)


__all__ = ["pool_output_shape", "maxpool_forward_ref", "maxpool_backward_ref", "avgpool_forward_ref",
           "avgpool_backward_ref", "maxpool_forward", "maxpool_backward", "avgpool_forward",
           "avgpool_backward", "check", "benchmark"]


def pool_output_shape(x_shape, kernel, stride=None, padding=0):
    """(N, C, P, Q); ``stride`` defaults to ``kernel``; padding at most half the window."""
    if len(x_shape) != 4:
        raise ValueError(f"x: expected shape (N, C, H, W), got {tuple(x_shape)}")
    kh, kw = pair(kernel, "kernel")
    sh, sw = pair(kernel if stride is None else stride, "stride")
    ph, pw = pair(padding, "padding")
    if min(kh, kw, sh, sw) < 1:
        raise ValueError(f"kernel and stride: expected values >= 1, got {kernel!r}, {stride!r}")
    if 2 * ph > kh or 2 * pw > kw:
        raise ValueError(f"padding: expected at most half the window {kernel!r}, got {padding!r}")
    N, C, H, W = (int(t) for t in x_shape)
    if H + 2 * ph < kh or W + 2 * pw < kw:
        raise ValueError(f"kernel: a {kh}x{kw} window does not fit in the padded input of x {tuple(x_shape)}")
    return N, C, (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1


def _geom(x_shape, kernel, stride, padding):
    N, C, P, Q = pool_output_shape(x_shape, kernel, stride, padding)
    kh, kw = pair(kernel, "kernel")
    sh, sw = pair(kernel if stride is None else stride, "stride")
    ph, pw = pair(padding, "padding")
    return N, C, P, Q, kh, kw, sh, sw, ph, pw


# ----------------------------------------------------------------------------- NumPy reference


def _windows(xpad, i, j, P, Q, sh, sw):
    return xpad[:, :, i:i + sh * (P - 1) + 1:sh, j:j + sw * (Q - 1) + 1:sw]


def maxpool_forward_ref(x, kernel, stride=None, padding=0):
    """(y, idx) in NumPy; ``idx`` as the kernel's (flat h·W + v, first max on ties)."""
    x = np.asarray(x)
    N, C, P, Q, kh, kw, sh, sw, ph, pw = _geom(x.shape, kernel, stride, padding)
    H, W = x.shape[2:]
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    y = np.full((N, C, P, Q), -np.inf, dtype=x.dtype)
    idx = np.zeros((N, C, P, Q), dtype=np.int32)
    pp, qq = np.meshgrid(np.arange(P), np.arange(Q), indexing="ij")
    for i in range(kh):
        for j in range(kw):
            win = _windows(xpad, i, j, P, Q, sh, sw)
            better = win > y                       # strict: the first maximum wins
            y = np.where(better, win, y)
            flat = (pp * sh - ph + i) * W + (qq * sw - pw + j)
            idx = np.where(better, flat[None, None], idx).astype(np.int32)
    return y, idx


def maxpool_backward_ref(dy, idx, x_shape):
    dy, idx = np.asarray(dy), np.asarray(idx)
    N, C, H, W = x_shape
    dx = np.zeros((N, C, H * W), dtype=dy.dtype)
    n, c = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    np.add.at(dx, (n[..., None], c[..., None], idx.reshape(N, C, -1)), dy.reshape(N, C, -1))
    return dx.reshape(N, C, H, W)


def avgpool_forward_ref(x, kernel, stride=None, padding=0):
    x = np.asarray(x)
    N, C, P, Q, kh, kw, sh, sw, ph, pw = _geom(x.shape, kernel, stride, padding)
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = np.zeros((N, C, P, Q), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            y += _windows(xpad, i, j, P, Q, sh, sw)
    return y / (kh * kw)


def avgpool_backward_ref(dy, x_shape, kernel, stride=None, padding=0):
    dy = np.asarray(dy)
    N, C, P, Q, kh, kw, sh, sw, ph, pw = _geom(x_shape, kernel, stride, padding)
    H, W = x_shape[2:]
    dxpad = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=dy.dtype)
    for i in range(kh):
        for j in range(kw):
            _windows(dxpad, i, j, P, Q, sh, sw)[...] += dy / (kh * kw)
    return dxpad[:, :, ph:ph + H, pw:pw + W].copy()


# ----------------------------------------------------------------------------- kernels


@cuda.jit
def _maxpool_fwd_v1(x, y, idx, kh, kw, sh, sw, ph, pw):
    i = cuda.grid(1)
    N, C, P, Q = y.shape
    if i >= N * C * P * Q:
        return
    n, c, p, q = unravel4(i, C, P, Q)
    H, W = x.shape[2], x.shape[3]
    best = np.float32(-np.inf)       # stay in float32 (a Python float would compare in f64)
    arg = 0
    for a in range(kh):
        h = p * sh - ph + a
        if h >= 0 and h < H:
            for e in range(kw):
                v = q * sw - pw + e
                if v >= 0 and v < W:
                    val = x[n, c, h, v]
                    if val > best:
                        best = val
                        arg = h * W + v
    y[n, c, p, q] = best
    idx[n, c, p, q] = arg


def _window_range(h, ph, k, s, P):
    """Outputs p whose window [p·s − ph, p·s − ph + k) contains input row h."""
    lo = h + ph - k + 1
    lo = 0 if lo <= 0 else (lo + s - 1) // s
    hi = min((h + ph) // s, P - 1)
    return lo, hi


_window_range_dev = cuda.jit(device=True)(_window_range)


@cuda.jit
def _maxpool_bwd_v1(dy, idx, dx, kh, kw, sh, sw, ph, pw):
    i = cuda.grid(1)
    N, C, H, W = dx.shape
    if i >= N * C * H * W:
        return
    n, c, h, v = unravel4(i, C, H, W)
    P, Q = dy.shape[2], dy.shape[3]
    me = h * W + v
    plo, phi = _window_range_dev(h, ph, kh, sh, P)
    qlo, qhi = _window_range_dev(v, pw, kw, sw, Q)
    acc = np.float32(0.0)
    for p in range(plo, phi + 1):
        for q in range(qlo, qhi + 1):
            if idx[n, c, p, q] == me:
                acc += dy[n, c, p, q]
    dx[n, c, h, v] = acc


@cuda.jit
def _avgpool_fwd_v1(x, y, kh, kw, sh, sw, ph, pw):
    i = cuda.grid(1)
    N, C, P, Q = y.shape
    if i >= N * C * P * Q:
        return
    n, c, p, q = unravel4(i, C, P, Q)
    H, W = x.shape[2], x.shape[3]
    acc = np.float32(0.0)
    for a in range(kh):
        h = p * sh - ph + a
        if h >= 0 and h < H:
            for e in range(kw):
                v = q * sw - pw + e
                if v >= 0 and v < W:
                    acc += x[n, c, h, v]
    y[n, c, p, q] = acc / np.float32(kh * kw)


@cuda.jit
def _avgpool_bwd_v1(dy, dx, kh, kw, sh, sw, ph, pw):
    i = cuda.grid(1)
    N, C, H, W = dx.shape
    if i >= N * C * H * W:
        return
    n, c, h, v = unravel4(i, C, H, W)
    P, Q = dy.shape[2], dy.shape[3]
    plo, phi = _window_range_dev(h, ph, kh, sh, P)
    qlo, qhi = _window_range_dev(v, pw, kw, sw, Q)
    acc = np.float32(0.0)
    for p in range(plo, phi + 1):
        for q in range(qlo, qhi + 1):
            acc += dy[n, c, p, q]
    dx[n, c, h, v] = acc / np.float32(kh * kw)


def _launch(kernel, total, args, block=256):
    kernel[max(1, cdiv(total, block)), block](*args)


def maxpool_forward(x, kernel=2, stride=None, padding=0):
    """(y, idx) on the device."""
    x = to_device(x)
    N, C, P, Q, kh, kw, sh, sw, ph, pw = _geom(x.shape, kernel, stride, padding)
    y = _new((N, C, P, Q), np.float32)
    idx = _new((N, C, P, Q), np.int32)
    _launch(_maxpool_fwd_v1, y.size, (x, y, idx, kh, kw, sh, sw, ph, pw))
    return y, idx


def maxpool_backward(dy, idx, x_shape, kernel=2, stride=None, padding=0):
    N, C, P, Q, kh, kw, sh, sw, ph, pw = _geom(x_shape, kernel, stride, padding)
    if tuple(dy.shape) != (N, C, P, Q) or tuple(idx.shape) != (N, C, P, Q):
        raise ValueError(f"dy and idx: expected shape {(N, C, P, Q)}, got {tuple(dy.shape)} and {tuple(idx.shape)}")
    dy, idx = to_device(dy), to_device(idx, np.int32)
    dx = _new(tuple(int(t) for t in x_shape), np.float32)
    _launch(_maxpool_bwd_v1, dx.size, (dy, idx, dx, kh, kw, sh, sw, ph, pw))
    return dx


def avgpool_forward(x, kernel=2, stride=None, padding=0):
    x = to_device(x)
    N, C, P, Q, kh, kw, sh, sw, ph, pw = _geom(x.shape, kernel, stride, padding)
    y = _new((N, C, P, Q), np.float32)
    _launch(_avgpool_fwd_v1, y.size, (x, y, kh, kw, sh, sw, ph, pw))
    return y


def avgpool_backward(dy, x_shape, kernel=2, stride=None, padding=0):
    N, C, P, Q, kh, kw, sh, sw, ph, pw = _geom(x_shape, kernel, stride, padding)
    if tuple(dy.shape) != (N, C, P, Q):
        raise ValueError(f"dy: expected shape {(N, C, P, Q)}, got {tuple(dy.shape)}")
    dy = to_device(dy)
    dx = _new(tuple(int(t) for t in x_shape), np.float32)
    _launch(_avgpool_bwd_v1, dx.size, (dy, dx, kh, kw, sh, sw, ph, pw))
    return dx


def check(op="max", shape=(2, 3, 7, 6), kernel=2, stride=None, padding=0, *, seed=0, tol=1e-6):
    """Forward and backward of ``op`` in {"max", "avg"} against the NumPy reference.

    Returns the larger relative error (max-pool indices must match exactly).
    """
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape)
    N, C, P, Q = pool_output_shape(shape, kernel, stride, padding)
    dy = random_array(rng, (N, C, P, Q))
    if op == "max":
        y, idx = maxpool_forward(x, kernel, stride, padding)
        y_ref, idx_ref = maxpool_forward_ref(x.astype(np.float64), kernel, stride, padding)
        sync()
        if not np.array_equal(np.asarray(idx if isinstance(idx, np.ndarray) else idx.get()), idx_ref):
            raise AssertionError("maxpool v1: argmax indices differ from the reference")
        dx = maxpool_backward(dy, idx, shape, kernel, stride, padding)
        dx_ref = maxpool_backward_ref(dy.astype(np.float64), idx_ref, shape)
    elif op == "avg":
        y = avgpool_forward(x, kernel, stride, padding)
        y_ref = avgpool_forward_ref(x.astype(np.float64), kernel, stride, padding)
        dx = avgpool_backward(dy, shape, kernel, stride, padding)
        dx_ref = avgpool_backward_ref(dy.astype(np.float64), shape, kernel, stride, padding)
    else:
        raise ValueError(f"op: expected 'max' or 'avg', got {op!r}")
    sync()
    e1 = assert_close(y, y_ref, tol, f"{op}pool forward")
    e2 = assert_close(dx, dx_ref, tol, f"{op}pool backward")
    return max(e1, e2)


def benchmark(shape=(128, 64, 112, 112), kernel=2, repeats=20):
    """GB/s of each pooling kernel (meaningful on a GPU only)."""
    rng = np.random.default_rng(0)
    x = to_device(random_array(rng, shape))
    y, idx = maxpool_forward(x, kernel)
    dy = to_device(random_array(rng, y.shape))
    rows = []
    nbytes = 4 * (x.size + y.size)
    for name, fn, b in [("max forward", lambda: maxpool_forward(x, kernel), nbytes + 4 * y.size),
                        ("max backward", lambda: maxpool_backward(dy, idx, shape, kernel), nbytes + 4 * y.size),
                        ("avg forward", lambda: avgpool_forward(x, kernel), nbytes),
                        ("avg backward", lambda: avgpool_backward(dy, shape, kernel), nbytes)]:
        t = time_kernel(fn, n_repeat=repeats)
        rows.append({"op": name, "seconds": t, "gbytes_per_s": b / t / 1e9})
        print(f"pool {name:13s}: {t * 1e3:8.3f} ms  {b / t / 1e9:8.1f} GB/s")
    return rows
