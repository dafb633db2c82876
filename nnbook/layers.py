"""Layers: the book's equations as classes, forward and backward side by side.

Every layer follows one contract, the same for nnbook's layers and yours::

    class Scale(nb.Layer):                 # out = a * x, with a learned scalar a
        def __init__(self):
            super().__init__()
            self.params["a"] = nb.xp.ones(1)
            self.grads["a"] = nb.xp.zeros(1)

        def forward(self, x):              # x: (N, D) -> out: (N, D)
            self.x = x                     # keep what backward needs
            return self.params["a"] * x

        def backward(self, dout):          # dout = dE/dout: (N, D) -> dE/dx: (N, D)
            self.grads["a"] += (dout * self.x).sum(keepdims=True).reshape(1)
            return self.params["a"] * dout

* ``forward(x)`` returns the output and keeps what ``backward`` needs;
  ``backward(dout)`` receives dE/d(output) and returns dE/d(input).
* Parameters live in ``self.params`` and their gradients under the same names
  in ``self.grads``.  ``backward`` *adds* into ``grads`` (``+=``), so gradients
  of several backward passes accumulate until ``zero_grad()``, as in PyTorch;
  optimizers and :func:`nnbook.fit` call ``zero_grad()`` between steps.
* ``config()`` returns the constructor's arguments, if it has any, so that
  ``model.save`` / :func:`nnbook.load_model` can rebuild the layer.
* ``self.training`` is True in training mode and False after ``eval()``
  (layers such as :class:`Dropout` and batch normalisation behave differently).
* Optional: ``check_input(x)`` raises a clear error for an input the layer
  cannot take (wrong shape, dtype); it runs before every ``forward``.

The base class does the bookkeeping around your two methods: it checks that
the input and ``dout`` are floating-point arrays, that ``backward`` comes
after a ``forward`` and that ``dout`` has the shape of that forward's output.
Nothing else is required: such a layer works in :class:`nnbook.Sequential`,
:func:`nnbook.fit` (any optimizer, ``val=``, callbacks), :func:`nnbook.gradcheck`
checks and save/load.  Layers never modify the arrays they are given.

These classes are written for reading.  Training runs them unchanged unless
:mod:`nnbook.engine` recognises a pattern it can run faster (a chain of Dense
and ReLU layers, a convolution followed by a pool); the engine is tested to
give the same numbers.
"""
from __future__ import annotations

import functools

import numpy as np

from . import functional as F
from . import init as _init
from ._checks import check_array, check_dtype_match, check_int, check_positive, describe
from .backend import asarray, get_default_dtype, get_rng, get_xp

__all__ = ["Param", "Layer", "Dense", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Identity",
           "Softmax", "Dropout", "Flatten", "LAYERS", "register_layer", "layer_dtype"]

#: Every layer class by the name its saved config uses (filled in automatically).
LAYERS: dict = {}


def register_layer(cls):
    """Record ``cls`` under its saved name (done automatically for every subclass of
    :class:`Layer`; kept as a decorator for code written against older versions)."""
    LAYERS[layer_type_name(cls)] = cls
    return cls


def layer_type_name(cls):
    """The name a saved model uses for a layer class: the class name for nnbook's own
    layers, ``module.QualName`` for any other (so your ``Dense`` never replaces ours)."""
    mod = cls.__module__ or ""
    if mod == "nnbook" or mod.startswith("nnbook."):
        return cls.__name__
    return f"{mod}.{cls.__qualname__}"


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
        g = self.layer.grads.get(self.name)
        if g is None:
            raise RuntimeError(f"{type(self.layer).__name__}.grads[{self.name!r}] is missing: "
                               f"backward must store the gradient of every entry of params")
        return g

    @property
    def shape(self):
        return self.value.shape

    def __repr__(self):
        return f"Param({type(self.layer).__name__}.{self.name}, shape={tuple(self.shape)})"


# ------------------------------------------------------------------- the bookkeeping
_running = [0]          # layer forwards in progress (a model's layers run inside its own)

def _checked_forward(fn):
    """Wrap a subclass's ``forward``: check the input, remember the output's shape."""
    @functools.wraps(fn)
    def forward(self, x, *args, **kwargs):
        if self.__dict__.get("_nb_inside"):          # super().forward(...) from a subclass
            return fn(self, x, *args, **kwargs)
        # the input of a whole model is scanned for NaN/inf once, not at every layer
        check_array("x", x, floating=True, finite=not _running[0])
        self.check_input(x)
        self._nb_inside = True
        _running[0] += 1
        try:
            out = fn(self, x, *args, **kwargs)
        finally:
            self._nb_inside = False
            _running[0] -= 1
        self._nb_out_shape = tuple(out.shape) if hasattr(out, "shape") else None
        return out
    forward._nb_checked = True
    return forward


