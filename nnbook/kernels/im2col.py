"""im2col and col2im kernels, and the im2col + GEMM convolution (forward and both gradients).

The classic way to run a convolution on a matrix-multiply library: copy every
receptive field of the input into a column of a matrix (``im2col``), then one
GEMM does all the multiply-adds.  On the GPU the GEMM is cuBLAS (``cupy.matmul``);
on the simulator it is NumPy's.

Layout (NCHW, the same as :mod:`nnbook.kernels.conv2d`)::

    cols[(c, r, s), (n, p, q)] = x[n, c, p·sh − ph + r, q·sw − pw + s]   (0 in the padding)
    shape (C·R·S, N·P·Q)

    forward  Y  = Wm · cols                    Wm = w.reshape(K, C·R·S),  Y (K, N·P·Q)
    wgrad    dW = dYm · colsᵀ                  dYm = dy transposed to (K, N·P·Q)
    dgrad    dcols = Wmᵀ · dYm,  dx = col2im(dcols)

``col2im`` is the adjoint of ``im2col``: every input pixel sums the column
entries that copied it.  The kernel here gathers (one thread per input pixel,
looping over the taps that can reach it) so it needs no atomic adds.

The price is memory: ``cols`` is R·S/(sh·sw) times the size of the input
(9× for a 3×3 stride-1 layer), written once and read once more by the GEMM.
"""
from __future__ import annotations

import numpy as np

from ._common import (assert_close, cdiv, cuda, on_simulator, poisoned, random_array, sync,
                      time_kernel, to_device, unravel4, xp)
from ._common import empty as _empty
from .conv2d import (conv2d_dgrad_ref, conv2d_flops, conv2d_forward_ref, conv2d_wgrad_ref,
                     conv_output_shape, pair, random_problem)

def _new(shape, dtype=np.float32):
    """Output buffer: NaN-filled on the simulator (an element a kernel forgets fails the check)."""
    return poisoned(shape, dtype) if on_simulator() and np.dtype(dtype).kind == "f" else _empty(shape, dtype)


__all__ = ["im2col_ref", "col2im_ref", "im2col", "col2im",
           "conv2d_forward", "conv2d_dgrad", "conv2d_wgrad", "check", "benchmark"]


# ----------------------------------------------------------------------------- NumPy reference


def im2col_ref(x, rs, stride=1, padding=0):
    """(C·R·S, N·P·Q) matrix of receptive fields (NumPy, loops over the R·S taps)."""
    x = np.asarray(x)
    R, S = pair(rs, "rs")
    N, C, H, W = x.shape
    _, _, P, Q = conv_output_shape(x.shape, (1, C, R, S), stride, padding)
    (sh, sw), (ph, pw) = pair(stride, "stride"), pair(padding, "padding")
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.empty((C, R, S, N, P, Q), dtype=x.dtype)
    for r in range(R):
        for s in range(S):
            cols[:, r, s] = xpad[:, :, r:r + sh * (P - 1) + 1:sh,
                                 s:s + sw * (Q - 1) + 1:sw].transpose(1, 0, 2, 3)
    return cols.reshape(C * R * S, N * P * Q)


def col2im_ref(cols, x_shape, rs, stride=1, padding=0):
    """Adjoint of :func:`im2col_ref`: sum the columns back into an (N, C, H, W) array."""
    cols = np.asarray(cols)
    R, S = pair(rs, "rs")
    N, C, H, W = x_shape
    _, _, P, Q = conv_output_shape(x_shape, (1, C, R, S), stride, padding)
    (sh, sw), (ph, pw) = pair(stride, "stride"), pair(padding, "padding")
    c6 = cols.reshape(C, R, S, N, P, Q)
    xpad = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
    for r in range(R):
        for s in range(S):
            xpad[:, :, r:r + sh * (P - 1) + 1:sh, s:s + sw * (Q - 1) + 1:sw] += c6[:, r, s].transpose(1, 0, 2, 3)
    return xpad[:, :, ph:ph + H, pw:pw + W].copy()


# ----------------------------------------------------------------------------- kernels


