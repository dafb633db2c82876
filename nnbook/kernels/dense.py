"""A dense network on the hand-written kernels, behind the same API as :mod:`nnbook`.

* :class:`KernelDense` -- a :class:`nnbook.Dense` whose ``_forward``/``_backward``
  call the kernels (GEMM, fused bias + activation, transposes): the activation
  is fused into the layer, so no separate ReLU layer follows it.
* :class:`KernelSoftmaxCrossEntropy` -- the fused softmax + cross-entropy kernel.
* :class:`KernelSGD` -- the elementwise SGD (momentum) kernel.
* :func:`mlp` -- ``mlp(sizes, engine="xp" | "kernels")``; :func:`make_loss` and
  :func:`make_sgd` pick the matching loss and optimizer.  Everything else (``nb.fit``,
  ``nb.evaluate``, save/load) is the one code path of the package.

Per layer and step (X: (B, D_in), W: (D_in, D_out))::

    forward    Z = X W (matmul), A = f(Z + b) (bias_act.forward, in place)
    backward   dZ, db = bias_act.backward(dA, A);  dW = transpose(X) · dZ;
               dX = dZ · transpose(W)

On a GPU use ``nb.use("cupy")`` first (arrays are CuPy); without one the kernels
run in the simulator on NumPy arrays -- tiny shapes only.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_xp
from ..layers import Dense
from ..losses import SoftmaxCrossEntropy
from ..models import Sequential
from ..models import mlp as _xp_mlp
from ..optim import SGD
from . import bias_act, matmul, sgd, softmax_xent

__all__ = ["KernelDense", "KernelSoftmaxCrossEntropy", "KernelSGD", "mlp", "make_loss",
           "make_sgd", "ENGINES", "DEFAULT_VERSIONS"]

ENGINES = ("xp", "kernels")
DEFAULT_VERSIONS = {"matmul": matmul.DEFAULT_VERSION, "bias_act": bias_act.DEFAULT_VERSION,
                    "softmax_xent": softmax_xent.DEFAULT_VERSION, "sgd": sgd.DEFAULT_VERSION}


def _versions(versions):
    v = dict(DEFAULT_VERSIONS)
    if versions:
        unknown = set(versions) - set(v)
        if unknown:
            raise ValueError(f"versions: unknown kernels {sorted(unknown)}; expected keys "
                             f"from {sorted(v)}")
        v.update(versions)
    return v


class KernelDense(Dense):
    """``A = f(X W + b)`` on the hand-written kernels (float32 only).

    ``activation``: ``"identity"`` (default), ``"relu"``, ``"sigmoid"`` or ``"tanh"``.
    ``versions``: kernel versions, e.g. ``{"matmul": 3}`` (see ``DEFAULT_VERSIONS``).
    Parameters, gradients (accumulating) and checks behave as in :class:`nnbook.Dense`.
    """

    def __init__(self, in_features, out_features, activation="identity", init="he", bias=True,
                 dtype=None, versions=None):
        super().__init__(in_features, out_features, init=init, bias=bias, dtype=dtype)
        if self.dtype != np.float32:
            raise ValueError(f"dtype: the kernels are float32 only, got {self.dtype}")
        if activation not in bias_act.ACTIVATIONS:
            raise ValueError(f"activation: expected one of {tuple(bias_act.ACTIVATIONS)}, "
                             f"got {activation!r}")
        self.activation = activation
        self.versions = _versions(versions)

    def _bias(self):
        if self.use_bias:
            return self.params["b"]
        return get_xp().zeros((self.out_features,), np.float32)

    def forward(self, x):
        xp = get_xp()
        x = xp.ascontiguousarray(x)
        self.x = x
        W = self.params["W"]
        out = xp.empty((x.shape[0], self.out_features), dtype=np.float32)
        matmul.matmul(x, W, out=out, version=self.versions["matmul"])
        bias_act.forward(out, self._bias(), self.activation, out=out,
                         version=self.versions["bias_act"])
        self.a = out
        return out

    def backward(self, dout):
        xp = get_xp()
        dout = xp.ascontiguousarray(dout, dtype=np.float32)
        x, W = self.x, self.params["W"]
        B = x.shape[0]
        dZ = xp.empty((B, self.out_features), dtype=np.float32)
        db = xp.empty((self.out_features,), dtype=np.float32)
        bias_act.backward(dout, self.a, self.activation, dZ=dZ, db=db,
                          version=self.versions["bias_act"])
        xT = matmul.transpose(x, out=xp.empty((self.in_features, B), dtype=np.float32))
        self.grads["W"] += matmul.matmul(xT, dZ, version=self.versions["matmul"])
        if self.use_bias:
            self.grads["b"] += db
        WT = matmul.transpose(W, out=xp.empty((self.out_features, self.in_features),
                                              dtype=np.float32))
        dx = xp.empty((B, self.in_features), dtype=np.float32)
        return matmul.matmul(dZ, WT, out=dx, version=self.versions["matmul"])

    def config(self):
        cfg = super().config()
        cfg.update(activation=self.activation, versions=dict(self.versions))
        return cfg


class KernelSoftmaxCrossEntropy(SoftmaxCrossEntropy):
    """:class:`nnbook.SoftmaxCrossEntropy` computed by the fused kernel for integer
    labels (one-hot targets fall back to the array code).  The gradient is made
    in the same launch as the loss and handed out by ``backward``."""

    def __init__(self, version=None):
        self.version = softmax_xent.DEFAULT_VERSION if version is None else version

    def _forward(self, logits, y):
        if y.ndim != 1 or logits.dtype != np.float32:
            return super()._forward(logits, y)
        xp = get_xp()
        logits = xp.ascontiguousarray(logits)
        y = xp.ascontiguousarray(y)
        loss, grad, _ = softmax_xent.forward_backward(logits, y, version=self.version)
        self._cache = grad
        self._labels = "kernel"
        return float(loss[0])

    def _backward(self, dloss=1.0):
        if self._labels != "kernel":
            return super()._backward(dloss)
        return self._cache if dloss == 1.0 else self._cache * np.float32(dloss)


class KernelSGD(SGD):
    """:class:`nnbook.SGD` (same rule, momentum, Nesterov, weight decay) whose
    update is one elementwise kernel per parameter."""

    def __init__(self, params, lr=0.01, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, version=None):
        super().__init__(params, lr, momentum, dampening, weight_decay, nesterov)
        self.version = sgd.DEFAULT_VERSION if version is None else version

    def _update(self, p, g, st):
        xp = get_xp()
        w = p.value
        g = xp.ascontiguousarray(g, dtype=np.float32)
        first = "buf" not in st
        if self.momentum and first:
            st["buf"] = xp.empty(w.shape, dtype=np.float32)
        sgd.step(w, g, st.get("buf"), self.lr, self.momentum, self.dampening,
                 self.weight_decay, self.nesterov, first, version=self.version)


def _check_engine(engine):
    if engine not in ENGINES:
        raise ValueError(f"engine: expected one of {ENGINES}, got {engine!r}")


def mlp(sizes, activation="relu", engine="kernels", init="he", versions=None):
    """A multilayer perceptron on ``engine``: ``"xp"`` (:func:`nnbook.mlp`: NumPy or
    CuPy/cuBLAS) or ``"kernels"`` (:class:`KernelDense` layers, activation fused).

    With the same seed both engines draw the same weights (in the same order).
    """
    _check_engine(engine)
    if engine == "xp":
        return _xp_mlp(sizes, activation=activation, init=init, dtype="float32")
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes: expected at least two layer sizes, got {sizes}")
    if activation not in ("relu", "sigmoid", "tanh"):
        raise ValueError(f"activation: expected 'relu', 'sigmoid' or 'tanh', got {activation!r}")
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        act = activation if i < len(sizes) - 2 else "identity"
        layers.append(KernelDense(a, b, activation=act, init=init, dtype="float32",
                                  versions=versions))
    return Sequential(*layers)


def make_loss(engine="kernels", version=None):
    """The softmax cross-entropy loss of ``engine``: :class:`nnbook.SoftmaxCrossEntropy`
    ("xp") or :class:`KernelSoftmaxCrossEntropy` ("kernels", kernel ``version``)."""
    _check_engine(engine)
    return SoftmaxCrossEntropy() if engine == "xp" else KernelSoftmaxCrossEntropy(version)


def make_sgd(engine, params, lr=0.01, version=None, **kw):
    """SGD for ``engine``: :class:`nnbook.SGD` ("xp") or :class:`KernelSGD` ("kernels");
    ``kw``: momentum, dampening, weight_decay, nesterov."""
    _check_engine(engine)
    if engine == "xp":
        return SGD(params, lr=lr, **kw)
    return KernelSGD(params, lr=lr, version=version, **kw)
