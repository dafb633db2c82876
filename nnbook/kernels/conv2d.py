"""2-D convolution on the GPU: forward, gradient w.r.t. the input, gradient w.r.t. the weights.

llm.c ``dev/cuda`` style: a NumPy reference first, then numbered kernel
versions, a :func:`check` that compares a version with the reference (pytest
calls it on the simulator) and a :func:`benchmark` for a real GPU.

Layout and conventions (the same as PyTorch's ``conv2d``, cross-correlation):

* ``x``  (N, C, H, W)   input, NCHW, float32, C-contiguous
* ``w``  (K, C, R, S)   K filters of C channels and R×S taps
* ``b``  (K,)           bias (optional)
* ``y``  (N, K, P, Q)   output, ``P = (H + 2·ph − R) // sh + 1``, ``Q`` likewise
* stride ``(sh, sw)`` and zero padding ``(ph, pw)``; an int means the same on both axes.

    y[n, k, p, q] = b[k] + Σ_{c, r, s} x[n, c, p·sh − ph + r, q·sw − pw + s] · w[k, c, r, s]

(taps that fall in the padding read zero).  The two gradients, for an
upstream gradient ``dy`` (N, K, P, Q):

    dx[n, c, h, v] = Σ_{k, r, s: h + ph − r = p·sh, v + pw − s = q·sw} dy[n, k, p, q] · w[k, c, r, s]
    dw[k, c, r, s] = Σ_{n, p, q} dy[n, k, p, q] · x[n, c, p·sh − ph + r, q·sw − pw + s]
    db[k]          = Σ_{n, p, q} dy[n, k, p, q]

Kernel versions
---------------
forward
    v1  direct, one thread per output element, everything from global memory.
    v2  direct, shared-memory tiles: a block stages the input patch under a
        TH×TW output tile and the filters of KB output channels, one input
        channel at a time; each thread keeps KB accumulators in registers.
    v3  implicit GEMM: the convolution is the matrix product
        Y[k, (n,p,q)] = Σ_{(c,r,s)} W[k, (c,r,s)] · X̂[(c,r,s), (n,p,q)]
        where X̂ is the im2col matrix, which is never stored: the kernel
        gathers its tiles straight from ``x`` into shared memory.  Register
        blocking: each thread computes a TK×TM block of outputs.
dgrad (gradient w.r.t. the input)
    v1  one thread per input element, gathering from every output it touched.
    v3  implicit GEMM: dX[c, (n,h,v)] = Σ_{(k,r,s)} W[k,c,r,s] · dŶ[(k,r,s), (n,h,v)].
wgrad (gradient w.r.t. the weights)
    v1  one thread per weight, summing over the N·P·Q outputs.
    v3  implicit GEMM: dW[k, (c,r,s)] = Σ_{(n,p,q)} dY[k, (n,p,q)] · X̂[(n,p,q), (c,r,s)],
        with the long N·P·Q reduction split over ``splits`` blocks (split-K,
        combined with atomic adds).

The three v3 kernels are one kernel template (:func:`make_igemm`) given three
different "gather" device functions: a convolution and both of its gradients
are each a GEMM whose operands are read through index arithmetic.

Without a GPU, :mod:`nnbook.kernels` runs the same kernels in numba's CUDA
simulator (NumPy arrays in, NumPy arrays out), which is slow: keep shapes tiny.
"""
from __future__ import annotations

import functools

import numpy as np

from ._common import (assert_close, cdiv, cuda, on_simulator, poisoned, random_array, sync,
                      time_kernel, to_device, unravel4, xp)
from ._common import empty as _empty

def _new(shape, dtype=np.float32):
    """Output buffer: NaN-filled on the simulator (an element a kernel forgets fails the check)."""
    return poisoned(shape, dtype) if on_simulator() and np.dtype(dtype).kind == "f" else _empty(shape, dtype)


