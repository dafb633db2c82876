"""Layers: thin classes over :mod:`nnbook.functional`.

Every layer has ``forward(x)``, ``backward(dout) -> dx`` and the dicts
``params`` and ``grads`` (same keys, same shapes).  ``backward`` *adds* into
``grads`` (call ``zero_grad`` between steps, as optimizers do), so gradients
of a shared layer or of several losses accumulate correctly.

The public ``forward``/``backward`` check their arguments; the underscored
``_forward``/``_backward`` do the arithmetic and are what :class:`Sequential`
chains after checking the network's input once.
"""
from __future__ import annotations

import numpy as np

from . import _blas
from . import functional as F
from . import init as _init
from ._checks import check_array, check_dtype_match, check_int, describe
from .backend import asarray, get_default_dtype, get_rng, get_xp

__all__ = ["Param", "Layer", "Dense", "ReLU", "Sigmoid", "Tanh", "Identity", "Softmax",
           "LAYERS"]


class Param:
    """A handle on one parameter: ``layer.params[name]`` and ``layer.grads[name]``."""

    __slots__ = ("layer", "name")

    def __init__(self, layer, name):
        self.layer, self.name = layer, name

    @property
    def value(self):
        return self.layer.params[self.name]

    @value.setter
    def value(self, v):
        old = self.layer.params[self.name]
        if v.shape != old.shape:
            raise ValueError(f"value: expected shape {old.shape}, got {v.shape}")
        self.layer.params[self.name] = v

    @property
    def grad(self):
        return self.layer.grads[self.name]

    @property
    def shape(self):
        return self.value.shape

    def __repr__(self):
        return f"Param({type(self.layer).__name__}.{self.name}, shape={tuple(self.shape)})"


