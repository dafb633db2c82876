"""Batch normalisation layers: :class:`BatchNorm1d` (N, D) and :class:`BatchNorm2d`
(N, C, H, W), with PyTorch's conventions."""
from __future__ import annotations

import numpy as np

from ._checks import check_dtype_match, check_int, describe
from .backend import asarray, get_xp
from .layers import Layer, layer_dtype

__all__ = ["BatchNorm1d", "BatchNorm2d"]


class _BatchNorm(Layer):
    """Batch normalisation (Ioffe & Szegedy 2015) with PyTorch's conventions.

    Training: normalise with the batch mean and (biased) variance over every
    axis but the channel axis, ``xhat = (x - mean) / sqrt(var + eps)``, then
    ``out = gamma * xhat + beta``; update the running statistics as
    ``running = (1 - momentum) * running + momentum * batch`` with the
    *unbiased* batch variance.  Evaluation (``layer.eval()``): normalise with
    the running statistics.  The running statistics live in ``buffers``.

    Backward in training mode, with m values per channel:
    ``dbeta = sum dout``, ``dgamma = sum dout * xhat``,
    ``dx = gamma / sqrt(var + eps) * (dout - dbeta/m - xhat * dgamma/m)``.
    """
    _axes = (0,)
    _ndim = 2

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=None):
        super().__init__()
        self.num_features = check_int("num_features", num_features, minimum=1)
        self.eps = float(eps)
        self.momentum = float(momentum)
        if not (self.eps > 0):
            raise ValueError(f"eps: expected a number > 0, got {eps}")
        if not (0 <= self.momentum <= 1):
            raise ValueError(f"momentum: expected a number in [0, 1], got {momentum}")
        self.dtype = layer_dtype(dtype)
        self.params["gamma"] = asarray(np.ones(self.num_features, dtype=self.dtype))
        self.params["beta"] = asarray(np.zeros(self.num_features, dtype=self.dtype))
        self.buffers = {"running_mean": asarray(np.zeros(self.num_features, dtype=self.dtype)),
                        "running_var": asarray(np.ones(self.num_features, dtype=self.dtype))}
        self.zero_grad()

    @staticmethod
    def _shapes_from_config(num_features, **_):
        return {"gamma": (num_features,), "beta": (num_features,)}

    def _shape(self, v):
        """A per-channel vector shaped to broadcast against the input."""
        return v.reshape((1, -1) + (1,) * (self._ndim - 2))

    def check_input(self, x):
        if x.ndim != self._ndim:
            raise ValueError(f"x: expected a {self._ndim}-D array for {type(self).__name__}, "
                             f"got {describe(x)}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"x: expected {self.num_features} features/channels on axis 1 for "
                             f"{type(self).__name__}({self.num_features}), got {describe(x)}")
        check_dtype_match("x", x, self.params["gamma"].dtype)
        if self.training and x.size // x.shape[1] < 2:
            raise ValueError(f"x: batch normalisation in training mode needs more than one "
                             f"value per channel, got {describe(x)} (a batch of one sample?)")

    def forward(self, x):
        xp = get_xp()
        gamma, beta = self.params["gamma"], self.params["beta"]
        if self.training:
            m = x.size // x.shape[1]
            mean = x.mean(axis=self._axes)
            xc = x - self._shape(mean)
            var = (xc * xc).mean(axis=self._axes)
            rm, rv, mom = self.buffers["running_mean"], self.buffers["running_var"], self.momentum
            self.buffers["running_mean"] = (1 - mom) * rm + mom * mean
            self.buffers["running_var"] = (1 - mom) * rv + mom * var * (m / (m - 1))
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
            xc = x - self._shape(mean)
        inv = 1.0 / xp.sqrt(var + self.eps)
        self.cache = (xc * self._shape(inv), inv, self.training)
        return self.cache[0] * self._shape(gamma) + self._shape(beta)

    def backward(self, dout):
        xhat, inv, training = self.cache
        gamma = self.params["gamma"]
        dbeta = dout.sum(axis=self._axes)
        dgamma = (dout * xhat).sum(axis=self._axes)
        self.grads["beta"] += dbeta
        self.grads["gamma"] += dgamma
        if not training:
            return dout * self._shape(gamma * inv)
        m = dout.size // dout.shape[1]
        return self._shape(gamma * inv) * (dout - self._shape(dbeta / m)
                                           - xhat * self._shape(dgamma / m))

    def config(self):
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "dtype": self.dtype.name}


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, D) activations, per feature."""
    _axes = (0,)
    _ndim = 2


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) activations, per channel."""
    _axes = (0, 2, 3)
    _ndim = 4