__all__ = [
    "pair", "conv_output_shape", "conv2d_flops",
    "conv2d_forward_ref", "conv2d_dgrad_ref", "conv2d_wgrad_ref", "conv2d_bias_grad_ref",
    "conv2d_forward", "conv2d_dgrad", "conv2d_wgrad", "conv2d_bias_grad",
    "make_igemm", "IGEMM_GPU", "IGEMM_SMALL",
    "FORWARD_VERSIONS", "DGRAD_VERSIONS", "WGRAD_VERSIONS", "check", "benchmark",
]

# ----------------------------------------------------------------------------- shapes


def pair(v, name):
    """``v`` as a pair of non-negative ints (an int means the same value on both axes)."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        v = (int(v), int(v))
    try:
        a, b = (int(t) for t in v)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected an int or a pair of ints, got {v!r}") from None
    if a < 0 or b < 0:
        raise ValueError(f"{name}: expected non-negative values, got {v!r}")
    return a, b


def conv_output_shape(x_shape, w_shape, stride=1, padding=0):
    """(N, K, P, Q) of ``conv2d(x, w)``; raises ValueError naming the argument on a mismatch.

    >>> conv_output_shape((2, 3, 32, 32), (8, 3, 5, 5), stride=1, padding=2)
    (2, 8, 32, 32)
    """
    if len(x_shape) != 4:
        raise ValueError(f"x: expected shape (N, C, H, W), got {tuple(x_shape)}")
    if len(w_shape) != 4:
        raise ValueError(f"w: expected shape (K, C, R, S), got {tuple(w_shape)}")
    N, C, H, W = (int(t) for t in x_shape)
    K, C2, R, S = (int(t) for t in w_shape)
    if C2 != C:
        raise ValueError(f"w: expected {C} input channels (x has shape {tuple(x_shape)}), "
                         f"got w of shape {tuple(w_shape)}")
    sh, sw = pair(stride, "stride")
    ph, pw = pair(padding, "padding")
    if sh < 1 or sw < 1:
        raise ValueError(f"stride: expected values >= 1, got {stride!r}")
    if H + 2 * ph < R or W + 2 * pw < S:
        raise ValueError(f"w: a {R}x{S} filter does not fit in the padded {H + 2 * ph}x"
                         f"{W + 2 * pw} input (x {tuple(x_shape)}, padding {padding!r})")
    return N, K, (H + 2 * ph - R) // sh + 1, (W + 2 * pw - S) // sw + 1


def conv2d_flops(x_shape, w_shape, stride=1, padding=0):
    """FLOPs of one forward pass (2 per multiply-add; each gradient costs the same)."""
    N, K, P, Q = conv_output_shape(x_shape, w_shape, stride, padding)
    _, C, R, S = w_shape
    return 2 * N * K * P * Q * C * R * S


# ----------------------------------------------------------------------------- NumPy reference


def _taps(xpad, r, s, P, Q, sh, sw):
    """The (N, C, P, Q) view of the padded input that filter tap (r, s) multiplies."""
    return xpad[:, :, r:r + sh * (P - 1) + 1:sh, s:s + sw * (Q - 1) + 1:sw]


def conv2d_forward_ref(x, w, b=None, stride=1, padding=0):
    """Reference forward pass in NumPy (dtype of the inputs kept; use float64 to check).

    Loops over the R·S filter taps, each a batched matrix product over channels.
    """
    x, w = np.asarray(x), np.asarray(w)
    N, K, P, Q = conv_output_shape(x.shape, w.shape, stride, padding)
    (sh, sw), (ph, pw) = pair(stride, "stride"), pair(padding, "padding")
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = np.zeros((N, K, P, Q), dtype=np.result_type(x, w))
    for r in range(w.shape[2]):
        for s in range(w.shape[3]):
            y += np.einsum("ncpq,kc->nkpq", _taps(xpad, r, s, P, Q, sh, sw), w[:, :, r, s])
    if b is not None:
        y += np.asarray(b)[None, :, None, None]
    return y


def conv2d_dgrad_ref(dy, w, x_shape, stride=1, padding=0):
    """Reference gradient w.r.t. the input: scatter each tap's contribution back."""
    dy, w = np.asarray(dy), np.asarray(w)
    N, K, P, Q = conv_output_shape(x_shape, w.shape, stride, padding)
    if dy.shape != (N, K, P, Q):
        raise ValueError(f"dy: expected shape {(N, K, P, Q)}, got {dy.shape}")
    (sh, sw), (ph, pw) = pair(stride, "stride"), pair(padding, "padding")
    _, C, H, W = x_shape
    dxpad = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=np.result_type(dy, w))
    for r in range(w.shape[2]):
        for s in range(w.shape[3]):
            _taps(dxpad, r, s, P, Q, sh, sw)[...] += np.einsum("nkpq,kc->ncpq", dy, w[:, :, r, s])
    return dxpad[:, :, ph:ph + H, pw:pw + W].copy()


