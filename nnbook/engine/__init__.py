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
``forward``/``backward``, unchanged.

Predictions use the same ops forward only (:class:`ForwardPass`, built by the same
walk, ``nnbook/engine/walk.py``): :meth:`~nnbook.Sequential.predict`,
:func:`nnbook.evaluate` and the validation pass of :func:`nnbook.fit` run a
:class:`~nnbook.Sequential` through them on NumPy, each layer in the mode it is in
(a batch norm in evaluation mode with its running statistics).

The engine never touches a layer's state besides ``params``, ``grads`` and a batch
norm's running statistics (``buffers``, updated as the layer does), and every step
or forward pass keeps its own buffers: a model's ``forward`` or ``predict`` called
from a callback during training is not disturbed by the training step.  Tests prove
each op equal to the reference path (losses and weights after several steps,
predictions, float32 and float64).
"""
from __future__ import annotations

import numpy as np

from ..backend import asarray, get_xp
from ..models import Sequential, flat_layers
from ..optim import SGD
from .ops import RefOp
from .walk import ForwardPass, build_ops

__all__ = ["compile_step", "ReferenceStep", "EngineStep", "ForwardPass"]


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
        self.ops = ops = build_ops(
            layers, lambda l: self.prescale and all((id(l), k) in owned for k in l.params))
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