def _checked_backward(fn):
    """Wrap a subclass's ``backward``: it must follow a forward, with ``dout`` shaped
    like that forward's output."""
    @functools.wraps(fn)
    def backward(self, dout, *args, **kwargs):
        if self.__dict__.get("_nb_inside"):
            return fn(self, dout, *args, **kwargs)
        if "_nb_out_shape" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        check_array("dout", dout, floating=True, finite=False)
        want = self._nb_out_shape
        if want is not None and tuple(dout.shape) != want:
            raise ValueError(f"dout: expected shape {want} (the output of the last forward "
                             f"of {type(self).__name__}), got {describe(dout)}")
        self._nb_inside = True
        try:
            return fn(self, dout, *args, **kwargs)
        finally:
            self._nb_inside = False
    backward._nb_checked = True
    return backward


class Layer:
    """Base class of every layer: subclass it and write ``forward(x)`` and
    ``backward(dout)`` (see the module docstring for the whole contract)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name, wrap in (("forward", _checked_forward), ("backward", _checked_backward),
                           ("backward_params", _checked_backward)):
            fn = cls.__dict__.get(name)
            if callable(fn) and not getattr(fn, "_nb_checked", False):
                setattr(cls, name, wrap(fn))
        register_layer(cls)

    def __init__(self):
        self.params: dict = {}
        self.grads: dict = {}
        self.training = True

    def forward(self, x):
        """Compute the output for ``x`` and keep what backward needs."""
        raise NotImplementedError(f"{type(self).__name__} must define forward(self, x)")

    def backward(self, dout):
        """Add the parameter gradients into ``grads`` and return dE/dx."""
        raise NotImplementedError(f"{type(self).__name__} must define backward(self, dout)")

    def __call__(self, x):
        return self.forward(x)

    def backward_params(self, dout):
        """Only the parameter gradients of ``backward`` (what a network's first layer
        needs: its input wants no gradient).  Optional: by default it calls
        ``backward`` and drops dE/dx; :class:`Dense` skips that product."""
        self.backward(dout)

    def check_input(self, x):
        """Raise a clear error if this layer cannot take ``x`` (default: accept)."""

    # parameters -----------------------------------------------------------------------
    def children(self):
        """The layers this one is built from (a container's or a block's; none here).
        Their parameters, gradients and modes count as this layer's."""
        return []

    def parameters(self):
        return ([Param(self, k) for k in self.params]
                + [p for c in self.children() for p in c.parameters()])

    def zero_grad(self):
        """Set every gradient to zero (in place where the array already fits)."""
        for k, p in self.params.items():
            g = self.grads.get(k)
            if (g is not None and type(g) is type(p) and g.shape == p.shape
                    and g.dtype == p.dtype and g.flags.writeable):
                g.fill(0)
            else:
                self.grads[k] = get_xp().zeros_like(p)
        for c in self.children():
            c.zero_grad()

    def train(self, mode=True):
        self.training = bool(mode)
        for c in self.children():
            c.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def config(self) -> dict:
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


def layer_dtype(dtype):
    """The parameter dtype a layer is built with: ``dtype`` or nnbook's default."""
    d = np.dtype(dtype) if dtype is not None else get_default_dtype()
    if d not in (np.float32, np.float64):
        raise ValueError(f"dtype: expected float32 or float64, got {d}")
    return d


