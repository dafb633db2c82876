"""The training engine: the same training step as the reference layers, faster.

:func:`nnbook.fit` asks :func:`compile_step` for a step function.  For a
:class:`~nnbook.Sequential` the engine walks the model's layers and replaces the
ones it knows by *ops* that compute the same numbers with less work:

* :class:`~nnbook.Dense`: outputs and input gradients in buffers kept across
  steps; the bias added inside the matrix product (BLAS ``beta = 1``); with plain
  SGD the weight update ``W -= x^T d`` done inside the weight-gradient product
  (the loss gradient is scaled by the learning rate once, so every gradient comes
  out pre-multiplied);
* :class:`~nnbook.ReLU` after an op whose output buffer it may overwrite: in place,
  with a 0/1 mask in the data's float type;
* :class:`~nnbook.Conv2D` ("fast" method): the row-lowering plan and its buffers
  kept across steps; followed by a 2x2 :class:`~nnbook.MaxPool2D` (stride-1
  convolution, NumPy): convolution and pool (and a ReLU right after) as one
  operation; stride 1 with few channels: the compiled numba kernels of
  ``nnbook.engine.cpu_kernels``, bias, pool and ReLU fused (NumPy without numba);
* :class:`~nnbook.Flatten`: keeps a strided input's memory layout for the
  gradient, so the convolution below reads it without a copy;
* :class:`~nnbook.BatchNorm2d` / :class:`~nnbook.BatchNorm1d` (with the ReLU after
  them, and a ResNet stem's 2x2 max-pool): fused passes with float64 statistics
  (``nnbook/engine/norm_ops.py``);
* residual blocks (:class:`~nnbook.BasicBlock`, :class:`~nnbook.Bottleneck`) opened
  into ops, 1x1 convolutions as one matrix product, global average pooling
  (``nnbook/engine/block_ops.py``).

Every other layer (yours, Dropout, ...) runs through its own
``forward``/``backward``, unchanged.  The engine never touches a layer's state
besides ``params``, ``grads`` and a batch norm's running statistics (``buffers``,
updated as the layer does): a model's ``forward`` or ``predict`` called from
a callback during training sees only the reference layers.  Tests prove each op
equal to the reference path (losses and weights after several steps, float32
and float64).
"""
from __future__ import annotations

import numpy as np

from ..backend import asarray, get_xp
from ..layers import Dense, Flatten, ReLU
from ..models import Sequential, flat_layers
from ..optim import SGD
from .block_ops import resnet_op
from .ops import ConvOp, ConvPoolOp, DenseOp, FlattenOp, RefOp, ReLUOp, conv_pool_applies

__all__ = ["compile_step", "ReferenceStep", "EngineStep"]


def _n_correct(loss, out, y):
    pred = loss.predict(out)
    if pred.ndim == 1 and y.ndim == 2:
        y = y.argmax(axis=1)
    return int(get_xp().count_nonzero(pred == y))


class ReferenceStep:
    """One training step through the model's own ``forward``/``backward``: what the
    engine is tested against, and what runs for models it does not know."""

    def __init__(self, model, loss, opt):
        self.model, self.loss, self.opt = model, loss, opt
        self.has_acc = loss.predict is not None
        model.zero_grad()       # gradients left over from a manual backward

    def __call__(self, xb, yb):
        out = self.model.forward(xb)
        value = self.loss._forward(out, yb)
        correct = _n_correct(self.loss, out, yb) if self.has_acc else 0
        self.model.backward(self.loss._backward(1.0))
        self.opt.step()
        self.opt.zero_grad()
        return value, correct

    def gather(self, X, idx):
        """The batch ``X[idx]`` (a new array)."""
        return X[asarray(idx)] if get_xp() is not np else X[idx]

    def close(self):
        pass


class EngineStep:
    """One training step through the engine's ops (see the module docstring)."""

    def __init__(self, layers, loss, opt):
        self.loss, self.opt = loss, opt
        self.has_acc = loss.predict is not None
        owned = {(id(p.layer), p.name) for p in opt.params}
        # plain SGD: scale the loss gradient by lr once; Dense layers whose parameters
        # the optimizer owns take their step inside their backward pass
        self.prescale = (type(opt) is SGD and opt._plain)
        ops, i = [], 0
        numpy = get_xp() is np
        while i < len(layers):
            l = layers[i]
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            prev = ops[-1] if ops else None
            first = not ops
            if type(l) is Dense:
                fuse = self.prescale and all((id(l), k) in owned for k in l.params)
                ops.append(DenseOp(l, first, fuse))
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
        self.ops = ops
        self._xbuf = None
        fused = {id(op.layer) for op in ops if getattr(op, "fused_sgd", False)}
        self.rest = [p for p in opt.params if id(p.layer) not in fused]
        self.ref_layers = [op.layer for op in ops if isinstance(op, RefOp)]
        for l in layers:
            l.zero_grad()
        opt.zero_grad()

    def __call__(self, xb, yb):
        h = xb
        for op in self.ops:
            h = op.forward(h)
        value = self.loss._forward(h, yb)
        correct = _n_correct(self.loss, h, yb) if self.has_acc else 0
        d = self.loss._backward(self.opt.lr if self.prescale else 1.0)
        for op in reversed(self.ops):
            d = op.backward(d)
        if self.prescale:
            self.opt._step_prescaled(self.rest)
        else:
            self.opt.step()
        for l in self.ref_layers:       # the ops overwrite their gradients; these add
            l.zero_grad()
        return value, correct

    def gather(self, X, idx):
        """The batch ``X[idx]`` in a buffer kept across steps (full batches)."""
        xp = get_xp()
        if xp is not np:
            return xp.take(X, asarray(idx), axis=0)
        buf = self._xbuf
        if buf is None or buf.shape[0] != len(idx) or buf.dtype != X.dtype:
            buf = self._xbuf = np.empty((len(idx),) + X.shape[1:], dtype=X.dtype)
        # mode="clip" (the indices are a permutation, never out of range): with the
        # default "raise", NumPy gathers into a temporary and copies it
        return np.take(X, idx, axis=0, out=buf, mode="clip")

    def close(self):
        """Drop every buffer and plan (after training)."""
        self.ops = []
        self._xbuf = None


def compile_step(model, loss, opt, engine=True):
    """The step function :func:`nnbook.fit` runs: ``step(xb, yb) -> (mean loss,
    number correct)``, forward, backward and the optimizer's update.  With
    ``engine=False``, or for a model that is not a :class:`~nnbook.Sequential`, the
    reference layers run as they are."""
    if not engine or not isinstance(model, Sequential):
        return ReferenceStep(model, loss, opt)
    return EngineStep(flat_layers(model), loss, opt)
