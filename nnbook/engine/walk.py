"""The engine's walk over a model's layers (see :mod:`nnbook.engine`): which op runs
each layer, and a forward pass through those ops for predictions.

This module takes a list of layers and never imports :mod:`nnbook.models`, so that
``Sequential.predict`` and :func:`nnbook.evaluate` can use it.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_xp
from ..layers import Dense, Flatten, ReLU
from .block_ops import resnet_op
from .ops import ConvOp, ConvPoolOp, DenseOp, FlattenOp, RefOp, ReLUOp, conv_pool_applies

__all__ = ["build_ops", "ForwardPass"]


def build_ops(layers, fused_dense=lambda layer: False):
    """The ops that run ``layers`` (a flat list, as ``flat_layers`` gives it), in order;
    ``fused_dense(layer)``: whether a Dense layer takes its plain-SGD step inside its
    backward pass."""
    ops, i = [], 0
    numpy = get_xp() is np
    while i < len(layers):
        l = layers[i]
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        prev = ops[-1] if ops else None
        first = not ops
        if type(l) is Dense:
            ops.append(DenseOp(l, first, fused_dense(l)))
        elif numpy and (hit := resnet_op(layers, i, first)) is not None:
            ops.append(hit[0])      # batch norm (+ReLU, +pool), a residual block, ...
            i += hit[1] - 1
        elif type(l) is ReLU and prev is not None and prev.scratch_out:
            ops.append(ReLUOp(l))
        elif conv_pool_applies(l, nxt, numpy):
            # a ReLU right after the pool joins them (the compiled kernel applies it
            # in its epilogue)
            after = layers[i + 2] if i + 2 < len(layers) else None
            relu = after if type(after) is ReLU else None
            ops.append(ConvPoolOp(l, nxt, first, relu))
            i += 1 if relu is None else 2
        elif ConvOp.applies(l):
            ops.append(ConvOp(l, first))
        elif type(l) is Flatten:
            ops.append(FlattenOp(l))
        else:
            ops.append(RefOp(l))
        i += 1
    # a ReLU multiplies the incoming gradient in place only if that array is the
    # engine's (a layer's backward may return an array it keeps)
    fresh = True                                    # the loss gradient is new
    for op in reversed(ops):
        if isinstance(op, ReLUOp):
            op.grad_in_place = fresh
            fresh = True
        elif not isinstance(op, FlattenOp):         # Flatten: a view of what came in
            fresh = op.owned_dx
    return ops


class ForwardPass:
    """``layers``' outputs through the engine's ops, forward only (predictions): each
    layer behaves as its mode says (a batch norm in evaluation mode uses its running
    statistics).  The ops keep their own buffers; the returned array is one of them,
    overwritten by the next call."""

    def __init__(self, layers):
        self.ops = build_ops(layers)

    def __call__(self, x):
        for op in self.ops:
            x = op.forward(x)
        return x