# ------------------------------------------------------------------- the layers
class Dense(Layer):
    """Fully connected layer: ``out = x @ W + b``.

    ``params["W"]``: (in_features, out_features), so ``W[j, k]`` joins input
    neuron j to output neuron k (the thesis's W^i_{jk}); ``params["b"]``:
    (out_features,).  ``init`` names an initialiser in :mod:`nnbook.init`.
    ``dtype`` defaults to :func:`nnbook.get_default_dtype` (float32); inputs must
    have the same dtype (a clear TypeError otherwise, never a silent upcast).

    Forward ``x: (N, in) -> (N, out)``; backward ``dout: (N, out)``:
    ``dW = x^T dout``, ``db = sum_n dout``, ``dx = dout W^T``.
    """

    def __init__(self, in_features, out_features, init="he", bias=True, dtype=None):
        super().__init__()
        self.in_features = check_int("in_features", in_features, minimum=1)
        self.out_features = check_int("out_features", out_features, minimum=1)
        self.init = init if isinstance(init, str) else getattr(init, "__name__", "custom")
        fn = _init.get(init)
        self.dtype = layer_dtype(dtype)
        W = fn((self.in_features, self.out_features), self.in_features, self.out_features,
               get_rng())
        self.params["W"] = asarray(np.asarray(W, dtype=self.dtype))
        self.use_bias = bool(bias)
        if self.use_bias:
            self.params["b"] = asarray(np.zeros(self.out_features, dtype=self.dtype))
        self.zero_grad()

    @staticmethod
    def _shapes_from_config(in_features, out_features, bias=True, **_):
        shapes = {"W": (in_features, out_features)}
        if bias:
            shapes["b"] = (out_features,)
        return shapes

    def check_input(self, x):
        check_array("x", x, ndim=2, floating=True, finite=False)
        if x.shape[1] != self.in_features:
            raise ValueError(f"x: expected shape (N, {self.in_features}) for "
                             f"Dense({self.in_features}, {self.out_features}), "
                             f"got {describe(x)}")
        check_dtype_match("x", x, self.params["W"].dtype)

    def forward(self, x):
        self.x = x
        out = x @ self.params["W"]
        if self.use_bias:
            out += self.params["b"]
        return out

    def backward(self, dout):
        self.backward_params(dout)
        return dout @ self.params["W"].T

    def backward_params(self, dout):
        self.grads["W"] += self.x.T @ dout
        if self.use_bias:
            self.grads["b"] += dout.sum(axis=0)

    def config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "init": self.init, "bias": self.use_bias, "dtype": self.dtype.name}


class ReLU(Layer):
    """max(0, x), elementwise; its derivative is taken as 0 at x = 0."""

    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, dout):
        return dout * self.mask


class LeakyReLU(Layer):
    """x where x > 0, ``negative_slope * x`` elsewhere (derivative 1 or the slope)."""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = check_positive("negative_slope", negative_slope, allow_zero=True)

    def forward(self, x):
        self.slope = get_xp().where(x > 0, 1, self.negative_slope).astype(x.dtype)
        return x * self.slope

    def backward(self, dout):
        return dout * self.slope

    def config(self):
        return {"negative_slope": self.negative_slope}


class Sigmoid(Layer):
    """1 / (1 + e^-x), computed stably; derivative s (1 - s)."""

    def forward(self, x):
        self.s = F.sigmoid(x)
        return self.s

    def backward(self, dout):
        return dout * self.s * (1 - self.s)


class Tanh(Layer):
    """tanh(x); derivative 1 - tanh(x)^2."""

    def forward(self, x):
        self.t = get_xp().tanh(x)
        return self.t

    def backward(self, dout):
        return dout * (1 - self.t * self.t)


class Identity(Layer):
    """out = x."""

    def forward(self, x):
        return x

    def backward(self, dout):
        return dout


class Softmax(Layer):
    """Softmax over the last axis, as a layer (for inspection; train with
    :class:`nnbook.SoftmaxCrossEntropy` on logits, which is stabler and cheaper).
    Backward is the product with the Jacobian diag(o) - o o^T, row by row."""

    def check_input(self, x):
        check_array("x", x, ndim=2, floating=True, finite=False)

    def forward(self, x):
        self.o = F.softmax(x)
        return self.o

    def backward(self, dout):
        o = self.o
        return o * (dout - (dout * o).sum(axis=1, keepdims=True))


class Dropout(Layer):
    """Inverted dropout: in training mode each entry is zeroed with probability ``p``
    and the survivors are scaled by 1/(1 - p), so the expected output equals x; in
    evaluation mode (``eval()``) the layer is the identity.  The mask comes from
    nnbook's seeded generator (:func:`nnbook.seed`)."""

    def __init__(self, p=0.5):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) \
                or not 0 <= p < 1:
            raise ValueError(f"p: expected a probability in [0, 1), got {p!r}")
        self.p = float(p)

    def forward(self, x):
        if not self.training or self.p == 0:
            self.mask = None
            return x
        keep = get_rng().random(x.shape) >= self.p
        self.mask = asarray((keep / (1 - self.p)).astype(x.dtype))
        return x * self.mask

    def backward(self, dout):
        return dout if self.mask is None else dout * self.mask

    def config(self):
        return {"p": self.p}


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W) in C, H, W order (PyTorch's ``flatten(1)``)."""

    def check_input(self, x):
        check_array("x", x, ndim=(2, 3, 4, 5), floating=True, finite=False)

    def forward(self, x):
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self.shape)