def conv2d_wgrad_ref(x, dy, w_shape, stride=1, padding=0):
    """Reference gradient w.r.t. the weights."""
    x, dy = np.asarray(x), np.asarray(dy)
    N, K, P, Q = conv_output_shape(x.shape, w_shape, stride, padding)
    if dy.shape != (N, K, P, Q):
        raise ValueError(f"dy: expected shape {(N, K, P, Q)}, got {dy.shape}")
    (sh, sw), (ph, pw) = pair(stride, "stride"), pair(padding, "padding")
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dw = np.zeros(tuple(w_shape), dtype=np.result_type(x, dy))
    for r in range(w_shape[2]):
        for s in range(w_shape[3]):
            dw[:, :, r, s] = np.einsum("nkpq,ncpq->kc", dy, _taps(xpad, r, s, P, Q, sh, sw))
    return dw


def conv2d_bias_grad_ref(dy):
    return np.asarray(dy).sum(axis=(0, 2, 3))


# ----------------------------------------------------------------------------- v1: direct, naive


@cuda.jit
def _fwd_v1(x, w, b, y, sh, sw, ph, pw):
    i = cuda.grid(1)
    N, K, P, Q = y.shape
    if i >= N * K * P * Q:
        return
    # consecutive threads -> consecutive q: coalesced stores
    n, k, p, q = unravel4(i, K, P, Q)
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    R, S = w.shape[2], w.shape[3]
    acc = b[k]
    for c in range(C):
        for r in range(R):
            h = p * sh - ph + r
            if h >= 0 and h < H:
                for s in range(S):
                    v = q * sw - pw + s
                    if v >= 0 and v < W:
                        acc += x[n, c, h, v] * w[k, c, r, s]
    y[n, k, p, q] = acc


@cuda.jit
def _dgrad_v1(dy, w, dx, sh, sw, ph, pw):
    i = cuda.grid(1)
    N, C, H, W = dx.shape
    if i >= N * C * H * W:
        return
    n, c, h, v = unravel4(i, C, H, W)
    K, P, Q = dy.shape[1], dy.shape[2], dy.shape[3]
    R, S = w.shape[2], w.shape[3]
    acc = np.float32(0.0)
    for r in range(R):
        hp = h + ph - r                       # = p·sh for the outputs this tap reached
        if hp >= 0 and hp % sh == 0 and hp // sh < P:
            p = hp // sh
            for s in range(S):
                vq = v + pw - s
                if vq >= 0 and vq % sw == 0 and vq // sw < Q:
                    q = vq // sw
                    for k in range(K):
                        acc += dy[n, k, p, q] * w[k, c, r, s]
    dx[n, c, h, v] = acc


@cuda.jit
def _wgrad_v1(x, dy, dw, sh, sw, ph, pw):
    i = cuda.grid(1)
    K, C, R, S = dw.shape
    if i >= K * C * R * S:
        return
    k, c, r, s = unravel4(i, C, R, S)
    N, P, Q = dy.shape[0], dy.shape[2], dy.shape[3]
    H, W = x.shape[2], x.shape[3]
    acc = np.float32(0.0)
    for n in range(N):
        for p in range(P):
            h = p * sh - ph + r
            if h >= 0 and h < H:
                for q in range(Q):
                    v = q * sw - pw + s
                    if v >= 0 and v < W:
                        acc += dy[n, k, p, q] * x[n, c, h, v]
    dw[k, c, r, s] = acc


