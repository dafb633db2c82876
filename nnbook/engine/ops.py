"""The engine's ops: one per layer pattern it runs faster (see :mod:`nnbook.engine`).

An op wraps the layer it replaces, reads the layer's ``params`` live and writes
its gradients into the layer's ``grads`` (or, for plain SGD, applies the step
itself).  It keeps its own caches and buffers, so the layer's state is never
touched.  ``forward(x)`` and ``backward(d)`` have the layer's meaning;
``scratch_out`` says that the output lives in a buffer the op does not read again
(a ReLU after it may work in place); ``owned_dx`` that the input gradient it
returns is the engine's to overwrite.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_xp
from ..conv import Conv2D
from ..functional.conv import _band_ok, _conv_rows, _conv_rows_backward, _RowLowering
from ..functional.pool import _max2x2, _route2x2
from ..pool import MaxPool2D
from . import _blas, cpu_kernels

FUSE_CONV_POOL = True     # fuse Conv2D + 2x2 MaxPool2D (tests switch it off to compare)
_PLANS = 4                # plans an op keeps (training batch, last batch, ...)


class _Op:
    scratch_out = False
    owned_dx = True

    def __init__(self, layer):
        self.layer = layer
        self._bufs = {}

    def _buf(self, name, shape, dtype, fill=None):
        """A work array kept across steps (fresh memory is slow); ``fill``: a constant
        set once, for arrays that are only read."""
        shape = tuple(shape)
        b = self._bufs.get(name)
        if b is None or b.shape != shape or b.dtype != dtype:
            b = self._bufs[name] = get_xp().empty(shape, dtype=dtype)
            if fill is not None:
                b.fill(fill)
        return b

    def _memo(self, name):
        m = self._bufs.get(name)
        if m is None:
            m = self._bufs[name] = _blas.GemmMemo()
        return m


class RefOp(_Op):
    """A layer the engine does not know: its own forward and backward."""
    owned_dx = False

    def forward(self, x):
        return self.layer.forward(x)

    def backward(self, d):
        return self.layer.backward(d)


class DenseOp(_Op):
    """:class:`~nnbook.Dense` with buffers, the bias inside the GEMM and, with
    ``fused_sgd``, the plain-SGD step inside the weight-gradient GEMM (``d`` then
    arrives multiplied by the learning rate)."""
    scratch_out = True

    def __init__(self, layer, first, fused_sgd):
        super().__init__(layer)
        self.first, self.fused_sgd = first, fused_sgd
        self.owned_dx = not first

    def forward(self, x):
        xp = get_xp()
        self.x = x
        W, b = self.layer.params["W"], self.layer.params.get("b")
        out = self._buf("out", (x.shape[0], W.shape[1]), W.dtype)
        if b is not None and type(out) is np.ndarray and _blas.available():
            np.copyto(out, b)
            if _blas.gemm_acc(x, W, out, memo=self._memo("fwd")):
                return out
        xp.matmul(x, W, out=out)
        if b is not None:
            out += b
        return out

    def backward(self, d):
        xp = get_xp()
        x, p, g = self.x, self.layer.params, self.layer.grads
        W, b = p["W"], p.get("b")
        # dx with the weights *before* any step, as backpropagation requires
        dx = None if self.first else xp.matmul(d, W.T, out=self._buf("dx", x.shape, W.dtype))
        if self.fused_sgd:
            if not _blas.gemm_tn_update(W, x, d, self._memo("step")):
                W -= xp.matmul(x.T, d, out=self._buf("gW", W.shape, W.dtype))
            if b is not None:
                # the sum over the batch as ones @ d: a BLAS GEMV, faster than a reduction
                ones = self._buf("ones", (d.shape[0],), b.dtype, fill=1)
                b -= xp.matmul(ones, d, out=self._buf("gb", b.shape, b.dtype))
        else:
            g["W"] = xp.matmul(x.T, d, out=self._buf("gW", W.shape, W.dtype))
            if b is not None:
                g["b"] = d.sum(axis=0, out=self._buf("gb", b.shape, b.dtype))
        return dx


class ReLUOp(_Op):
    """:class:`~nnbook.ReLU` in place on the previous op's scratch output, with a 0/1
    mask in the data's float type (the backward product is then a plain multiply)."""
    scratch_out = True

    def __init__(self, layer, grad_in_place=True):
        super().__init__(layer)
        self.grad_in_place = grad_in_place

    def forward(self, x):
        xp = get_xp()
        if xp is np:
            mask = np.greater(x, 0, out=self._buf("mask", x.shape, x.dtype), casting="unsafe")
        else:
            mask = xp.greater(x, 0, out=self._buf("mask", x.shape, bool))
        self.mask = mask
        return xp.multiply(x, mask, out=x)

    def backward(self, d):
        if self.grad_in_place:
            return get_xp().multiply(d, self.mask, out=d)
        return d * self.mask


