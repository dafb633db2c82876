"""Loss functions.  ``forward(pred, y)`` returns a Python float (mean over the
batch); ``backward()`` returns dE/dpred for the last forward.

* :class:`SoftmaxCrossEntropy` — logits (N, K); y as int labels (N,) or
  target distributions (N, K) (one-hot or soft, rows summing to 1).
  Gradient: (O - Y) / N, with O = softmax(logits).
* :class:`BinaryCrossEntropy` — sigmoid output taken *from logits*, any shape;
  y of the same shape with values in [0, 1] (labels 0/1 as ints or floats).
  Gradient: (sigmoid(z) - y) / numel.  Mean over all elements (as PyTorch).
* :class:`MSE` — mean of squared errors over all elements.
"""
from __future__ import annotations

import numpy as np

from . import functional as F
from ._checks import check_array, describe
from .backend import get_xp

__all__ = ["Loss", "SoftmaxCrossEntropy", "BinaryCrossEntropy", "MSE", "LOSSES", "get_loss"]


class Loss:
    """Base class of the losses: ``forward(pred, y)`` returns the mean loss over the
    batch as a float, ``backward(dloss=1.0)`` returns dE/dpred for the last forward;
    ``check(pred, y)`` validates targets, ``predict(pred)`` gives labels (None for
    losses that are not classification losses)."""
    _cache = None

    def __call__(self, pred, y):
        return self.forward(pred, y)

    def backward(self, dloss=1.0):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._backward(dloss)

    def __repr__(self):
        return f"{type(self).__name__}()"


class SoftmaxCrossEntropy(Loss):
    """Softmax followed by cross-entropy, fused for stability and speed."""

    def check(self, logits, y):
        xp = get_xp()
        check_array("logits", logits, ndim=2, floating=True)
        N, K = logits.shape
        check_array("y", y, ndim=(1, 2), finite=True)
        if y.shape[0] != N:
            raise ValueError(f"y: expected {N} targets to match logits {describe(logits)}, "
                             f"got {describe(y)}")
        if y.ndim == 1:
            if y.dtype.kind not in "iu":
                raise TypeError(f"y: integer class labels expected for a 1-D target, got dtype "
                                f"{y.dtype} (pass labels as int, or one-hot rows as (N, {K}))")
            lo, hi = int(y.min()), int(y.max())
            if lo < 0 or hi >= K:
                raise ValueError(f"y: labels must lie in [0, {K - 1}] for {K} classes, "
                                 f"got values in [{lo}, {hi}]")
        else:
            if y.shape[1] != K:
                raise ValueError(f"y: expected one-hot/probability rows of shape ({N}, {K}), "
                                 f"got {describe(y)}")
            if y.dtype.kind != "f":
                y = y.astype(logits.dtype)
            if bool((y < 0).any()) or bool((y > 1).any()):
                raise ValueError("y: target probabilities must lie in [0, 1]")
            tol = 1e-4 if y.dtype == np.float32 else 1e-8
            s = y.sum(axis=1)
            if bool((xp.abs(s - 1) > tol).any()):
                raise ValueError(f"y: each target row must sum to 1 (one-hot or a distribution); "
                                 f"row sums range over [{float(s.min())}, {float(s.max())}]")
        return y

    def forward(self, logits, y):
        y = self.check(logits, y)
        return self._forward(logits, y)

    def _forward(self, logits, y):
        if y.ndim == 1:
            loss, self._cache = F.softmax_xent_labels_forward(logits, y)
            self._labels = True
        else:
            loss, self._cache = F.softmax_xent_forward(logits, y.astype(logits.dtype, copy=False))
            self._labels = False
        return float(loss)

    def _backward(self, dloss=1.0):
        if self._labels:
            return F.softmax_xent_labels_backward(self._cache, dloss)
        return F.softmax_xent_backward(self._cache, dloss)

    @staticmethod
    def predict(logits):
        return logits.argmax(axis=1)


class BinaryCrossEntropy(Loss):
    """Binary cross-entropy of a sigmoid output, computed from the logits z."""

    def check(self, z, y):
        check_array("logits", z, floating=True)
        check_array("y", y)
        if tuple(y.shape) != tuple(z.shape):
            raise ValueError(f"y: expected the shape of logits {tuple(z.shape)}, got {describe(y)}")
        if y.dtype.kind == "b":
            y = y.astype(z.dtype)
        if bool((y < 0).any()) or bool((y > 1).any()):
            raise ValueError(f"y: targets must lie in [0, 1], got values in "
                             f"[{float(y.min())}, {float(y.max())}]")
        return y.astype(z.dtype, copy=False)

    def forward(self, logits, y):
        return self._forward(logits, self.check(logits, y))

    def _forward(self, z, y):
        loss, self._cache = F.bce_with_logits_forward(z, y.astype(z.dtype, copy=False))
        return float(loss)

    def _backward(self, dloss=1.0):
        return F.bce_with_logits_backward(self._cache, dloss)

    @staticmethod
    def predict(logits):
        return (logits > 0).astype(np.int64)


class MSE(Loss):
    """Mean squared error over all elements."""

    def check(self, yhat, y):
        check_array("pred", yhat, floating=True)
        check_array("y", y)
        if tuple(y.shape) != tuple(yhat.shape):
            raise ValueError(f"y: expected the shape of pred {tuple(yhat.shape)}, got {describe(y)}")
        return y.astype(yhat.dtype, copy=False)

    def forward(self, pred, y):
        return self._forward(pred, self.check(pred, y))

    def _forward(self, pred, y):
        loss, self._cache = F.mse_forward(pred, y.astype(pred.dtype, copy=False))
        return float(loss)

    def _backward(self, dloss=1.0):
        return F.mse_backward(self._cache, dloss)

    predict = None


LOSSES = {"softmax_cross_entropy": SoftmaxCrossEntropy, "cross_entropy": SoftmaxCrossEntropy,
          "binary_cross_entropy": BinaryCrossEntropy, "bce": BinaryCrossEntropy, "mse": MSE}


def get_loss(name):
    """A loss instance from a name (``"cross_entropy"``, ``"bce"``, ``"mse"``, ...)."""
    if isinstance(name, Loss):
        return name
    if not isinstance(name, str) or name.lower() not in LOSSES:
        raise ValueError(f"loss: expected one of {tuple(LOSSES)}, got {name!r}")
    return LOSSES[name.lower()]()
