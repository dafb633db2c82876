"""Batch normalisation in the training engine: fused passes over memory.

The reference layers (:mod:`nnbook.norm`) compute batch normalisation as the
equations read: a mean, a centred copy, a variance, a normalised copy, a scaled
copy, and as many arrays again in the backward pass, each a full pass over the
activations.  On a CPU those passes, not the arithmetic, are the cost.  The ops
here compute the same numbers in as few passes as the maths allows:

* forward (training): one pass for the per-channel sum and sum of squares,
  accumulated in float64 (``var = E[x^2] - mean^2`` loses nothing in float64 at
  these sizes, where float32 would); one pass that writes
  ``out = x * scale + shift`` with ``scale = gamma / sqrt(var + eps)`` and
  ``shift = beta - mean * scale``, with the ReLU that follows, the residual
  addition of a block, or the 2x2 max-pool of a ResNet's stem applied on the way;
* backward: one pass for the two reductions ``sum dpre`` and
  ``sum dpre * (x - mean)`` (``dpre``: the gradient after the ReLU's mask, read
  from the output: ``out > 0``), one elementwise pass
  ``dx = k1 * dpre + k2 + k3 * (x - mean)`` with per-channel ``k``'s (the
  reference's ``gamma * inv * (dout - dbeta/m - xhat * dgamma/m)`` expanded);
* the running statistics are updated with the reference's formula, in the
  layer's dtype (Bessel's correction ``m / (m - 1)`` on the variance);
* evaluation mode (``layer.eval()``): the running statistics, ``dx = k1 * dpre``.

Layouts: an op reads its input in whatever memory layout the op below produced
(NCHW, the row-lowered convolution's (N, H, C, W), or channels-last (N, H, W, C))
and writes its output channels-last, the layout a 1x1 convolution multiplies as
one matrix.  The kernels are compiled with numba where it is installed; without
it the same passes run as NumPy expressions (more passes, same numbers up to
rounding order).
"""
from __future__ import annotations

import os

import numpy as np

from ..layers import ReLU
from ..norm import BatchNorm1d, BatchNorm2d
from ..pool import MaxPool2D
from .ops import _Op

try:                                      # numba is optional: NumPy passes otherwise
    from numba import njit
    HAVE_NUMBA = True
except ImportError:                       # pragma: no cover - exercised by monkeypatching
    HAVE_NUMBA = False

ENABLED = True            # tests switch the compiled kernels off to compare


def compiled():
    """Whether the numba kernels run (else the NumPy passes)."""
    return HAVE_NUMBA and ENABLED


# ------------------------------------------------------------------------------ views
# x-side arrays (the layer's input, its gradient) are indexed (N, H, C, W); y-side
# arrays (output, output gradient, residual) (N, H, W, C).  Both are views of NCHW-
# shaped arrays of any strides; 2-D (N, C) arrays become (N, 1, C, 1) / (N, 1, 1, C).
def xview(a):
    return a.reshape(a.shape[0], 1, a.shape[1], 1) if a.ndim == 2 else a.transpose(0, 2, 1, 3)


def yview(a):
    return a.reshape(a.shape[0], 1, 1, a.shape[1]) if a.ndim == 2 else a.transpose(0, 2, 3, 1)


def channels_last(a):
    """Whether an NCHW-shaped array (or (N, C)) is stored (N, H, W, C)."""
    return a.ndim == 2 and a.flags.c_contiguous or a.ndim == 4 and \
        a.transpose(0, 2, 3, 1).flags.c_contiguous


def _cl(x4):
    """Loop order for an (N, H, C, W) view: channels innermost if they are adjacent."""
    return bool(x4.shape[3] == 1 or abs(x4.strides[2]) <= abs(x4.strides[3]))