# ----------------------------------------------------------------------------- v2: shared-memory tiles


@functools.lru_cache(maxsize=None)
def _make_fwd_v2(TH, TW, KB, R, S, sh, sw):
    """Compile-time tile sizes (numba freezes closure variables as constants)."""
    IH = (TH - 1) * sh + R            # input rows under a TH-row output tile
    IW = (TW - 1) * sw + S
    NT = TH * TW                      # threads per block
    float32 = np.float32

    @cuda.jit
    def kernel(x, w, b, y, ph, pw):
        xs = cuda.shared.array((IH, IW), dtype=float32)
        ws = cuda.shared.array((KB, R, S), dtype=float32)
        acc = cuda.local.array(KB, dtype=float32)
        N, K, P, Q = y.shape
        C, H, W = x.shape[1], x.shape[2], x.shape[3]
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        tid = ty * TW + tx
        q0 = cuda.blockIdx.x * TW
        p0 = cuda.blockIdx.y * TH
        kgroups = (K + KB - 1) // KB
        n = cuda.blockIdx.z // kgroups
        k0 = (cuda.blockIdx.z % kgroups) * KB
        for kk in range(KB):
            acc[kk] = 0.0
        h0 = p0 * sh - ph                  # top-left input pixel of the patch
        v0 = q0 * sw - pw
        for c in range(C):
            # stage the input patch (zeros outside the image = the padding)
            for e in range(tid, IH * IW, NT):
                i = e // IW
                j = e % IW
                h = h0 + i
                v = v0 + j
                val = float32(0.0)
                if h >= 0 and h < H and v >= 0 and v < W:
                    val = x[n, c, h, v]
                xs[i, j] = val
            # stage KB filters for this channel
            for e in range(tid, KB * R * S, NT):
                kk = e // (R * S)
                rs = e % (R * S)
                val = float32(0.0)
                if k0 + kk < K:
                    val = w[k0 + kk, c, rs // S, rs % S]
                ws[kk, rs // S, rs % S] = val
            cuda.syncthreads()
            for r in range(R):
                for s in range(S):
                    xv = xs[ty * sh + r, tx * sw + s]
                    for kk in range(KB):
                        acc[kk] += xv * ws[kk, r, s]
            cuda.syncthreads()             # before the next channel overwrites the tiles
        p = p0 + ty
        q = q0 + tx
        if p < P and q < Q:
            for kk in range(KB):
                if k0 + kk < K:
                    y[n, k0 + kk, p, q] = acc[kk] + b[k0 + kk]

    return kernel


# ----------------------------------------------------------------------------- v3: implicit GEMM
#
# OUT[row, col] = Σ_j A(row, j) · B(j, col), with A and B read through gather functions.
# ``d`` is the tuple (N, C, H, W, K, R, S, P, Q, sh, sw, ph, pw).


@cuda.jit(device=True)
def _fwd_a(w, row, j, d):              # W[k, (c,r,s)]: w is contiguous, (c,r,s) is its flat tail
    R, S, C = d[5], d[6], d[1]
    return w[row, j // (R * S), (j // S) % R, j % S]


@cuda.jit(device=True)
def _fwd_b(x, j, col, d):              # X̂[(c,r,s), (n,p,q)] = x[n, c, p·sh − ph + r, q·sw − pw + s]
    H, W, R, S, P, Q = d[2], d[3], d[5], d[6], d[7], d[8]
    sh, sw, ph, pw = d[9], d[10], d[11], d[12]
    s = j % S
    r = (j // S) % R
    c = j // (R * S)
    q = col % Q
    p = (col // Q) % P
    n = col // (P * Q)
    h = p * sh - ph + r
    v = q * sw - pw + s
    if h >= 0 and h < H and v >= 0 and v < W:
        return x[n, c, h, v]
    return np.float32(0.0)


@cuda.jit(device=True)
def _fwd_out(row, col, d):             # flat index of y[n, k, p, q]
    K, P, Q = d[4], d[7], d[8]
    q = col % Q
    p = (col // Q) % P
    n = col // (P * Q)
    return ((n * K + row) * P + p) * Q + q


@cuda.jit(device=True)
def _dgrad_a(w, row, j, d):            # W'[c, (k,r,s)] = w[k, c, r, s]
    R, S = d[5], d[6]
    return w[j // (R * S), row, (j // S) % R, j % S]


@cuda.jit(device=True)
def _dgrad_b(dy, j, col, d):           # dŶ[(k,r,s), (n,h,v)] = dy[n, k, (h+ph−r)/sh, (v+pw−s)/sw] or 0
    H, W, R, S, P, Q = d[2], d[3], d[5], d[6], d[7], d[8]
    sh, sw, ph, pw = d[9], d[10], d[11], d[12]
    s = j % S
    r = (j // S) % R
    k = j // (R * S)
    v = col % W
    h = (col // W) % H
    n = col // (H * W)
    hp = h + ph - r
    vq = v + pw - s
    if hp >= 0 and vq >= 0 and hp % sh == 0 and vq % sw == 0:
        p = hp // sh
        q = vq // sw
        if p < P and q < Q:
            return dy[n, k, p, q]
    return np.float32(0.0)


@cuda.jit(device=True)
def _dgrad_out(row, col, d):           # flat index of dx[n, c, h, v]
    C, H, W = d[1], d[2], d[3]
    v = col % W
    h = (col // W) % H
    n = col // (H * W)
    return ((n * C + row) * H + h) * W + v


@cuda.jit(device=True)
def _wgrad_a(dy, row, j, d):           # dY[k, (n,p,q)]
    P, Q = d[7], d[8]
    return dy[j // (P * Q), row, (j // Q) % P, j % Q]


@cuda.jit(device=True)
def _wgrad_b(x, j, col, d):            # X̂ᵀ[(n,p,q), (c,r,s)]
    return _fwd_b(x, col, j, d)


@cuda.jit(device=True)
def _wgrad_out(row, col, d):           # flat index of dw[k, (c,r,s)]
    C, R, S = d[1], d[5], d[6]
    return row * (C * R * S) + col


_GATHERS = {"forward": (_fwd_a, _fwd_b, _fwd_out),
            "dgrad": (_dgrad_a, _dgrad_b, _dgrad_out),
            "wgrad": (_wgrad_a, _wgrad_b, _wgrad_out)}

#: Tile configuration (BR rows × BC columns per block, BD-deep slices, TR×TC outputs per thread).
IGEMM_GPU = dict(BR=64, BC=64, BD=8, TR=4, TC=4)     # 16×16 = 256 threads, 16 FMAs per shared load pair
IGEMM_SMALL = dict(BR=8, BC=8, BD=4, TR=2, TC=2)     # 4×4 = 16 threads: quick on the simulator


@functools.lru_cache(maxsize=None)
def make_igemm(op, BR, BC, BD, TR, TC, split=False):
    """Compile the implicit-GEMM kernel for ``op`` in {"forward", "dgrad", "wgrad"}.

    Block of (BC/TC, BR/TR) threads computes a BR×BC tile of OUT.  Per BD-deep
    slice of the reduction it gathers A[BR×BD] and B[BD×BC] into shared memory,
    then every thread does TR·TC·BD multiply-adds from registers.  Thread
    (tx, ty) owns rows ``ty + i·(BR/TR)`` and columns ``tx + j·(BC/TC)``
    (strided, so a warp reads consecutive shared-memory words and writes
    consecutive output columns).  With ``split`` the grid's z dimension splits
    the reduction and partial sums are combined with ``cuda.atomic.add`` (the
    output must start at zero).
    """
    if op not in _GATHERS:
        raise ValueError(f"op: expected one of {sorted(_GATHERS)}, got {op!r}")
    if BR % TR or BC % TC:
        raise ValueError(f"tile: BR ({BR}) must be a multiple of TR ({TR}) and BC ({BC}) of TC ({TC})")
    a_at, b_at, out_at = _GATHERS[op]
    NTR, NTC = BR // TR, BC // TC
    NT = NTR * NTC
    float32 = np.float32

    @cuda.jit
    def kernel(A, B, bias, out, rows, cols, depth, chunk, d):
        As = cuda.shared.array((BD, BR), dtype=float32)   # A slice, transposed: As[j, row]
        Bs = cuda.shared.array((BD, BC), dtype=float32)
        acc = cuda.local.array((TR, TC), dtype=float32)
        a_reg = cuda.local.array(TR, dtype=float32)
        b_reg = cuda.local.array(TC, dtype=float32)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        tid = ty * NTC + tx
        col0 = cuda.blockIdx.x * BC
        row0 = cuda.blockIdx.y * BR
        j_begin = cuda.blockIdx.z * chunk
        j_end = min(depth, j_begin + chunk)
        for i in range(TR):
            for jj in range(TC):
                acc[i, jj] = 0.0
        for j0 in range(j_begin, j_end, BD):
            for e in range(tid, BR * BD, NT):          # consecutive threads: consecutive j
                rr = e // BD
                jj = e % BD
                val = float32(0.0)
                if row0 + rr < rows and j0 + jj < j_end:
                    val = a_at(A, row0 + rr, j0 + jj, d)
                As[jj, rr] = val
            for e in range(tid, BD * BC, NT):          # consecutive threads: consecutive columns
                jj = e // BC
                cc = e % BC
                val = float32(0.0)
                if col0 + cc < cols and j0 + jj < j_end:
                    val = b_at(B, j0 + jj, col0 + cc, d)
                Bs[jj, cc] = val
            cuda.syncthreads()
            for jj in range(BD):
                for i in range(TR):
                    a_reg[i] = As[jj, ty + i * NTR]
                for c in range(TC):
                    b_reg[c] = Bs[jj, tx + c * NTC]
                for i in range(TR):
                    for c in range(TC):
                        acc[i, c] += a_reg[i] * b_reg[c]
            cuda.syncthreads()
        for i in range(TR):
            row = row0 + ty + i * NTR
            if row < rows:
                for c in range(TC):
                    col = col0 + tx + c * NTC
                    if col < cols:
                        if split:
                            val = acc[i, c]
                            if cuda.blockIdx.z == 0:
                                val += bias[row]
                            cuda.atomic.add(out, out_at(row, col, d), val)
                        else:
                            out[out_at(row, col, d)] = acc[i, c] + bias[row]

    return kernel


# ----------------------------------------------------------------------------- launchers


def _dims(x_shape, w_shape, stride, padding):
    N, K, P, Q = conv_output_shape(x_shape, w_shape, stride, padding)
    _, C, H, W = x_shape
    _, _, R, S = w_shape
    (sh, sw), (ph, pw) = pair(stride, "stride"), pair(padding, "padding")
    return tuple(int(t) for t in (N, C, H, W, K, R, S, P, Q, sh, sw, ph, pw))


def _dev(a, name, ndim=None):
    """``a`` as a contiguous float32 array of the kernels' module (checked, never modified)."""
    if ndim is not None and getattr(a, "ndim", None) != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d array, got shape {getattr(a, 'shape', None)}")
    return to_device(a, np.float32)


def _launch_1d(kernel, total, args, block=128):
    kernel[max(1, cdiv(total, block)), block](*args)


def _igemm(op, A, B, bias, out, rows, cols, depth, d, cfg, splits=1):
    cfg = dict(IGEMM_GPU if cfg is None else cfg)
    splits = max(1, int(splits))
    chunk = cdiv(depth, splits)
    chunk = cdiv(chunk, cfg["BD"]) * cfg["BD"]          # whole BD slices per split
    splits = cdiv(depth, chunk)
    k = make_igemm(op, cfg["BR"], cfg["BC"], cfg["BD"], cfg["TR"], cfg["TC"], splits > 1)
    grid = (cdiv(cols, cfg["BC"]), cdiv(rows, cfg["BR"]), splits)
    block = (cfg["BC"] // cfg["TC"], cfg["BR"] // cfg["TR"])
    flat = out.reshape(-1)
    if splits > 1:
        flat[...] = 0
    k[grid, block](A, B, bias, flat, rows, cols, depth, chunk, d)
    return out


def conv2d_forward(x, w, b=None, stride=1, padding=0, version=3, *, tile=None, v2_tile=(8, 8, 4)):
    """y = conv2d(x, w) + b with kernel ``version`` (1, 2 or 3); arrays of the kernels' module.

    ``tile`` (v3) is a dict like :data:`IGEMM_GPU`; ``v2_tile`` is (TH, TW, KB).
    """
    d = _dims(x.shape, w.shape, stride, padding)
    N, C, H, W, K, R, S, P, Q, sh, sw, ph, pw = d
    x, w = _dev(x, "x", 4), _dev(w, "w", 4)
    bias = xp().zeros(K, np.float32) if b is None else _dev(b, "b", 1)
    if bias.shape != (K,):
        raise ValueError(f"b: expected shape ({K},), got {tuple(bias.shape)}")
    y = _new((N, K, P, Q), np.float32)
    if version == 1:
        _launch_1d(_fwd_v1, y.size, (x, w, bias, y, sh, sw, ph, pw))
    elif version == 2:
        TH, TW, KB = v2_tile
        kern = _make_fwd_v2(TH, TW, KB, R, S, sh, sw)
        kern[(cdiv(Q, TW), cdiv(P, TH), N * cdiv(K, KB)), (TW, TH)](x, w, bias, y, ph, pw)
    elif version == 3:
        _igemm("forward", w, x, bias, y, K, N * P * Q, C * R * S, d, tile)
    else:
        raise ValueError(f"version: expected one of {FORWARD_VERSIONS}, got {version!r}")
    return y


def conv2d_dgrad(dy, w, x_shape, stride=1, padding=0, version=3, *, tile=None):
    """dx of shape ``x_shape`` for the upstream gradient ``dy``; version 1 or 3."""
    d = _dims(tuple(x_shape), w.shape, stride, padding)
    N, C, H, W, K, R, S, P, Q, sh, sw, ph, pw = d
    if tuple(dy.shape) != (N, K, P, Q):
        raise ValueError(f"dy: expected shape {(N, K, P, Q)}, got {tuple(dy.shape)}")
    dy, w = _dev(dy, "dy", 4), _dev(w, "w", 4)
    dx = _new((N, C, H, W), np.float32)
    if version == 1:
        _launch_1d(_dgrad_v1, dx.size, (dy, w, dx, sh, sw, ph, pw))
    elif version == 3:
        _igemm("dgrad", w, dy, xp().zeros(C, np.float32), dx, C, N * H * W, K * R * S, d, tile)
    else:
        raise ValueError(f"version: expected one of {DGRAD_VERSIONS}, got {version!r}")
    return dx


def conv2d_wgrad(x, dy, w_shape, stride=1, padding=0, version=3, *, tile=None, splits=None):
    """dw of shape ``w_shape``; version 1 or 3 (``splits`` = split-K factor, default automatic)."""
    d = _dims(x.shape, tuple(w_shape), stride, padding)
    N, C, H, W, K, R, S, P, Q, sh, sw, ph, pw = d
    if tuple(dy.shape) != (N, K, P, Q):
        raise ValueError(f"dy: expected shape {(N, K, P, Q)}, got {tuple(dy.shape)}")
    x, dy = _dev(x, "x", 4), _dev(dy, "dy", 4)
    dw = _new((K, C, R, S), np.float32)
    if version == 1:
        _launch_1d(_wgrad_v1, dw.size, (x, dy, dw, sh, sw, ph, pw))
    elif version == 3:
        cfg = dict(IGEMM_GPU if tile is None else tile)
        if splits is None:   # aim for ~2 blocks per SM-ish; long reductions get split
            blocks = cdiv(K, cfg["BR"]) * cdiv(C * R * S, cfg["BC"])
            splits = max(1, min(cdiv(256, blocks), cdiv(N * P * Q, 64 * cfg["BD"])))
        _igemm("wgrad", dy, x, xp().zeros(K, np.float32), dw, K, C * R * S, N * P * Q, d, cfg, splits)
    else:
        raise ValueError(f"version: expected one of {WGRAD_VERSIONS}, got {version!r}")
    return dw


def conv2d_bias_grad(dy):
    """db[k] = Σ dy[:, k] (an array reduction of the kernels' module)."""
    return _dev(dy, "dy", 4).sum(axis=(0, 2, 3))


FORWARD_VERSIONS = (1, 2, 3)
DGRAD_VERSIONS = (1, 3)
WGRAD_VERSIONS = (1, 3)

# ----------------------------------------------------------------------------- check and benchmark


def random_problem(rng, shape, k, rs, stride, padding):
    """Random float32 inputs of one convolution on the host: x ``shape`` (N, C, H, W),
    w (k, C, *rs), b (k,) and an output gradient dy of the matching shape — what every
    check and benchmark of the convolution paths draws."""
    x = random_array(rng, shape)
    w = random_array(rng, (k, shape[1], *rs))
    b = random_array(rng, (k,))
    dy = random_array(rng, conv_output_shape(shape, w.shape, stride, padding))
    return x, w, b, dy


def check(op="forward", version=3, shape=(2, 3, 7, 6), k=4, rs=(3, 3), stride=1, padding=1,
          *, tile=None, splits=None, seed=0, tol=1e-5):
    """Run kernel ``version`` of ``op`` on random data and compare with the NumPy reference.

    ``shape`` is (N, C, H, W) of x; ``k`` output channels; ``rs`` filter size.
    Returns the relative error; raises AssertionError above ``tol``.
    """
    x, w, b, dy = random_problem(np.random.default_rng(seed), shape, k, rs, stride, padding)
    x64, w64, dy64 = (a.astype(np.float64) for a in (x, w, dy))
    if op == "forward":
        out = conv2d_forward(to_device(x), to_device(w), to_device(b), stride, padding, version, tile=tile)
        ref = conv2d_forward_ref(x64, w64, b.astype(np.float64), stride, padding)
    elif op == "dgrad":
        out = conv2d_dgrad(to_device(dy), to_device(w), shape, stride, padding, version, tile=tile)
        ref = conv2d_dgrad_ref(dy64, w64, shape, stride, padding)
    elif op == "wgrad":
        out = conv2d_wgrad(to_device(x), to_device(dy), w.shape, stride, padding, version,
                           tile=tile, splits=splits)
        ref = conv2d_wgrad_ref(x64, dy64, w.shape, stride, padding)
    else:
        raise ValueError(f"op: expected 'forward', 'dgrad' or 'wgrad', got {op!r}")
    sync()
    return assert_close(out, ref, tol, f"conv2d {op} v{version} stride={stride} padding={padding}")


def benchmark(shape=(128, 64, 56, 56), k=64, rs=(3, 3), stride=1, padding=1, repeats=20):
    """GFLOP/s of every version of every op on one layer (meaningful on a GPU only)."""
    x, w, _, dy = (to_device(a) for a in
                   random_problem(np.random.default_rng(0), shape, k, rs, stride, padding))
    flops = conv2d_flops(shape, w.shape, stride, padding)
    rows = []
    runs = [("forward", v, lambda v=v: conv2d_forward(x, w, None, stride, padding, v)) for v in FORWARD_VERSIONS]
    runs += [("dgrad", v, lambda v=v: conv2d_dgrad(dy, w, shape, stride, padding, v)) for v in DGRAD_VERSIONS]
    runs += [("wgrad", v, lambda v=v: conv2d_wgrad(x, dy, w.shape, stride, padding, v)) for v in WGRAD_VERSIONS]
    for op, v, fn in runs:
        t = time_kernel(fn, n_repeat=repeats)
        rows.append({"op": op, "version": v, "seconds": t, "gflops": flops / t / 1e9})
        print(f"conv2d {op:8s} v{v}: {t * 1e3:8.3f} ms  {flops / t / 1e9:8.1f} GFLOP/s")
    return rows
