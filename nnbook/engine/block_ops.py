"""Residual networks in the training engine: 1x1 convolutions as one matrix
product, residual blocks opened into ops, global average pooling.

* A 1x1 convolution is a matrix product over channels at every pixel: with the
  activations stored channels-last, ``(N*H*W, C) @ W^T`` is one GEMM, without
  lowering (stride 2: the input subsampled first, its gradient scattered back).
* A :class:`~nnbook.BasicBlock` or :class:`~nnbook.Bottleneck` runs as its
  parts: each convolution as an op (:class:`Conv1x1Op`, or the engine's
  :class:`~nnbook.engine.ops.ConvOp` for 3x3), each batch normalisation with its
  ReLU as a :class:`~nnbook.engine.norm_ops.BatchNormOp`, and the block's end
  ``relu(bn(h) + shortcut)`` as one pass (the projection shortcut's batch norm
  included).  Backward: the ReLU's mask once, then both paths from that gradient,
  their input gradients added.  The parameters and gradients stay the block's
  layers' own ``params`` and ``grads``.
"""
from __future__ import annotations

import numpy as np

from ..conv import Conv2D
from ..layers import ReLU
from ..norm import BatchNorm2d
from ..pool import GlobalAvgPool2D
from ..residual import BasicBlock, Bottleneck
from .norm_ops import BatchNormOp, BNReluPoolOp, channels_last, relu_grad, yview
from .ops import ConvOp, _Op

ENABLED = True      # tests switch these ops off to compare with the engine without them


class Conv1x1Op(_Op):
    """A 1x1 :class:`~nnbook.Conv2D` (no padding) as one GEMM on channels-last
    activations; stride s: the input subsampled ``x[:, :, ::s, ::s]`` first.  The
    output is channels-last."""
    scratch_out = True

    @staticmethod
    def applies(layer):
        return (type(layer) is Conv2D and layer.kernel_size == (1, 1)
                and layer.padding == (0, 0) and layer.stride[0] == layer.stride[1])

    def __init__(self, layer, first=False):
        super().__init__(layer)
        self.first = first
        self.owned_dx = not first

    def forward(self, x):
        l = self.layer
        W, b = l.params["W"], l.params.get("b")
        F, C = W.shape[:2]
        s = l.stride[0]
        N = x.shape[0]
        self.x_shape = x.shape
        if s == 1 and channels_last(x):
            xm = x.transpose(0, 2, 3, 1)
        else:
            xs = x[:, :, ::s, ::s]
            xm = self._buf("xm", (N, xs.shape[2], xs.shape[3], C), x.dtype)
            np.copyto(xm, xs.transpose(0, 2, 3, 1))
        Ho, Wo = xm.shape[1:3]
        self.xm = xm.reshape(-1, C)
        out = self._buf("out", (N, Ho, Wo, F), W.dtype)
        np.matmul(self.xm, W.reshape(F, C).T, out=out.reshape(-1, F))
        if b is not None:
            out += b
        return out.transpose(0, 3, 1, 2)

    def backward(self, d):
        l = self.layer
        W = l.params["W"]
        F, C = W.shape[:2]
        N, _, Ho, Wo = d.shape
        if channels_last(d):
            dm = d.transpose(0, 2, 3, 1).reshape(-1, F)
        else:
            dm = self._buf("dm", (N, Ho, Wo, F), d.dtype)
            np.copyto(dm, d.transpose(0, 2, 3, 1))
            dm = dm.reshape(-1, F)
        gW = self._buf("gW", (F, C), W.dtype)
        np.matmul(dm.T, self.xm, out=gW)
        l.grads["W"] = gW.reshape(W.shape)
        if "b" in l.params:
            l.grads["b"] = dm.sum(axis=0)
        if self.first:
            return None
        _, _, H, Wd = self.x_shape
        s = l.stride[0]
        if s == 1:
            dx = self._buf("dx", (N, H, Wd, C), W.dtype)
            np.matmul(dm, W.reshape(F, C), out=dx.reshape(-1, C))
        else:
            # the positions the stride skipped get no gradient: zero once, never written
            dx = self._buf("dx", (N, H, Wd, C), W.dtype, fill=0)
            part = self._buf("dxs", (N * Ho * Wo, C), W.dtype)
            np.matmul(dm, W.reshape(F, C), out=part)
            dx[:, ::s, ::s] = part.reshape(N, Ho, Wo, C)
        return dx.transpose(0, 3, 1, 2)