# --------------------------------------------------------------------------- kernels
if HAVE_NUMBA:
    _OPTS = {"cache": True, "fastmath": True, "boundscheck": False, "error_model": "numpy",
             "nogil": True}

    @njit(**_OPTS)
    def _k_stats(n0, n1, x, cl, s1, s2):
        """s1[c] = sum x, s2[c] = sum x^2 over (N, H, W), in float64 (x: (N, H, C, W))."""
        _, H, C, W = x.shape
        s1[:] = 0.0
        s2[:] = 0.0
        for n in range(n0, n1):
            for h in range(H):
                if cl:
                    for w in range(W):
                        for c in range(C):
                            v = np.float64(x[n, h, c, w])
                            s1[c] += v
                            s2[c] += v * v
                else:
                    for c in range(C):
                        t1 = 0.0
                        t2 = 0.0
                        for w in range(W):
                            v = np.float64(x[n, h, c, w])
                            t1 += v
                            t2 += v * v
                        s1[c] += t1
                        s2[c] += t2

    @njit(**_OPTS)
    def _k_apply(n0, n1, x, cl, scale, shift, relu, r, rscale, rshift, has_r, out):
        """out = x * scale + shift [+ r * rscale + rshift] [ReLU] (x: (N, H, C, W);
        r, out: (N, H, W, C))."""
        _, H, C, W = x.shape
        for n in range(n0, n1):
            for h in range(H):
                if cl:
                    for w in range(W):
                        for c in range(C):
                            v = x[n, h, c, w] * scale[c] + shift[c]
                            if has_r:
                                v += r[n, h, w, c] * rscale[c] + rshift[c]
                            if relu and not v > 0:
                                v = 0.0
                            out[n, h, w, c] = v
                else:
                    for c in range(C):
                        a, b = scale[c], shift[c]
                        ra, rb = rscale[c], rshift[c]
                        for w in range(W):
                            v = x[n, h, c, w] * a + b
                            if has_r:
                                v += r[n, h, w, c] * ra + rb
                            if relu and not v > 0:
                                v = 0.0
                            out[n, h, w, c] = v

    @njit(**_OPTS)
    def _k_relu_grad(n0, n1, d, out, dpre):
        """dpre = d where out > 0, else 0 (all (N, H, W, C))."""
        _, H, W, C = d.shape
        for n in range(n0, n1):
            for h in range(H):
                for w in range(W):
                    for c in range(C):
                        dpre[n, h, w, c] = d[n, h, w, c] if out[n, h, w, c] > 0 else 0.0

    @njit(**_OPTS)
    def _k_bwd_reduce(n0, n1, d, x, cl, mean, mask, use_mask, s1, s2):
        """s1[c] = sum dpre, s2[c] = sum dpre * (x - mean), dpre = d [where mask > 0]
        (d, mask: (N, H, W, C); x: (N, H, C, W)); float64."""
        _, H, C, W = x.shape
        s1[:] = 0.0
        s2[:] = 0.0
        for n in range(n0, n1):
            for h in range(H):
                if cl:
                    for w in range(W):
                        for c in range(C):
                            g = np.float64(d[n, h, w, c])
                            if use_mask and not mask[n, h, w, c] > 0:
                                g = 0.0
                            s1[c] += g
                            s2[c] += g * (x[n, h, c, w] - mean[c])
                else:
                    for c in range(C):
                        m = mean[c]
                        t1 = 0.0
                        t2 = 0.0
                        for w in range(W):
                            g = np.float64(d[n, h, w, c])
                            if use_mask and not mask[n, h, w, c] > 0:
                                g = 0.0
                            t1 += g
                            t2 += g * (x[n, h, c, w] - m)
                        s1[c] += t1
                        s2[c] += t2

    @njit(**_OPTS)
    def _k_bwd_dx(n0, n1, d, x, cl, mean, mask, use_mask, k1, k2, k3, dx):
        """dx = k1 * dpre + k2 + k3 * (x - mean) (dx, x: (N, H, C, W))."""
        _, H, C, W = x.shape
        for n in range(n0, n1):
            for h in range(H):
                if cl:
                    for w in range(W):
                        for c in range(C):
                            g = d[n, h, w, c]
                            if use_mask and not mask[n, h, w, c] > 0:
                                g = 0.0
                            dx[n, h, c, w] = k1[c] * g + k2[c] + k3[c] * (x[n, h, c, w]
                                                                           - mean[c])
                else:
                    for c in range(C):
                        a, b, e, m = k1[c], k2[c], k3[c], mean[c]
                        for w in range(W):
                            g = d[n, h, w, c]
                            if use_mask and not mask[n, h, w, c] > 0:
                                g = 0.0
                            dx[n, h, c, w] = a * g + b + e * (x[n, h, c, w] - m)

    @njit(**_OPTS)
    def _k_pool(n0, n1, x, scale, shift, out, idx):
        """out = maxpool2x2(relu(x * scale + shift)) (x: (N, H, C, W); out, idx:
        (N, H/2, W/2, C)); idx: the window member (0..3, row-major) of the first
        maximum of the values before the ReLU."""
        _, H, C, W = x.shape
        Ho, Wo = H // 2, W // 2
        for n in range(n0, n1):
            for i in range(Ho):
                for j in range(Wo):
                    for c in range(C):
                        a, b = scale[c], shift[c]
                        best = x[n, 2 * i, c, 2 * j] * a + b
                        k = 0
                        v = x[n, 2 * i, c, 2 * j + 1] * a + b
                        if v > best:
                            best, k = v, 1
                        v = x[n, 2 * i + 1, c, 2 * j] * a + b
                        if v > best:
                            best, k = v, 2
                        v = x[n, 2 * i + 1, c, 2 * j + 1] * a + b
                        if v > best:
                            best, k = v, 3
                        out[n, i, j, c] = best if best > 0 else 0.0
                        idx[n, i, j, c] = k

    @njit(**_OPTS)
    def _k_pool_reduce(n0, n1, d, x, mean, out, idx, s1, s2):
        """The backward reductions of BN + ReLU + 2x2 max-pool: the gradient reaches
        only the window's winner, where the pooled output is positive."""
        _, H, C, W = x.shape
        Ho, Wo = H // 2, W // 2
        s1[:] = 0.0
        s2[:] = 0.0
        for n in range(n0, n1):
            for i in range(Ho):
                for j in range(Wo):
                    for c in range(C):
                        if out[n, i, j, c] > 0:
                            k = idx[n, i, j, c]
                            g = np.float64(d[n, i, j, c])
                            s1[c] += g
                            s2[c] += g * (x[n, 2 * i + k // 2, c, 2 * j + k % 2] - mean[c])

    @njit(**_OPTS)
    def _k_pool_dx(n0, n1, d, x, mean, out, idx, k1, k2, k3, dx):
        """dx = k1 * dpre + k2 + k3 * (x - mean) over the whole (N, H, C, W) input,
        dpre nonzero only at the winners of positive windows (H, W even)."""
        _, H, C, W = x.shape
        Ho, Wo = H // 2, W // 2
        for n in range(n0, n1):
            for h in range(H):
                for c in range(C):
                    b, e, m = k2[c], k3[c], mean[c]
                    for w in range(W):
                        dx[n, h, c, w] = b + e * (x[n, h, c, w] - m)
            for i in range(Ho):
                for j in range(Wo):
                    for c in range(C):
                        if out[n, i, j, c] > 0:
                            k = idx[n, i, j, c]
                            dx[n, 2 * i + k // 2, c, 2 * j + k % 2] += k1[c] * d[n, i, j, c]


# ------------------------------------------------------------------- threads
# The kernels release the GIL; with ``NNBOOK_THREADS=k`` (k > 1) a batch is split
# into k chunks of images run in a pool of Python threads, and reductions sum the
# per-chunk partials in chunk order (the result does not depend on the timing).
# The default is one thread: between OpenBLAS's GEMMs, whose threads spin for a
# while after each call, a second thread of ours lost more than it gained (a
# ResNet-15 pass on 2 cores: 1.52x PyTorch's time with 2 threads here, 1.41x with
# one, 5 paired rounds).  numba's own ``parallel=True`` fights OpenBLAS the same way.
_MIN_CHUNK = 1 << 15            # elements below which one thread does the whole array
_POOL = [None]


def threads():
    """Threads for the batch-norm kernels: ``NNBOOK_THREADS`` if set, else 1."""
    v = os.environ.get("NNBOOK_THREADS", "")
    return int(v) if v.isdigit() and int(v) > 0 else 1


def _chunks(a):
    return max(1, min(threads(), a.shape[0], a.size // _MIN_CHUNK))


def _run(k, N, work):
    """``work(i, n0, n1)`` for the k chunks of range(N): the first in this thread."""
    if k == 1:
        work(0, 0, N)
        return
    pool = _POOL[0]
    if pool is None or pool._max_workers < k - 1:
        from concurrent.futures import ThreadPoolExecutor
        pool = _POOL[0] = ThreadPoolExecutor(max_workers=k - 1,
                                             thread_name_prefix="nnbook-bn")
    futs = [pool.submit(work, i, i * N // k, (i + 1) * N // k) for i in range(1, k)]
    work(0, 0, N // k)
    for f in futs:
        f.result()


# ---------------------------------------------------------------- NumPy equivalents
_XAX, _YAX = (0, 1, 3), (0, 1, 2)


def stats(x4):
    """(sum, sum of squares) per channel of an (N, H, C, W) view, float64."""
    if compiled():
        k = _chunks(x4)
        s1, s2 = np.empty((k, x4.shape[2])), np.empty((k, x4.shape[2]))
        cl = _cl(x4)
        _run(k, x4.shape[0], lambda i, a, b: _k_stats(a, b, x4, cl, s1[i], s2[i]))
        return s1.sum(axis=0), s2.sum(axis=0)
    return (x4.sum(axis=_XAX, dtype=np.float64),
            np.einsum("nhcw,nhcw->c", x4, x4, dtype=np.float64))


def apply(x4, scale, shift, relu, out4, r4=None, rscale=None, rshift=None):
    """out4 = x4 * scale + shift [+ r4 * rscale + rshift], then ReLU if ``relu``."""
    dt = out4.dtype
    if compiled():
        has_r = r4 is not None
        if not has_r:
            r4, rscale, rshift = out4, scale, shift     # placeholders, not read
        cl = _cl(x4)
        _run(_chunks(x4), x4.shape[0], lambda i, a, b: _k_apply(
            a, b, x4, cl, scale, shift, relu, r4, rscale, rshift, has_r, out4))
        return
    v = x4.transpose(0, 1, 3, 2) * scale.astype(dt) + shift.astype(dt)
    if r4 is not None:
        v += r4 * rscale.astype(dt) + rshift.astype(dt)
    if relu:
        np.maximum(v, 0, out=v)
    out4[...] = v


def relu_grad(d4, out4, dpre4):
    """dpre4 = d4 where out4 > 0, else 0 (y-side views)."""
    if compiled():
        _run(_chunks(d4), d4.shape[0], lambda i, a, b: _k_relu_grad(a, b, d4, out4, dpre4))
    else:
        np.multiply(d4, out4 > 0, out=dpre4)


def _dpre_np(d4, mask4):
    return d4 if mask4 is None else d4 * (mask4 > 0)


def bwd_reduce(d4, x4, mean, mask4=None):
    """(sum dpre, sum dpre * (x - mean)) per channel, float64; ``mask4``: the output
    of a ReLU whose mask applies (None: d4 is dpre)."""
    C = x4.shape[2]
    if compiled():
        k, cl, use = _chunks(x4), _cl(x4), mask4 is not None
        s1, s2 = np.empty((k, C)), np.empty((k, C))
        m = d4 if mask4 is None else mask4
        _run(k, x4.shape[0], lambda i, a, b: _k_bwd_reduce(a, b, d4, x4, cl, mean, m, use,
                                                           s1[i], s2[i]))
        return s1.sum(axis=0), s2.sum(axis=0)
    g = _dpre_np(d4, mask4).transpose(0, 1, 3, 2)
    return (g.sum(axis=_XAX, dtype=np.float64),
            np.einsum("nhcw,nhcw->c", g, x4 - mean.reshape(1, 1, -1, 1).astype(x4.dtype),
                      dtype=np.float64))


def bwd_dx(d4, x4, mean, k1, k2, k3, dx4, mask4=None):
    """dx4 = k1 * dpre + k2 + k3 * (x - mean)."""
    if compiled():
        m = d4 if mask4 is None else mask4
        cl, use = _cl(x4), mask4 is not None
        _run(_chunks(x4), x4.shape[0], lambda i, a, b: _k_bwd_dx(
            a, b, d4, x4, cl, mean, m, use, k1, k2, k3, dx4))
        return
    dt = dx4.dtype
    g = _dpre_np(d4, mask4).transpose(0, 1, 3, 2)
    c = lambda v: v.reshape(1, 1, -1, 1).astype(dt)
    dx4[...] = c(k1) * g + c(k2) + c(k3) * (x4 - c(mean))


def pool(x4, scale, shift, out4, idx4):
    """BN apply, ReLU and 2x2 max-pool (H, W even); see :func:`_k_pool`."""
    if compiled():
        _run(_chunks(x4), x4.shape[0], lambda i, a, b: _k_pool(a, b, x4, scale, shift,
                                                               out4, idx4))
        return
    dt = out4.dtype
    v = x4.transpose(0, 1, 3, 2) * scale.astype(dt) + shift.astype(dt)    # (N, H, W, C)
    taps = [v[:, 0::2, 0::2], v[:, 0::2, 1::2], v[:, 1::2, 0::2], v[:, 1::2, 1::2]]
    best, k = taps[0].copy(), np.zeros(idx4.shape, np.int8)
    for t in range(1, 4):
        win = taps[t] > best
        best = np.where(win, taps[t], best)
        k[win] = t
    out4[...] = np.maximum(best, 0)
    idx4[...] = k


def _pool_dpre(d4, out4, idx4, x_shape):
    """The gradient before the pool and the ReLU, (N, H, W, C) (NumPy path)."""
    N, H, C, W = x_shape
    g = np.zeros((N, H, W, C), d4.dtype)
    dp = d4 * (out4 > 0)
    for t in range(4):
        g[:, t // 2::2, t % 2::2] = np.where(idx4 == t, dp, 0)
    return g


def pool_reduce(d4, x4, mean, out4, idx4):
    if compiled():
        k, C = _chunks(x4), x4.shape[2]
        s1, s2 = np.empty((k, C)), np.empty((k, C))
        _run(k, x4.shape[0], lambda i, a, b: _k_pool_reduce(a, b, d4, x4, mean, out4, idx4,
                                                            s1[i], s2[i]))
        return s1.sum(axis=0), s2.sum(axis=0)
    return bwd_reduce(_pool_dpre(d4, out4, idx4, x4.shape), x4, mean)


def pool_dx(d4, x4, mean, out4, idx4, k1, k2, k3, dx4):
    if compiled():
        _run(_chunks(x4), x4.shape[0], lambda i, a, b: _k_pool_dx(
            a, b, d4, x4, mean, out4, idx4, k1, k2, k3, dx4))
        return
    bwd_dx(_pool_dpre(d4, out4, idx4, x4.shape), x4, mean, k1, k2, k3, dx4)


# ------------------------------------------------------------------------------- ops
class BatchNormOp(_Op):
    """:class:`~nnbook.BatchNorm2d` / :class:`~nnbook.BatchNorm1d` (and the ReLU after
    it, if ``relu``) in two passes forward and two backward (see the module
    docstring); output channels-last.  ``prepare`` and ``finish`` split the forward
    pass for a residual block, whose addition the last normalisation does."""

    @staticmethod
    def applies(layer):
        return type(layer) in (BatchNorm1d, BatchNorm2d)

    def __init__(self, layer, relu=False):
        super().__init__(layer)
        self.relu = relu

    # forward ---------------------------------------------------------------
    def prepare(self, x):
        """Statistics of ``x`` (training) or the running ones (eval); the running
        statistics updated as the reference does; ``scale``/``shift`` set."""
        l = self.layer
        if x.ndim != l._ndim or x.shape[1] != l.num_features:
            l.check_input(x)                            # the reference's error
        self.x, self.x4 = x, xview(x)
        self.training = l.training
        dt = l.params["gamma"].dtype
        m = x.size // x.shape[1]
        if self.training:
            if m < 2:
                l.check_input(x)
            s1, s2 = stats(self.x4)
            mean = s1 / m
            var = np.maximum(s2 / m - mean * mean, 0.0)
            rm, rv, mom = l.buffers["running_mean"], l.buffers["running_var"], l.momentum
            mean_d, var_d = mean.astype(dt), var.astype(dt)
            l.buffers["running_mean"] = (1 - mom) * rm + mom * mean_d
            l.buffers["running_var"] = (1 - mom) * rv + mom * var_d * (m / (m - 1))
        else:
            mean = l.buffers["running_mean"].astype(np.float64)
            var = l.buffers["running_var"].astype(np.float64)
        self.m, self.mean = m, mean
        self.inv = 1.0 / np.sqrt(var + l.eps)
        self.scale = l.params["gamma"].astype(np.float64) * self.inv
        self.shift = l.params["beta"].astype(np.float64) - mean * self.scale

    def _out(self, x):
        """The channels-last output buffer and its NCHW-shaped view."""
        if x.ndim == 2:
            o = self._buf("out", x.shape, x.dtype)
            return o, o
        N, C, H, W = x.shape
        o = self._buf("out", (N, H, W, C), x.dtype)
        return o, o.transpose(0, 3, 1, 2)

    def finish(self, relu, r=None, rscale=None, rshift=None):
        """Write the output (``r``: a residual, NCHW-shaped, added before the ReLU,
        scaled by ``rscale``/``rshift`` if given)."""
        view = self._out(self.x)[1]
        r4 = None
        if r is not None:
            r4 = yview(r)
            if rscale is None:
                rscale = np.ones_like(self.scale)
                rshift = np.zeros_like(self.shift)
        apply(self.x4, self.scale, self.shift, relu, yview(view), r4, rscale, rshift)
        self.out = view
        return view

    def forward(self, x):
        self.prepare(x)
        return self.finish(self.relu)

    # backward ----------------------------------------------------------------
    def _dx(self):
        x = self.x
        if x.ndim == 2:
            return self._buf("dx", x.shape, x.dtype)
        N, C, H, W = x.shape
        if channels_last(x):
            return self._buf("dx", (N, H, W, C), x.dtype).transpose(0, 3, 1, 2)
        return self._buf("dx", (N, H, C, W), x.dtype).transpose(0, 2, 1, 3)

    def backward_pre(self, d, mask=None):
        """Gradients from ``d`` (NCHW-shaped; the gradient after the ReLU unless
        ``mask``, the ReLU's output, is given): writes ``grads``, returns dx."""
        l, dt = self.layer, self.layer.params["gamma"].dtype
        d4, m4 = yview(d), (None if mask is None else yview(mask))
        s1, s2 = bwd_reduce(d4, self.x4, self.mean, m4)
        l.grads["beta"] = s1.astype(dt)
        l.grads["gamma"] = (s2 * self.inv).astype(dt)
        k1 = l.params["gamma"].astype(np.float64) * self.inv
        if self.training:
            k2 = -k1 * s1 / self.m
            k3 = -k1 * self.inv * self.inv * s2 / self.m
        else:
            k2 = k3 = np.zeros_like(k1)
        dx = self._dx()
        bwd_dx(d4, self.x4, self.mean, k1, k2, k3, xview(dx), m4)
        return dx

    def backward(self, d):
        return self.backward_pre(d, self.out if self.relu else None)


class BNReluPoolOp(BatchNormOp):
    """:class:`~nnbook.BatchNorm2d`, :class:`~nnbook.ReLU` and a 2x2, stride-2
    :class:`~nnbook.MaxPool2D` (a ResNet's stem) in one pass forward and two
    backward: the pooled output and the index of each window's winner are written
    directly, and the backward reductions read only the winners (H, W even;
    otherwise the normalisation with its ReLU, then the pool layer's own path)."""

    @staticmethod
    def applies(bn, relu, pool):
        return (BatchNormOp.applies(bn) and type(bn) is BatchNorm2d and type(relu) is ReLU
                and type(pool) is MaxPool2D and pool.kernel_size == (2, 2)
                and pool.stride == (2, 2))

    def __init__(self, bn, pool):
        super().__init__(bn, relu=True)
        self.pool = pool

    def forward(self, x):
        self.prepare(x)
        N, C, H, W = x.shape
        if H % 2 or W % 2:
            self.fused = False
            return self.pool.forward(self.finish(True))
        self.fused = True
        o = self._buf("pooled", (N, H // 2, W // 2, C), x.dtype)
        idx = self._buf("idx", o.shape, np.int8)
        pool(self.x4, self.scale, self.shift, o, idx)
        self.pooled, self.idx = o, idx
        return o.transpose(0, 3, 1, 2)

    def backward(self, d):
        if not self.fused:
            return self.backward_pre(self.pool.backward(d), self.out)
        l, dt = self.layer, self.layer.params["gamma"].dtype
        d4 = yview(d)
        s1, s2 = pool_reduce(d4, self.x4, self.mean, self.pooled, self.idx)
        l.grads["beta"] = s1.astype(dt)
        l.grads["gamma"] = (s2 * self.inv).astype(dt)
        k1 = l.params["gamma"].astype(np.float64) * self.inv
        if self.training:
            k2 = -k1 * s1 / self.m
            k3 = -k1 * self.inv * self.inv * s2 / self.m
        else:
            k2 = k3 = np.zeros_like(k1)
        dx = self._dx()
        pool_dx(d4, self.x4, self.mean, self.pooled, self.idx, k1, k2, k3, xview(dx))
        return dx
