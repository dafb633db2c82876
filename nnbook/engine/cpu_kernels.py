"""Compiled CPU kernels (numba) for the small convolutions of the training engine.

A stride-1 convolution with few channels (LeNet-5's 1 -> 6 and 6 -> 16) is a
poor fit for BLAS: lowered to a matrix product it is either tall and thin
(im2col: K = C*kh*kw = 25 or 150, 6 or 16 columns) or padded with the zeros of a
banded matrix (row lowering: 6.4x and 2.8x the useful arithmetic).  These
kernels compute it directly, one chunk of the batch per thread, with the
following layout:

* each input plane is kept zero-padded and *flat*, ``Hp*Wp`` numbers and a
  short tail, so output pixel ``p = i*Wp + j`` of a plane reads input
  ``p + r*Wp + t`` for filter tap ``(r, t)``.  The output is computed on the
  ``Ho x Wp`` grid, the ``Wp - Wo`` extra columns being discarded: every filter
  row then adds ``kw`` shifted copies of one long contiguous vector, a loop LLVM
  vectorises (``fastmath``), with ``kw`` products per load and store of the
  accumulator;
* bias, the 2x2 max-pool and the ReLU after it are applied while the
  accumulator is still in the cache (the *epilogue*): one pass writes the
  pooled, rectified output and a one-byte code per output (which window member
  won, or -1 where the ReLU gave zero);
* the backward pass rebuilds the convolution's output gradient on the same grid
  from those codes (zeros elsewhere, the extra columns included), takes the
  weight gradient as ``kw`` dot products per filter row, and the input gradient
  as the same forward kernel run on that gradient with the flipped filters (the
  extra zero columns are exactly the horizontal padding a "full" convolution
  needs).

A strided convolution (a ResNet's stride-2 3x3) is split into its stride-1 parts:
the padded input's s*s phases (every s-th row and column from offset (a, b)), each
convolved with the taps of the filter that land on it (:class:`StridedConvPlan`).

Which convolutions the engine gives to these kernels is decided by measurement
(:func:`applies`, ``python -m nnbook bench lenet5`` and ``bench resnet``): they win
where BLAS must either multiply thin matrices or pad a band with zeros, and there
are few channels (LeNet-5's first layer); with tens to hundreds of channels (every
convolution of a ResNet) the arithmetic is a good matrix product and BLAS wins.

Every kernel is compiled once per dtype and cached on disk (``cache=True``).
Without numba (``HAVE_NUMBA`` False) the engine runs its NumPy ops instead; the
results are the same up to float rounding order.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

try:                                      # numba is optional: the engine falls back to NumPy
    from numba import njit
    HAVE_NUMBA = True
except ImportError:                       # pragma: no cover - exercised by monkeypatching
    HAVE_NUMBA = False

ENABLED = True            # tests switch the compiled kernels off to compare
# C * F above which BLAS (row lowering / im2col) is used instead.  Measured here,
# batch 128, float32, forward + backward with pool and ReLU (python -m nnbook bench
# lenet5, fastest of 15 alternated calls): 1 -> 6 channels 5x5 on 28x28: 2.7 ms
# compiled, 5.8 ms row-lowered; 6 -> 16 on 14x14: 9.3 ms compiled, 5.7 ms
# row-lowered.  Whole LeNet-5 passes on two threads, 5 paired rounds against
# PyTorch: conv1 compiled only 1.13x PyTorch's time, both compiled 1.25x, neither
# 1.59x.  ResNet-15's convolutions larger than 1x1 (batch 128, 28x28 input, fastest
# of 25 alternated calls, forward + backward): 7x7 stem 1 -> 64 43.6 ms compiled,
# 23.8 ms BLAS; 3x3 16 -> 16 11.4 vs 7.0; stride-2 3x3 32, 64 and 128 channels 17.8
# vs 9.1, 41.4 vs 6.4, 135 vs 9.4: BLAS everywhere, as for ResNet-57's stride-1 3x3s.
MAX_WORK_CHANNELS = 32
# "auto": the rule above; "kernel": every geometry the kernels handle (stride 1, and
# equal strides through the phase split of StridedConvPlan), as the benchmarks
# measure them against BLAS; "blas": none.
CHOICE = "auto"
COMPILE_S = {}            # seconds spent compiling (or loading from the cache), by kernels


def available():
    """Whether the compiled kernels can run (numba importable and not switched off)."""
    return HAVE_NUMBA and ENABLED


def applies(x_shape, W_shape, stride, padding):
    """Whether a convolution of this geometry runs on the compiled kernels: by
    default (``CHOICE == "auto"``) stride 1 and few channels (many channels, or a
    stride: BLAS products win, measured by ``python -m nnbook bench resnet``)."""
    if not available() or CHOICE == "blas" or stride[0] != stride[1]:
        return False
    if CHOICE == "kernel":
        return True
    F, C = W_shape[0], W_shape[1]
    return tuple(stride) == (1, 1) and C * F <= MAX_WORK_CHANNELS


def plan(x_shape, W_shape, stride, padding, dtype):
    """The compiled plan of a convolution without pool: :class:`ConvPlan` for stride
    1, :class:`StridedConvPlan` otherwise."""
    if tuple(stride) == (1, 1):
        return ConvPlan(x_shape, W_shape, padding, dtype, False, False)
    return StridedConvPlan(x_shape, W_shape, stride[0], padding, dtype)


if HAVE_NUMBA:
    _OPTS = {"cache": True, "fastmath": True, "boundscheck": False,
             "error_model": "numpy", "nogil": True}

    # Every array below is indexed by the bare loop counter p: the taps are separate
    # slices (s0 = s[0:], s1 = s[1:], ...) rather than s[p + 1], which LLVM could not
    # prove free of overflow and left unvectorised (scalar code, measured 5x slower).
    # The slices of one input row serve every filter (the loop over f is inside).
    # Zeros come from ``zero`` (the data's dtype): ``x * 0`` would be float64 in numba.
    @njit(**_OPTS)
    def _corr(acc, src, off, w, Ws, L):
        """acc[f, p] += sum_{c,r,t} w[f, c, r, t] * src[c, off + p + r*Ws + t], p < L."""
        F, C, kh, kw = w.shape
        for c in range(C):
            sc = src[c]
            for r in range(kh):
                o = off + r * Ws
                if kw == 5:
                    s0, s1, s2 = sc[o:o + L], sc[o + 1:o + 1 + L], sc[o + 2:o + 2 + L]
                    s3, s4 = sc[o + 3:o + 3 + L], sc[o + 4:o + 4 + L]
                    for f in range(F):
                        w0, w1, w2 = w[f, c, r, 0], w[f, c, r, 1], w[f, c, r, 2]
                        w3, w4 = w[f, c, r, 3], w[f, c, r, 4]
                        a = acc[f]
                        for p in range(L):
                            a[p] += (w0 * s0[p] + w1 * s1[p] + w2 * s2[p] + w3 * s3[p]
                                     + w4 * s4[p])
                else:
                    for t in range(kw):
                        st = sc[o + t:o + t + L]
                        for f in range(F):
                            wt = w[f, c, r, t]
                            a = acc[f]
                            for p in range(L):
                                a[p] += wt * st[p]

    @njit(**_OPTS)
    def _dots(dW, e, eoff, src, Ws, L, zero):
        """dW[f, c, r, t] += sum_{p < L} e[f, eoff + p] * src[c, p + r*Ws + t]."""
        F, C, kh, kw = dW.shape
        for c in range(C):
            sc = src[c]
            for r in range(kh):
                o = r * Ws
                if kw == 5:
                    s0, s1, s2 = sc[o:o + L], sc[o + 1:o + 1 + L], sc[o + 2:o + 2 + L]
                    s3, s4 = sc[o + 3:o + 3 + L], sc[o + 4:o + 4 + L]
                    for f in range(F):
                        ef = e[f, eoff:eoff + L]
                        a0 = a1 = a2 = a3 = a4 = zero
                        for p in range(L):
                            g = ef[p]
                            a0 += g * s0[p]
                            a1 += g * s1[p]
                            a2 += g * s2[p]
                            a3 += g * s3[p]
                            a4 += g * s4[p]
                        dW[f, c, r, 0] += a0
                        dW[f, c, r, 1] += a1
                        dW[f, c, r, 2] += a2
                        dW[f, c, r, 3] += a3
                        dW[f, c, r, 4] += a4
                else:
                    for t in range(kw):
                        st = sc[o + t:o + t + L]
                        for f in range(F):
                            ef = e[f, eoff:eoff + L]
                            a = zero
                            for p in range(L):
                                a += ef[p] * st[p]
                            dW[f, c, r, t] += a

    # One chunk of the batch per thread: the functions release the GIL (nogil) and
    # run in a small pool of Python threads (:func:`_run_chunks`).  numba's own
    # ``parallel=True`` was slower twice over here: a prange body did not vectorise,
    # and its OpenMP threads spin after each call, fighting OpenBLAS's threads
    # (a LeNet-5 pass took 30 s instead of 1 s, measured).
    @njit(**_OPTS)
    def _forward_images(n0, n1, x, xpad, W, b, ph, pw, Ws, Ho, Wo, pool, relu, out, code,
                        acc):
        """Convolution (+ bias) of the images n0 <= n < n1 of x (N, C, H, W) with W
        (F, C, kh, kw), then, with ``pool``, the 2x2 max-pool and, with ``relu``, the
        ReLU; into out (N, F, Ho, Wo) or (N, F, Ho//2, Wo//2) and the window codes
        (int8, -1: rectified to 0).  xpad (N, C, Hp*Ws + kw - 1): the padded planes,
        row stride Ws >= W + 2*pw (border zero, kept for the backward pass);
        acc (F, >= Ho*Ws): scratch."""
        C, H, Wd = x.shape[1], x.shape[2], x.shape[3]
        F = W.shape[0]
        L = Ho * Ws
        zero = np.zeros(1, W.dtype)[0]
        for n in range(n0, n1):
            for c in range(C):
                pl = xpad[n, c]
                xs = x[n, c]
                for i in range(H):
                    row = pl[(i + ph) * Ws + pw:(i + ph) * Ws + pw + Wd]
                    xi = xs[i]
                    for j in range(Wd):
                        row[j] = xi[j]
            for f in range(F):
                bf = b[f]
                a = acc[f]
                for p in range(L):
                    a[p] = bf
            _corr(acc, xpad[n], 0, W, Ws, L)
            for f in range(F):
                a = acc[f]
                o = out[n, f]
                if pool:
                    cd = code[n, f]
                    for i2 in range(Ho // 2):
                        top = a[2 * i2 * Ws:2 * i2 * Ws + Wo]
                        bot = a[(2 * i2 + 1) * Ws:(2 * i2 + 1) * Ws + Wo]
                        oi = o[i2]
                        ci = cd[i2]
                        for j2 in range(Wo // 2):
                            m = top[2 * j2]
                            w = 0
                            if top[2 * j2 + 1] > m:
                                m = top[2 * j2 + 1]
                                w = 1
                            if bot[2 * j2] > m:
                                m = bot[2 * j2]
                                w = 2
                            if bot[2 * j2 + 1] > m:
                                m = bot[2 * j2 + 1]
                                w = 3
                            if relu and not m > 0:
                                m = zero
                                w = -1
                            oi[j2] = m
                            ci[j2] = w
                else:
                    for i in range(Ho):
                        ai = a[i * Ws:i * Ws + Wo]
                        oi = o[i]
                        for j in range(Wo):
                            v = ai[j]
                            if relu and not v > 0:
                                v = zero
                            oi[j] = v

    @njit(**_OPTS)
    def _backward_images(n0, n1, dout, code, xpad, W, WflipT, ph, pw, Ws, Ho, Wo, pool,
                         relu, out, need_dx, dx, dWk, dbk, dk, accx):
        """Gradients of :func:`_forward_images` for the images n0 <= n < n1: dx
        (N, C, H, W) if ``need_dx``; their weight and bias gradients added to dWk
        (F, C, kh, kw), dbk (F,).  ``out``: the forward output (its sign is the
        ReLU's mask without a pool); WflipT (C, F, kh, kw): the filters turned by
        180 degrees, channels swapped.  dk (F, M + Ho*Ws + (kh-1)*Ws), M = (kh-1)*Ws
        + kw - 1: scratch for the output gradient on the flat grid with zero
        margins; accx (C, Hp*Ws): scratch."""
        F, _, kh, kw = W.shape
        L = Ho * Ws
        M = (kh - 1) * Ws + kw - 1
        Hp = Ho + kh - 1
        zero = np.zeros(1, W.dtype)[0]
        for n in range(n0, n1):
            for f in range(F):
                e = dk[f, M:M + L]
                for p in range(L):
                    e[p] = 0
                s = zero
                g0 = dout[n, f]
                if pool:
                    cd = code[n, f]
                    for i2 in range(Ho // 2):
                        for j2 in range(Wo // 2):
                            w = cd[i2, j2]
                            if w >= 0:
                                g = g0[i2, j2]
                                e[(2 * i2 + w // 2) * Ws + 2 * j2 + w % 2] = g
                                s += g
                else:
                    o = out[n, f]
                    for i in range(Ho):
                        for j in range(Wo):
                            g = g0[i, j]
                            if relu and not o[i, j] > 0:
                                g = zero
                            e[i * Ws + j] = g
                            s += g
                dbk[f] += s
            _dots(dWk, dk, M, xpad[n], Ws, L, zero)
            if need_dx:
                C, H, Wd = dx.shape[1], dx.shape[2], dx.shape[3]
                for c in range(C):
                    a = accx[c]
                    for p in range(Hp * Ws):
                        a[p] = 0
                _corr(accx, dk, 0, WflipT, Ws, Hp * Ws)
                for c in range(C):
                    a = accx[c]
                    dxs = dx[n, c]
                    for i in range(H):
                        ai = a[(i + ph) * Ws + pw:(i + ph) * Ws + pw + Wd]
                        di = dxs[i]
                        for j in range(Wd):
                            di[j] = ai[j]

    # Strided convolutions (a ResNet's stride-2 3x3): the padded input split into its
    # s*s *phases*, P_ab[c, u, v] = xpad[c, s*u + a, s*v + b], each a flat plane like
    # the ones above.  With r = s*r' + a and t = s*t' + b, output (i, j) reads
    # xpad[c, s*(i + r') + a, s*(j + t') + b] = P_ab[c, i + r', j + t']: a strided
    # convolution is the sum of s*s stride-1 ones, phase ab with the sub-filter
    # W[:, :, a::s, b::s] (3x3, s = 2: 2x2, 2x1, 1x2 and 1x1, the 9 taps once).
    @njit(**_OPTS)
    def _phase_copy(plane, img, s, a, b, ph, pw, Ws, Hq, Wq, to_plane):
        """Between phase (a, b) of an image's padded plane, flat with row stride Ws, and
        the image itself (H, W): plane[u*Ws + v] = img[s*u + a - ph, s*v + b - pw] where
        that lies inside the image (``to_plane``), or the other way round.  Positions
        outside the image are neither read nor written."""
        H, Wd = img.shape
        for u in range(Hq):
            i = s * u + a - ph
            if i < 0 or i >= H:
                continue
            for v in range(Wq):
                j = s * v + b - pw
                if j >= 0 and j < Wd:
                    if to_plane:
                        plane[u * Ws + v] = img[i, j]
                    else:
                        img[i, j] = plane[u * Ws + v]

    @njit(**_OPTS)
    def _split_phases(n, x, xph, s, ph, pw, Ws, Hq, Wq):
        """xph[n, a*s + b, c, u*Ws + v] = x[n, c, s*u + a - ph, s*v + b - pw] where that
        lies inside x (the rest of xph is zero from its allocation, never written)."""
        for a in range(s):
            for b in range(s):
                for c in range(x.shape[1]):
                    _phase_copy(xph[n, a * s + b, c], x[n, c], s, a, b, ph, pw, Ws, Hq, Wq,
                                True)

    @njit(**_OPTS)
    def _forward_strided(n0, n1, x, xph, subW, phase, s, ph, pw, Ws, Hq, Wq, Ho, Wo, b,
                         out, acc):
        """Strided convolution (+ bias) of the images n0 <= n < n1 into out
        (N, F, Ho, Wo): the phases of each image (:func:`_split_phases`), then one
        stride-1 pass per phase ``phase[q]`` with its sub-filter ``subW[q]``; acc
        (F, >= Ho*Ws): scratch."""
        F = out.shape[1]
        L = Ho * Ws
        for n in range(n0, n1):
            _split_phases(n, x, xph, s, ph, pw, Ws, Hq, Wq)
            for f in range(F):
                bf = b[f]
                a = acc[f]
                for p in range(L):
                    a[p] = bf
            for q in range(len(subW)):
                _corr(acc, xph[n, phase[q]], 0, subW[q], Ws, L)
            for f in range(F):
                a = acc[f]
                o = out[n, f]
                for i in range(Ho):
                    ai = a[i * Ws:i * Ws + Wo]
                    oi = o[i]
                    for j in range(Wo):
                        oi[j] = ai[j]

    @njit(**_OPTS)
    def _backward_strided(n0, n1, dout, xph, subWflipT, phase, offs, s, ph, pw, Ws, Hq, Wq,
                          Ho, Wo, M, need_dx, dx, dWsub, dbk, dk, accx):
        """Gradients of :func:`_forward_strided`: dx (N, C, H, W) if ``need_dx``, the
        sub-filters' gradients added to ``dWsub[q]``, the bias's to dbk.  dk (F, M +
        ...): the output gradient on the flat grid after a zero margin of M; phase q's
        input gradient is the full correlation of it with the turned sub-filter
        ``subWflipT[q]`` (C, F, ., .), read from offset ``offs[q]``; accx (C,
        >= Hq*Ws): scratch."""
        F = dout.shape[1]
        L = Ho * Ws
        zero = np.zeros(1, dk.dtype)[0]
        for n in range(n0, n1):
            for f in range(F):
                e = dk[f, M:M + L]
                for p in range(L):
                    e[p] = 0
                g0 = dout[n, f]
                sm = zero
                for i in range(Ho):
                    for j in range(Wo):
                        g = g0[i, j]
                        e[i * Ws + j] = g
                        sm += g
                dbk[f] += sm
            for q in range(len(dWsub)):
                _dots(dWsub[q], dk, M, xph[n, phase[q]], Ws, L, zero)
            if not need_dx:
                continue
            C, H, Wd = dx.shape[1], dx.shape[2], dx.shape[3]
            if len(dWsub) < s * s:              # phases no tap reads: zero gradient
                for c in range(C):
                    for i in range(H):
                        for j in range(Wd):
                            dx[n, c, i, j] = 0
            for q in range(len(dWsub)):
                a0, b0 = phase[q] // s, phase[q] % s
                for c in range(C):
                    ac = accx[c]
                    for p in range(Hq * Ws):
                        ac[p] = 0
                _corr(accx, dk, offs[q], subWflipT[q], Ws, Hq * Ws)
                for c in range(C):
                    _phase_copy(accx[c], dx[n, c], s, a0, b0, ph, pw, Ws, Hq, Wq, False)


_POOL = None


def threads():
    """Threads the kernels use: ``NNBOOK_THREADS``, else ``OMP_NUM_THREADS`` (what the
    benchmarks set for every library), else the CPUs this process may run on."""
    for var in ("NNBOOK_THREADS", "OMP_NUM_THREADS"):
        v = os.environ.get(var, "")
        if v.isdigit() and int(v) > 0:
            return int(v)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _run_chunks(chunks, work):
    """``work(k)`` for k < chunks: chunk 0 in this thread, the others in a pool of
    threads kept for the process (the kernels release the GIL)."""
    global _POOL
    if chunks == 1:
        work(0)
        return
    if _POOL is None or _POOL._max_workers < chunks - 1:
        _POOL = ThreadPoolExecutor(max_workers=chunks - 1, thread_name_prefix="nnbook")
    futures = [_POOL.submit(work, k) for k in range(1, chunks)]
    work(0)
    for f in futures:
        f.result()


def row_stride(Wp, Ho, lanes=16):
    """The row stride of the flat planes: the padded width ``Wp``, widened (by at most
    a quarter) so that the Ho*stride outputs of a plane fill whole vectors of
    ``lanes`` numbers (no scalar remainder loop)."""
    for s in range(Wp, Wp + Wp // 4 + 1):
        if (Ho * s) % lanes == 0:
            return s
    return Wp


class ConvPlan:
    """Buffers of the compiled convolution (+ bias, 2x2 max-pool, ReLU) for one
    geometry, kept across steps (fresh memory is slow to touch)."""

    def __init__(self, x_shape, W_shape, padding, dtype, pool, relu):
        N, C, H, Wd = x_shape
        F, _, kh, kw = W_shape
        ph, pw = padding
        self.pool, self.relu = bool(pool), bool(relu)
        self.ph, self.pw = ph, pw
        self.Hp, self.Wp = H + 2 * ph, Wd + 2 * pw
        self.Ho, self.Wo = self.Hp - kh + 1, self.Wp - kw + 1
        self.Ws = Ws = row_stride(self.Wp, self.Ho)
        self.x_shape, self.W_shape = tuple(x_shape), tuple(W_shape)
        dt = np.dtype(dtype)
        self.chunks = chunks = max(1, min(N, threads()))
        self.xpad = np.zeros((N, C, self.Hp * Ws + kw - 1), dt)
        shape = (N, F, self.Ho // 2, self.Wo // 2) if pool else (N, F, self.Ho, self.Wo)
        self.out = np.empty(shape, dt)
        self.code = np.empty(shape if pool else (1, 1, 1, 1), np.int8)
        self.acc = np.empty((chunks, F, self.Ho * Ws), dt)
        self.accx = np.empty((chunks, C, self.Hp * Ws), dt)
        M = (kh - 1) * Ws + kw - 1
        self.dpad = np.zeros((chunks, F, M + self.Ho * Ws + (kh - 1) * Ws), dt)
        self.dW_part = np.empty((chunks, *W_shape), dt)
        self.db_part = np.empty((chunks, F), dt)
        self.dx = np.empty(x_shape, dt)
        self.zero_b = np.zeros(F, dt)

    def forward(self, x, W, b):
        """The layer's output (a buffer of this plan, overwritten by the next call)."""
        x = np.ascontiguousarray(x)
        W = np.ascontiguousarray(W)
        self.W = W
        _compiled(W.dtype)
        b = self.zero_b if b is None else b
        N = x.shape[0]
        _run_chunks(self.chunks, lambda k: _forward_images(
            k * N // self.chunks, (k + 1) * N // self.chunks, x, self.xpad, W, b, self.ph,
            self.pw, self.Ws, self.Ho, self.Wo, self.pool, self.relu, self.out, self.code,
            self.acc[k]))
        return self.out

    def backward(self, dout, need_dx, has_b):
        """``(dx, dW, db)`` from the gradient of the output (dx None unless
        ``need_dx``, db None unless ``has_b``)."""
        W = self.W
        dout = np.ascontiguousarray(dout, dtype=W.dtype)
        WflipT = np.ascontiguousarray(W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        N, need_dx = dout.shape[0], bool(need_dx)
        self.dW_part.fill(0)
        self.db_part.fill(0)
        _run_chunks(self.chunks, lambda k: _backward_images(
            k * N // self.chunks, (k + 1) * N // self.chunks, dout, self.code, self.xpad, W,
            WflipT, self.ph, self.pw, self.Ws, self.Ho, self.Wo, self.pool, self.relu,
            self.out, need_dx, self.dx, self.dW_part[k], self.db_part[k], self.dpad[k],
            self.accx[k]))
        dW = self.dW_part.sum(axis=0)
        db = self.db_part.sum(axis=0) if has_b else None
        return (self.dx if need_dx else None), dW, db


class StridedConvPlan:
    """Buffers of the compiled strided convolution (+ bias; no pool or ReLU) for one
    geometry, kept across steps; see :func:`_forward_strided`."""

    def __init__(self, x_shape, W_shape, stride, padding, dtype):
        N, C, H, Wd = x_shape
        F, _, kh, kw = W_shape
        s = int(stride)
        ph, pw = padding
        self.s, self.ph, self.pw = s, ph, pw
        Hp, Wp = H + 2 * ph, Wd + 2 * pw
        self.Ho, self.Wo = (Hp - kh) // s + 1, (Wp - kw) // s + 1
        self.Hq, self.Wq = -(-Hp // s), -(-Wp // s)
        # the phases some tap reads, and their sub-filters' shapes
        self.phases = [(a, b) for a in range(s) for b in range(s) if a < kh and b < kw]
        self.sub = [(-(-(kh - a) // s), -(-(kw - b) // s)) for a, b in self.phases]
        kh0, kw0 = self.sub[0]
        # a row must end in at least kw0 - 1 zero columns (the full correlation of the
        # input gradient reads them as the left border of the next row)
        self.Ws = Ws = row_stride(max(self.Wq, self.Wo + kw0 - 1), self.Ho)
        self.M = (kh0 - 1) * Ws + kw0 - 1
        self.offs = np.array([self.M - ((sh - 1) * Ws + sw - 1) for sh, sw in self.sub],
                             np.int64)
        self.phase = np.array([a * s + b for a, b in self.phases], np.int64)
        self.x_shape, self.W_shape = tuple(x_shape), tuple(W_shape)
        dt = np.dtype(dtype)
        self.chunks = chunks = max(1, min(N, threads()))
        self.xph = np.zeros((N, s * s, C, (max(self.Hq, self.Ho + kh0) + 1) * Ws + kw0), dt)
        self.out = np.empty((N, F, self.Ho, self.Wo), dt)
        self.acc = np.empty((chunks, F, self.Ho * Ws), dt)
        self.accx = np.empty((chunks, C, self.Hq * Ws), dt)
        self.dk = np.zeros((chunks, F, self.M + (self.Hq + kh0 + 1) * Ws + kw0), dt)
        self.dW_part = [np.empty((chunks, F, C, sh, sw), dt) for sh, sw in self.sub]
        self.db_part = np.empty((chunks, F), dt)
        self.dx = np.empty(x_shape, dt)
        self.zero_b = np.zeros(F, dt)

    def forward(self, x, W, b):
        """The layer's output (a buffer of this plan, overwritten by the next call)."""
        x = np.ascontiguousarray(x)
        s = self.s
        self.W = W
        subW = tuple(np.ascontiguousarray(W[:, :, a::s, b::s]) for a, b in self.phases)
        _compiled(W.dtype, strided=True)
        b = self.zero_b if b is None else b
        N = x.shape[0]
        _run_chunks(self.chunks, lambda k: _forward_strided(
            k * N // self.chunks, (k + 1) * N // self.chunks, x, self.xph, subW, self.phase,
            s, self.ph, self.pw, self.Ws, self.Hq, self.Wq, self.Ho, self.Wo, b, self.out,
            self.acc[k]))
        return self.out

    def backward(self, dout, need_dx, has_b):
        """``(dx, dW, db)`` from the gradient of the output (dx None unless
        ``need_dx``, db None unless ``has_b``)."""
        W, s = self.W, self.s
        dout = np.ascontiguousarray(dout, dtype=W.dtype)
        flipT = tuple(np.ascontiguousarray(W[:, :, a::s, b::s][:, :, ::-1, ::-1]
                                           .transpose(1, 0, 2, 3)) for a, b in self.phases)
        N, need_dx = dout.shape[0], bool(need_dx)
        for p in self.dW_part:
            p.fill(0)
        self.db_part.fill(0)
        _run_chunks(self.chunks, lambda k: _backward_strided(
            k * N // self.chunks, (k + 1) * N // self.chunks, dout, self.xph, flipT,
            self.phase, self.offs, s, self.ph, self.pw, self.Ws, self.Hq, self.Wq, self.Ho,
            self.Wo, self.M, need_dx, self.dx, tuple(p[k] for p in self.dW_part),
            self.db_part[k], self.dk[k], self.accx[k]))
        dW = np.empty(self.W_shape, W.dtype)
        for (a, b), p in zip(self.phases, self.dW_part):
            p.sum(axis=0, out=dW[:, :, a::s, b::s])
        db = self.db_part.sum(axis=0) if has_b else None
        return (self.dx if need_dx else None), dW, db


def _compiled(dtype, strided=False):
    """Compile (or load from numba's cache) the kernels for ``dtype`` (the stride-1
    ones, or with ``strided`` those of :class:`StridedConvPlan`) once, on a tiny
    problem, and record the seconds it took in :data:`COMPILE_S`."""
    dt = np.dtype(dtype)
    key = dt.name + ("-strided" if strided else "")
    if key in COMPILE_S:
        return
    COMPILE_S[key] = 0.0                     # no recursion through forward()
    t = time.perf_counter()
    W = np.ones((1, 1, 3, 3), dt)
    for pool in ((None,) if strided else (True, False)):
        p = (StridedConvPlan((1, 1, 5, 5), W.shape, 2, (1, 1), dt) if strided
             else ConvPlan((1, 1, 4, 4), W.shape, (1, 1), dt, pool, True))
        p.forward(np.ones(p.x_shape, dt), W, np.zeros(1, dt))
        p.backward(np.ones(p.out.shape, dt), True, True)
    COMPILE_S[key] = time.perf_counter() - t


def compile_seconds():
    """Seconds spent so far compiling or loading the kernels, all dtypes together."""
    return sum(COMPILE_S.values())