@cuda.jit
def _im2col_v1(x, cols, R, S, P, Q, sh, sw, ph, pw):
    """One thread per element of ``cols``; consecutive threads write consecutive (n, p, q)."""
    i = cuda.grid(1)
    rows, ncols = cols.shape
    if i >= rows * ncols:
        return
    col = i % ncols
    j = i // ncols
    s = j % S
    r = (j // S) % R
    c = j // (R * S)
    q = col % Q
    p = (col // Q) % P
    n = col // (P * Q)
    h = p * sh - ph + r
    v = q * sw - pw + s
    val = np.float32(0.0)
    if h >= 0 and h < x.shape[2] and v >= 0 and v < x.shape[3]:
        val = x[n, c, h, v]
    cols[j, col] = val


@cuda.jit
def _col2im_v1(cols, x, R, S, P, Q, sh, sw, ph, pw):
    """One thread per input pixel, gathering every column entry that copied it."""
    i = cuda.grid(1)
    N, C, H, W = x.shape
    if i >= N * C * H * W:
        return
    n, c, h, v = unravel4(i, C, H, W)
    acc = np.float32(0.0)
    for r in range(R):
        hp = h + ph - r
        if hp >= 0 and hp % sh == 0 and hp // sh < P:
            p = hp // sh
            for s in range(S):
                vq = v + pw - s
                if vq >= 0 and vq % sw == 0 and vq // sw < Q:
                    q = vq // sw
                    acc += cols[(c * R + r) * S + s, (n * P + p) * Q + q]
    x[n, c, h, v] = acc


def im2col(x, rs, stride=1, padding=0, block=256):
    """Device im2col: x (N, C, H, W) -> cols (C·R·S, N·P·Q), float32."""
    R, S = pair(rs, "rs")
    x = to_device(x)
    N, C, H, W = x.shape
    _, _, P, Q = conv_output_shape(x.shape, (1, C, R, S), stride, padding)
    (sh, sw), (ph, pw) = pair(stride, "stride"), pair(padding, "padding")
    cols = _new((C * R * S, N * P * Q), np.float32)
    _im2col_v1[max(1, cdiv(cols.size, block)), block](x, cols, R, S, P, Q, sh, sw, ph, pw)
    return cols


def col2im(cols, x_shape, rs, stride=1, padding=0, block=256):
    """Device col2im (the adjoint of :func:`im2col`)."""
    R, S = pair(rs, "rs")
    N, C, H, W = (int(t) for t in x_shape)
    _, _, P, Q = conv_output_shape(x_shape, (1, C, R, S), stride, padding)
    if tuple(cols.shape) != (C * R * S, N * P * Q):
        raise ValueError(f"cols: expected shape {(C * R * S, N * P * Q)}, got {tuple(cols.shape)}")
    (sh, sw), (ph, pw) = pair(stride, "stride"), pair(padding, "padding")
    cols = to_device(cols)
    x = _new((N, C, H, W), np.float32)
    _col2im_v1[max(1, cdiv(x.size, block)), block](cols, x, R, S, P, Q, sh, sw, ph, pw)
    return x


# ----------------------------------------------------------------------------- im2col + GEMM convolution


def conv2d_forward(x, w, b=None, stride=1, padding=0):
    """y = conv2d(x, w) + b as im2col then one GEMM (cuBLAS on a GPU)."""
    x, w = to_device(x), to_device(w)
    N, K, P, Q = conv_output_shape(x.shape, w.shape, stride, padding)
    cols = im2col(x, w.shape[2:], stride, padding)
    y = xp().matmul(w.reshape(K, -1), cols)                       # (K, N·P·Q)
    y = xp().ascontiguousarray(y.reshape(K, N, P, Q).transpose(1, 0, 2, 3))
    if b is not None:
        y += to_device(b).reshape(1, K, 1, 1)
    return y


def _dy_matrix(dy):
    N, K, P, Q = dy.shape
    return xp().ascontiguousarray(dy.transpose(1, 0, 2, 3)).reshape(K, N * P * Q)


def conv2d_dgrad(dy, w, x_shape, stride=1, padding=0):
    """dx = col2im(Wmᵀ · dYm)."""
    dy, w = to_device(dy), to_device(w)
    if tuple(dy.shape) != conv_output_shape(x_shape, w.shape, stride, padding):
        raise ValueError(f"dy: expected shape {conv_output_shape(x_shape, w.shape, stride, padding)}, "
                         f"got {tuple(dy.shape)}")
    K = w.shape[0]
    dcols = xp().matmul(w.reshape(K, -1).T, _dy_matrix(dy))       # (C·R·S, N·P·Q)
    return col2im(dcols, x_shape, w.shape[2:], stride, padding)


def conv2d_wgrad(x, dy, w_shape, stride=1, padding=0):
    """dW = dYm · colsᵀ, reshaped to (K, C, R, S)."""
    x, dy = to_device(x), to_device(dy)
    if tuple(dy.shape) != conv_output_shape(x.shape, w_shape, stride, padding):
        raise ValueError(f"dy: expected shape {conv_output_shape(x.shape, w_shape, stride, padding)}, "
                         f"got {tuple(dy.shape)}")
    cols = im2col(x, tuple(w_shape)[2:], stride, padding)
    return xp().matmul(_dy_matrix(dy), cols.T).reshape(tuple(w_shape))


# ----------------------------------------------------------------------------- check and benchmark


def check(op="forward", shape=(2, 3, 7, 6), k=4, rs=(3, 3), stride=1, padding=1, *, seed=0, tol=1e-5):
    """Compare ``op`` in {"im2col", "col2im", "forward", "dgrad", "wgrad"} with the NumPy reference."""
    rng = np.random.default_rng(seed)
    x, w, b, dy = random_problem(rng, shape, k, rs, stride, padding)
    N, C = shape[:2]
    P, Q = dy.shape[2:]
    f64 = lambda a: a.astype(np.float64)  # noqa: E731
    if op == "im2col":
        out, ref = im2col(x, rs, stride, padding), im2col_ref(f64(x), rs, stride, padding)
    elif op == "col2im":
        cols = random_array(rng, (C * rs[0] * rs[1], N * P * Q))
        out, ref = col2im(cols, shape, rs, stride, padding), col2im_ref(f64(cols), shape, rs, stride, padding)
    elif op == "forward":
        out = conv2d_forward(x, w, b, stride, padding)
        ref = conv2d_forward_ref(f64(x), f64(w), f64(b), stride, padding)
    elif op == "dgrad":
        out, ref = conv2d_dgrad(dy, w, shape, stride, padding), conv2d_dgrad_ref(f64(dy), f64(w), shape, stride, padding)
    elif op == "wgrad":
        out, ref = conv2d_wgrad(x, dy, w.shape, stride, padding), conv2d_wgrad_ref(f64(x), f64(dy), w.shape, stride, padding)
    else:
        raise ValueError(f"op: expected im2col, col2im, forward, dgrad or wgrad, got {op!r}")
    sync()
    return assert_close(out, ref, tol, f"im2col-path {op} stride={stride} padding={padding}")


def benchmark(shape=(128, 64, 56, 56), k=64, rs=(3, 3), stride=1, padding=1, repeats=20):
    """GFLOP/s of the im2col + GEMM path (meaningful on a GPU only)."""
    x, w, _, dy = (to_device(a) for a in
                   random_problem(np.random.default_rng(0), shape, k, rs, stride, padding))
    flops = conv2d_flops(shape, w.shape, stride, padding)
    rows = []
    for op, fn in [("forward", lambda: conv2d_forward(x, w, None, stride, padding)),
                   ("dgrad", lambda: conv2d_dgrad(dy, w, shape, stride, padding)),
                   ("wgrad", lambda: conv2d_wgrad(x, dy, w.shape, stride, padding))]:
        t = time_kernel(fn, n_repeat=repeats)
        rows.append({"op": op, "seconds": t, "gflops": flops / t / 1e9})
        print(f"im2col+GEMM {op:8s}: {t * 1e3:8.3f} ms  {flops / t / 1e9:8.1f} GFLOP/s")
    return rows