class Layer:
    """Base class.  Subclasses implement ``_forward``, ``_backward`` and ``config``."""

    def __init__(self):
        self.params: dict = {}
        self.grads: dict = {}
        self.training = True
        self._fresh = True        # grads hold zeros: the next backward may overwrite
        self._out_shape = None
        self._reuse = False       # training loops may let layers reuse output buffers
        self._bufs = {}

    # public, checked API -----------------------------------------------------------
    def forward(self, x):
        self._check_input(x)
        return self._forward(x)

    __call__ = forward

    def backward(self, dout):
        if self._out_shape is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        check_array("dout", dout, floating=True)
        if tuple(dout.shape) != tuple(self._out_shape):
            raise ValueError(f"dout: expected shape {tuple(self._out_shape)} (the output of the "
                             f"last forward), got {describe(dout)}")
        return self._backward(dout)

    def _check_input(self, x):
        check_array("x", x, floating=True)

    # parameters -----------------------------------------------------------------------
    def parameters(self):
        return [Param(self, k) for k in self.params]

    def zero_grad(self):
        """Reset gradients to zero.

        The zeros are a read-only broadcast view (no memory is written); the
        next ``backward`` stores fresh gradients in the layer's own buffers.
        """
        xp = get_xp()
        zs = self._bufs.get("zeros")
        if zs is None or any(zs.get(k) is None or zs[k].shape != v.shape or zs[k].dtype != v.dtype
                             for k, v in self.params.items()):
            zs = self._bufs["zeros"] = {
                k: xp.broadcast_to(xp.zeros((), dtype=v.dtype), v.shape)
                for k, v in self.params.items()}
        self.grads.update(zs)
        self._fresh = True

    def _buffer(self, key, shape, dtype, fill=None):
        """A persistent work array (reused across steps: fresh memory is slow);
        ``fill``: a constant it is set to when (re)allocated, for arrays that are
        only read afterwards."""
        b = self._bufs.get(key)
        if b is None or b.shape != tuple(shape) or b.dtype != dtype:
            b = self._bufs[key] = get_xp().empty(shape, dtype=dtype)
            if fill is not None:
                b.fill(fill)
        return b

    def _grad_out(self, name):
        """Where a fresh gradient may be written, or None if it must be added."""
        if not self._fresh:
            return None
        p = self.params[name]
        return self._buffer("grad_" + name, p.shape, p.dtype)

    def _accumulate(self, name, g):
        if self._fresh:
            self.grads[name] = g
        else:
            self.grads[name] = self.grads[name] + g

    def _set_reuse(self, flag):
        self._reuse = bool(flag)

    def train(self, mode=True):
        self.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def config(self) -> dict:
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class Dense(Layer):
    """Fully connected layer: ``out = x @ W + b``.

    ``params["W"]``: (in_features, out_features), so ``W[j, k]`` joins input
    neuron j to output neuron k (the thesis's W^i_{jk}); ``params["b"]``:
    (out_features,).  ``init`` names an initialiser in :mod:`nnbook.init`.
    ``dtype`` defaults to :func:`nnbook.get_default_dtype` (float32); inputs must
    have the same dtype (a clear TypeError otherwise, never a silent upcast).
    """

    def __init__(self, in_features, out_features, init="he", bias=True, dtype=None):
        super().__init__()
        self.in_features = check_int("in_features", in_features, minimum=1)
        self.out_features = check_int("out_features", out_features, minimum=1)
        self.init = init if isinstance(init, str) else getattr(init, "__name__", "custom")
        fn = _init.get(init)
        self.dtype = np.dtype(dtype) if dtype is not None else get_default_dtype()
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype: expected float32 or float64, got {self.dtype}")
        W = fn((self.in_features, self.out_features), self.in_features, self.out_features,
               get_rng())
        self.params["W"] = asarray(np.asarray(W, dtype=self.dtype))
        self.use_bias = bool(bias)
        if self.use_bias:
            self.params["b"] = asarray(np.zeros(self.out_features, dtype=self.dtype))
        self.zero_grad()

    def _check_input(self, x):
        check_array("x", x, ndim=2, floating=True)
        if x.shape[1] != self.in_features:
            raise ValueError(f"x: expected shape (N, {self.in_features}) for "
                             f"Dense({self.in_features}, {self.out_features}), got {describe(x)}")
        check_dtype_match("x", x, self.params["W"].dtype)

    def _forward(self, x):
        xp = get_xp()
        self._x = x
        W = self.params["W"]
        if not self._reuse:
            out = x @ W
            if self.use_bias:
                out += self.params["b"]
        else:
            out = self._buffer("out", (x.shape[0], W.shape[1]), W.dtype)
            if not (self.use_bias and self._forward_bias_in_gemm(x, W, out)):
                xp.matmul(x, W, out=out)
                if self.use_bias:
                    out += self.params["b"]
        self._out_shape = out.shape
        return out

    def _forward_bias_in_gemm(self, x, W, out):
        """``out = x @ W + b`` as one GEMM that adds onto ``out`` pre-filled with the
        bias (NumPy only; False, with nothing computed, where BLAS cannot take it)."""
        if type(out) is not np.ndarray or not _blas.available():
            return False
        np.copyto(out, self.params["b"])
        return _blas.gemm_acc(x, W, out, memo=self._gemm_memo("fwd_memo"))

    def _gemm_memo(self, key):
        """The layer's :class:`nnbook._blas.GemmMemo` for one of its two fused GEMMs."""
        memo = self._bufs.get(key)
        if memo is None:
            memo = self._bufs[key] = _blas.GemmMemo()
        return memo

    # set by nb.fit for plain SGD whose loss gradient is pre-scaled by the learning
    # rate: backward then applies the step itself (see _backward_sgd)
    _sgd_step = False

    def _backward(self, dout, need_dx=True):
        if self._sgd_step:
            return self._backward_sgd(dout, need_dx)
        xp = get_xp()
        x, W = self._x, self.params["W"]
        # dW = x^T dout (a transposed view goes straight to BLAS), db = sum_n dout
        self._accumulate("W", xp.matmul(x.T, dout, out=self._grad_out("W")))
        if self.use_bias:
            self._accumulate("b", dout.sum(axis=0, out=self._grad_out("b")))
        self._fresh = False
        if not need_dx:
            return None
        if self._reuse:
            return xp.matmul(dout, W.T, out=self._buffer("dx", x.shape, W.dtype))
        return dout @ W.T

    def _backward_sgd(self, dout, need_dx):
        """Backward and plain-SGD step in one: ``dout`` already carries the learning
        rate, so the step is ``W -= x^T dout`` and ``b -= sum_n dout``.  The weight
        update runs inside the GEMM (``beta = 1``, :mod:`nnbook._blas`) instead of a
        gradient buffer plus a second pass over W.  dx uses the weights *before* the
        step, as backpropagation requires."""
        xp = get_xp()
        x, W = self._x, self.params["W"]
        dx = None
        if need_dx:
            dx = (xp.matmul(dout, W.T, out=self._buffer("dx", x.shape, W.dtype))
                  if self._reuse else dout @ W.T)
        if not _blas.gemm_tn_update(W, x, dout, self._gemm_memo("step_memo")):
            W -= xp.matmul(x.T, dout, out=self._buffer("grad_W", W.shape, W.dtype))
        if self.use_bias:
            # sum over the batch as ones @ dout: a BLAS GEMV, faster than a reduction
            b = self.params["b"]
            ones = self._buffer("ones", (dout.shape[0],), b.dtype, fill=1)
            b -= xp.matmul(ones, dout, out=self._buffer("grad_b", b.shape, b.dtype))
        return dx

    def config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "init": self.init, "bias": self.use_bias, "dtype": self.dtype.name}