class FlattenOp(_Op):
    """:class:`~nnbook.Flatten` that hands the gradient back in the memory layout of
    its input (a fast convolution's (N, H, C, W)), so the layer below reads it
    without a transpose."""

    def forward(self, x):
        self.shape = x.shape
        self.layout = None if x.flags.c_contiguous else x
        return x.reshape(x.shape[0], -1)

    def backward(self, d):
        d = d.reshape(self.shape)
        if self.layout is None:
            return d
        dx = get_xp().empty_like(self.layout)
        dx[...] = d
        return dx


class _PlanCache:
    """Up to :data:`_PLANS` plans by geometry, least recently used dropped first."""

    def __init__(self, build):
        self.build, self.plans = build, {}

    def get(self, key):
        p = self.plans.pop(key, None)        # re-inserted last
        if p is None:
            if len(self.plans) >= _PLANS:
                del self.plans[next(iter(self.plans))]
            p = self.build(key)
        self.plans[key] = p
        return p


class ConvOp(_Op):
    """:class:`~nnbook.Conv2D` with the "fast" method: the row-lowering plan (its
    index tables, lowered input and banded weights) and the output kept across steps;
    a convolution the compiled kernels of :mod:`~nnbook.engine.cpu_kernels` take
    (:func:`~nnbook.engine.cpu_kernels.applies`: by default stride 1 with few
    channels, where numba is installed) runs on them instead."""
    scratch_out = True

    @staticmethod
    def applies(layer):
        return type(layer) is Conv2D and layer.method == "fast"

    def __init__(self, layer, first):
        super().__init__(layer)
        self.first = first
        self.owned_dx = not first
        self.plans = _PlanCache(lambda k: _RowLowering(*k[:5]))
        self.kplans = _PlanCache(lambda k: cpu_kernels.plan(*k))

    def forward(self, x):
        l = self.layer
        W, b = l.params["W"], l.params.get("b")
        if (type(x) is np.ndarray and type(W) is np.ndarray
                and cpu_kernels.applies(x.shape, W.shape, l.stride, l.padding)):
            plan = self.kplans.get((tuple(x.shape), tuple(W.shape), l.stride, l.padding,
                                    W.dtype))
            self.cache = ("kernel", plan)
            return plan.forward(x, W, b)
        if not _band_ok(x.shape, W.shape, l.padding, l.stride):
            self.cache = None
            self.out = l.forward(x)         # im2col: the layer's own path
            return self.out
        plan = self.plans.get(_RowLowering.make_key(x.shape, W.shape, l.stride, l.padding,
                                                    W.dtype))
        out = self._buf("out", (plan.N * plan.Ho, plan.F * plan.Wo), W.dtype)
        out, self.cache = _conv_rows(x, W, b, l.stride, l.padding, plan, out)
        return out

    def backward(self, d):
        l = self.layer
        if self.cache is None:
            l.zero_grad()                    # ops overwrite gradients; the layer adds
            return l.backward(d)
        if self.cache[0] == "kernel":
            dx, dW, db = self.cache[1].backward(d, not self.first, "b" in l.params)
        else:
            dx, dW, db = _conv_rows_backward(d, self.cache, not self.first)
        l.grads["W"] = dW
        if db is not None:
            l.grads["b"] = db
        return dx


def conv_pool_applies(conv, pool, numpy):
    """Whether a Conv2D and the layer after it run as one :class:`ConvPoolOp`."""
    return (FUSE_CONV_POOL and numpy and ConvOp.applies(conv) and type(pool) is MaxPool2D
            and conv.stride == (1, 1) and pool.kernel_size == (2, 2)
            and pool.stride == (2, 2))