class GlobalAvgPoolOp(_Op):
    """:class:`~nnbook.GlobalAvgPool2D` reading channels-last input as (N, H*W, C);
    the gradient comes back channels-last."""

    @staticmethod
    def applies(layer):
        return type(layer) is GlobalAvgPool2D

    def forward(self, x):
        N, C, H, W = self.shape = x.shape
        out = self._buf("out", (N, C), x.dtype)
        if channels_last(x):
            return x.transpose(0, 2, 3, 1).reshape(N, H * W, C).mean(axis=1, out=out)
        return x.mean(axis=(2, 3), out=out)

    def backward(self, d):
        N, C, H, W = self.shape
        dx = self._buf("dx", (N, H, W, C), d.dtype)
        np.divide(d.reshape(N, 1, 1, C), H * W, out=dx)
        return dx.transpose(0, 3, 1, 2)


def _conv_op(conv, first):
    if Conv1x1Op.applies(conv):
        return Conv1x1Op(conv, first)
    if ConvOp.applies(conv):
        return ConvOp(conv, first)
    return None


class BlockOp(_Op):
    """A :class:`~nnbook.BasicBlock` or :class:`~nnbook.Bottleneck` opened into ops
    (see the module docstring); output and input gradient channels-last."""

    @staticmethod
    def applies(block):
        if type(block) not in (BasicBlock, Bottleneck) or type(block.relu) is not ReLU:
            return False
        try:
            stages = BlockOp._stages(block.main)
        except ValueError:
            return False
        sc = block.shortcut
        convs = [c for c, _, _ in stages] + sc[:1]
        return (all(_conv_op(c, False) is not None for c in convs) and not stages[-1][2]
                and (not sc or (len(sc) == 2 and Conv1x1Op.applies(sc[0])
                                and type(sc[1]) is BatchNorm2d)))

    @staticmethod
    def _stages(main):
        """[(conv, bn, relu?)] from conv, bn[, relu] runs."""
        out, i = [], 0
        while i < len(main):
            if i + 1 >= len(main) or type(main[i]) is not Conv2D \
                    or type(main[i + 1]) is not BatchNorm2d:
                raise ValueError("not a conv-bn chain")
            relu = i + 2 < len(main) and type(main[i + 2]) is ReLU
            out.append((main[i], main[i + 1], relu))
            i += 3 if relu else 2
        if not out:
            raise ValueError("empty")
        return out

    def __init__(self, block, first=False):
        super().__init__(block)
        self.first = first
        self.owned_dx = not first
        self.stages = [(_conv_op(c, first and k == 0), BatchNormOp(bn, relu))
                       for k, (c, bn, relu) in enumerate(self._stages(block.main))]
        sc = block.shortcut
        self.short = (Conv1x1Op(sc[0], first), BatchNormOp(sc[1])) if sc else None

    def forward(self, x):
        h = x
        for conv, bn in self.stages[:-1]:
            h = bn.forward(conv.forward(h))
        conv, bn = self.stages[-1]
        bn.prepare(conv.forward(h))
        if self.short is None:
            out = bn.finish(True, x)
        else:
            sconv, sbn = self.short
            sbn.prepare(sconv.forward(x))
            out = bn.finish(True, sbn.x, sbn.scale, sbn.shift)
        self.out = out
        return out

    def backward(self, d):
        N, C, H, W = d.shape
        dpre = self._buf("dpre", (N, H, W, C), d.dtype)
        relu_grad(yview(d), yview(self.out), dpre)
        dpre = dpre.transpose(0, 3, 1, 2)
        conv, bn = self.stages[-1]
        g = conv.backward(bn.backward_pre(dpre))
        for conv, bn in reversed(self.stages[:-1]):
            g = conv.backward(bn.backward(g))
        if self.short is None:
            gs = dpre
        else:
            sconv, sbn = self.short
            gs = sconv.backward(sbn.backward_pre(dpre))
        if self.first:
            return None
        Nx, Cx, Hx, Wx = g.shape
        dx = self._buf("dx", (Nx, Hx, Wx, Cx), d.dtype).transpose(0, 3, 1, 2)
        np.add(g, gs, out=dx)
        return dx


def resnet_op(layers, i, first):
    """The op for ``layers[i]`` (with the layers it absorbs) and how many layers it
    replaces, or None if it is not one of this module's patterns."""
    if not ENABLED:
        return None
    l = layers[i]
    after = layers[i + 1:i + 3]
    if BatchNormOp.applies(l):
        if len(after) == 2 and BNReluPoolOp.applies(l, *after):
            return BNReluPoolOp(l, after[1]), 3
        if after and type(after[0]) is ReLU:
            return BatchNormOp(l, relu=True), 2
        return BatchNormOp(l), 1
    if BlockOp.applies(l):
        return BlockOp(l, first), 1
    if Conv1x1Op.applies(l):
        return Conv1x1Op(l, first), 1
    if GlobalAvgPoolOp.applies(l):
        return GlobalAvgPoolOp(l), 1
    return None