class _Activation(Layer):
    """Elementwise activation: the output follows the dtype of the input."""

    def _forward(self, x):
        out, self._cache = self._f(x)
        self._out_shape = out.shape
        return out

    def _backward(self, dout, need_dx=True):
        return self._b(dout, self._cache)


class ReLU(_Activation):
    """max(0, x); its derivative is taken as 0 at x = 0."""
    _f = staticmethod(F.relu_forward)
    _b = staticmethod(F.relu_backward)

    def _forward(self, x):
        if not self._reuse:
            return super()._forward(x)
        # inside a training loop the input is the previous layer's scratch output
        xp = get_xp()
        if xp is np:
            # a 0/1 mask in x's own float type: the backward product is then a plain
            # float multiply, about twice as fast as multiplying by a boolean array
            mask = xp.greater(x, 0, out=self._buffer("mask", x.shape, x.dtype), casting="unsafe")
        else:
            mask = xp.greater(x, 0, out=self._buffer("mask", x.shape, bool))
        self._cache = mask
        xp.multiply(x, mask, out=x)
        self._out_shape = x.shape
        return x

    def _backward(self, dout, need_dx=True):
        if not self._reuse:
            return super()._backward(dout, need_dx)
        return get_xp().multiply(dout, self._cache, out=dout)


class Sigmoid(_Activation):
    """1 / (1 + e^-x), computed stably."""
    _f = staticmethod(F.sigmoid_forward)
    _b = staticmethod(F.sigmoid_backward)


class Tanh(_Activation):
    _f = staticmethod(F.tanh_forward)
    _b = staticmethod(F.tanh_backward)


class Identity(_Activation):
    @staticmethod
    def _f(x):
        return x, None

    @staticmethod
    def _b(dout, cache):
        return dout


class Softmax(Layer):
    """Softmax over the last axis, as a layer (for inspection; train with
    :class:`nnbook.SoftmaxCrossEntropy` on logits, which is stabler and cheaper)."""

    def _check_input(self, x):
        check_array("x", x, ndim=2, floating=True)

    def _forward(self, x):
        self._o = F.softmax(x)
        self._out_shape = x.shape
        return self._o

    def _backward(self, dout, need_dx=True):
        o = self._o
        return o * (dout - (dout * o).sum(axis=1, keepdims=True))


LAYERS = {c.__name__: c for c in (Dense, ReLU, Sigmoid, Tanh, Identity, Softmax)}