class _ConvPool:
    """A stride-1 convolution and the 2x2, stride-2 max-pool after it, as one
    operation (NumPy) for one geometry.

    The convolution is the row-lowered product with its columns in parity
    order (:class:`~nnbook.functional.conv._RowLowering`), so each row of the
    product holds the even output columns of all filters, then the odd ones.  The
    four members of a pooling window are then at the same place in four contiguous
    blocks (even or odd row, even or odd column), and the pool runs over long
    contiguous runs instead of pairs of neighbours.  Its result lands in
    (N, Ho/2, F, Wo/2) memory, the layout the next convolution reads directly.  The
    function, the tie rule (the first maximum of a window, as PyTorch) and the
    gradients are those of :class:`~nnbook.Conv2D` followed by
    :class:`~nnbook.MaxPool2D`."""

    def __init__(self, x_shape, W_shape, padding, dtype):
        rl = self.rl = _RowLowering(x_shape, W_shape, (1, 1), padding, dtype, parity=True)
        self.out = np.empty((rl.N * rl.Ho, rl.F * rl.Wo), dtype)
        half = (rl.N * rl.Ho // 2, rl.F * rl.Wo // 2)
        self.top, self.bot, self.left, self.upper, self.first = (np.empty(half, dtype)
                                                                  for _ in range(5))
        self.pooled = np.empty((rl.N, rl.Ho // 2, rl.F, rl.Wo // 2), dtype)
        self.dconv = np.empty_like(self.out)

    def _taps(self, a):
        """The window members (top left, top right, bottom left, bottom right) as
        (N*Ho/2, F*Wo/2) views of a product-shaped array."""
        v = a.reshape(self.top.shape[0], 2, 2, self.top.shape[1])
        return v[:, 0, 0], v[:, 0, 1], v[:, 1, 0], v[:, 1, 1]

    def forward(self, x, W, b):
        rl = self.rl
        rl.set_weights(W, b)
        rl.lower(x)
        np.matmul(rl.L, rl.B, out=self.out)
        _max2x2(self._taps(self.out), self.top, self.bot, self.left, self.upper, self.first,
                self.pooled.reshape(self.top.shape))
        return self.pooled.transpose(0, 2, 1, 3)

    def backward(self, dpooled, need_dx, W_shape, has_b):
        rl = self.rl
        d = dpooled.transpose(0, 2, 1, 3)
        d = (d if d.flags.c_contiguous else np.ascontiguousarray(d)).reshape(self.top.shape)
        # the forward pass's scratch (top, bot) is free now
        _route2x2(d, self.left, self.upper, self.first, self.top, self.bot,
                  self._taps(self.dconv))
        return rl.backward(self.dconv, W_shape, has_b, need_dx)


class ConvPoolOp(_Op):
    """:class:`~nnbook.Conv2D` + 2x2 :class:`~nnbook.MaxPool2D` (+ the
    :class:`~nnbook.ReLU` after them, if given) as one operation: a compiled kernel
    with bias, pool and ReLU in its epilogue (:mod:`~nnbook.engine.cpu_kernels`: few
    channels, numba installed), else a :class:`_ConvPool` (a band small enough) and
    the ReLU in place; an odd output runs as the layers' own paths."""
    scratch_out = True

    def __init__(self, conv, pool, first, relu=None):
        super().__init__(conv)
        self.pool, self.first, self.relu = pool, first, relu
        self.owned_dx = not first
        self.plans = _PlanCache(lambda k: _ConvPool(*k))
        self.kplans = _PlanCache(lambda k: cpu_kernels.ConvPlan(*k, pool=True,
                                                                relu=relu is not None))
        self.conv_op = ConvOp(conv, first)
        self.relu_op = None if relu is None else ReLUOp(relu, grad_in_place=False)

    def forward(self, x):
        l = self.layer
        W, b = l.params["W"], l.params.get("b")
        (kh, kw), (ph, pw) = l.kernel_size, l.padding
        if (type(x) is not np.ndarray or type(W) is not np.ndarray
                or (x.shape[2] + 2 * ph - kh + 1) % 2 or (x.shape[3] + 2 * pw - kw + 1) % 2):
            self.fused = None
        elif cpu_kernels.applies(x.shape, W.shape, l.stride, l.padding):
            self.fused = self.kplans.get((tuple(x.shape), tuple(W.shape), l.padding, W.dtype))
            return self.fused.forward(x, W, b)          # bias, pool and ReLU included
        elif _band_ok(x.shape, W.shape, l.padding, l.stride):
            self.fused = self.plans.get((tuple(x.shape), tuple(W.shape), l.padding, W.dtype))
            out = self.fused.forward(x, W, b)
            return out if self.relu_op is None else self.relu_op.forward(out)
        else:
            self.fused = None
        out = self.pool.forward(self.conv_op.forward(x))
        return out if self.relu_op is None else self.relu_op.forward(out)

    def backward(self, d):
        l = self.layer
        if isinstance(self.fused, cpu_kernels.ConvPlan):
            dx, dW, db = self.fused.backward(d, not self.first, "b" in l.params)
            l.grads["W"] = dW
            if db is not None:
                l.grads["b"] = db
            return dx
        if self.relu_op is not None:
            d = self.relu_op.backward(d)
        if self.fused is None:
            return self.conv_op.backward(self.pool.backward(d))
        dx, dW, db = self.fused.backward(d, not self.first, l.params["W"].shape,
                                         "b" in l.params)
        l.grads["W"] = dW
        if db is not None:
            l.grads["b"] = db
        return dx
