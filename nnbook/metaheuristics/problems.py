"""Batched objectives over R^D: the training loss of a network
(:class:`NetProblem`), a test function (:class:`FunctionProblem`, and the
functions themselves: :func:`sphere`, :func:`rastrigin`, :func:`rosenbrock`
with their gradients), and nnbook optimizers by name (:func:`make_optimizer`).
"""
from __future__ import annotations

import math

import numpy as np

from .. import init as _init
from .._checks import check_choice, check_int
from ..backend import get_xp, to_numpy
from ..conv import Conv2D
from ..layers import Dense, Layer
from ..losses import Loss
from .population import (_BN, _CHUNKABLE_LOSSES, _check_population, _chunk_loss, _chunkable,
                         _Chunked, _stack_plan, get_flat, param_count, population_loss, set_flat)


# ---------------------------------------------------------------------------------------
# problems: batched objectives with optional gradients
# ---------------------------------------------------------------------------------------
def make_optimizer(name, params, lr=None):
    """An nnbook optimizer by name: ``"sgd"``, ``"nag"`` (SGD, momentum 0.9,
    Nesterov), ``"rmsprop"``, ``"adam"``; ``lr=None`` takes PyTorch's default
    (0.01 for NAG/RMSprop/SGD, 0.001 for Adam)."""
    from ..optim import SGD, Adam, RMSprop  # noqa: PLC0415
    check_choice("optimizer", name, ("sgd", "nag", "rmsprop", "adam"))
    if name == "adam":
        return Adam(params, lr=lr or 1e-3)
    if name == "rmsprop":
        return RMSprop(params, lr=lr or 1e-2)
    if name == "nag":
        return SGD(params, lr=lr or 1e-2, momentum=0.9, nesterov=True)
    return SGD(params, lr=lr or 1e-2)


class NetProblem:
    """The training loss of ``model`` on (X, y) as a batched objective over R^D.

    ``problem(P)`` -> losses (pop,) of the rows of P on the whole of (X, y)
    (:func:`population_loss`); ``value_and_grad(v)`` -> (loss, gradient) by
    backpropagation, float64; ``descend(v, opt, epochs, batch_size, rng)`` runs
    epochs of mini-batch steps of the nnbook optimizer ``opt`` from v and
    returns the new point; ``init_population(n, rng)`` draws n fresh
    initialisations (row 0 is the model's current weights).  The model is used
    as a scratch space: its weights change when these methods run.

    The model is put in training mode: a BatchNorm layer then normalises with
    the mean and variance of the *whole* training set, so the objective is a
    deterministic function of the weights (what the network computes in
    evaluation mode after :func:`calibrate_batchnorm` on X).  Networks other
    than MLPs (convolutions, pooling, BatchNorm) are evaluated member by
    member, layer by layer over chunks of ``chunk_size`` examples, and their
    gradient is computed the same way.
    """

    def __init__(self, model, loss, X, y, max_elems=2 ** 25, chunk_size=1000):
        from ..train import _check_targets, _prepare  # noqa: PLC0415
        if not isinstance(loss, Loss):
            raise TypeError(f"loss: expected an nnbook loss, got {type(loss).__name__}")
        self.model, self.loss = model, loss
        self.dim = param_count(model)
        self.X, y = _prepare(model, X, y, ("X", "y"))
        self.y = _check_targets(loss, model, self.X, y, "y")
        self.max_elems = max_elems
        self.chunk_size = check_int("chunk_size", chunk_size, minimum=1)
        self.x0 = get_flat(model)
        self.nfev = 0
        model.train()
        self._chunked = (_stack_plan(model) is None and _chunkable(model)
                         and isinstance(loss, _CHUNKABLE_LOSSES))

    def __call__(self, P):
        P = _check_population(P, self.dim)
        self.nfev += P.shape[0]
        self.model.train()
        return population_loss(self.model, self.loss, P, self.X, self.y, self.max_elems,
                               self.chunk_size)

    def value_and_grad(self, v):
        m = self.model
        set_flat(m, np.asarray(v, dtype=np.float64))
        m.train()
        if self._chunked:
            eng = _Chunked(m, self.X.shape[0], self.chunk_size, keep=True)
            val, douts = _chunk_loss(self.loss, eng.forward(self.X), eng.bounds, self.y,
                                     self.X.shape[0], backward=True)
            g = eng.backward(douts)
        else:
            m.zero_grad()
            val = self.loss._forward(m.forward(self.X), self.y)
            if math.isfinite(val):         # a diverged member has no gradient to follow
                m.backward(self.loss._backward())
            g = np.concatenate([to_numpy(p.grad).astype(np.float64).ravel()
                                for p in m.parameters()])
        self.nfev += 1
        if not math.isfinite(val) or not np.isfinite(g).all():
            return math.inf, np.zeros_like(g)
        return float(val), g

    def descend(self, v, opt, epochs=1, batch_size=32, rng=None):
        """``epochs`` epochs of mini-batch steps of ``opt`` (built on
        ``self.model.parameters()``) starting from v; returns the final point."""
        m, loss, X, y = self.model, self.loss, self.X, self.y
        rng = rng if rng is not None else np.random.default_rng()
        set_flat(m, np.asarray(v, dtype=np.float64))
        n = X.shape[0]
        xp = get_xp()
        m.train()
        m.zero_grad()                      # backward adds: start from zero gradients
        for _ in range(check_int("epochs", epochs, minimum=1)):
            order = rng.permutation(n)
            for i in range(0, n, batch_size):
                idx = order[i:i + batch_size]
                if xp is not np:
                    idx = xp.asarray(idx)
                loss._forward(m.forward(X[idx]), y[idx])
                m.backward(loss._backward())
                opt.step()
                opt.zero_grad()
        self.nfev += epochs
        w = get_flat(m)
        if not np.isfinite(w).all():
            return np.asarray(v, dtype=np.float64).copy()
        return w

    def init_population(self, n, rng):
        """n initial parameter vectors: row 0 = the weights the model was built
        with; the others redrawn with each Dense or Conv2D layer's initialiser
        (biases 0; BatchNorm scales 1 and shifts 0, as a new layer has them)."""
        n = check_int("n", n, minimum=1)
        P = np.empty((n, self.dim))
        P[0] = self.x0
        for r in range(1, n):
            parts = []
            for p in self.model.parameters():
                l = p.layer
                if isinstance(l, (Dense, Conv2D)) and p.name == "W":
                    fn = _init.get(l.init if l.init in _init.INITS else "glorot")
                    if isinstance(l, Dense):
                        fans = (l.in_features, l.out_features)
                    else:
                        k = int(np.prod(l.kernel_size))
                        fans = (l.in_channels * k, l.out_channels * k)
                    parts.append(np.asarray(fn(p.shape, *fans, rng), dtype=np.float64).ravel())
                elif p.name == "b" or (isinstance(l, _BN) and p.name == "beta"):
                    parts.append(np.zeros(int(np.prod(p.shape))))
                elif isinstance(l, _BN) and p.name == "gamma":
                    parts.append(np.ones(int(np.prod(p.shape))))
                else:
                    w = to_numpy(p.value).astype(np.float64)
                    parts.append(rng.normal(0.0, w.std() or 0.01, size=w.size))
            P[r] = np.concatenate(parts)
        return P


class _VectorLayer(Layer):
    """A layer that is just one parameter vector (lets nnbook optimizers act on R^D)."""

    def __init__(self, v):
        super().__init__()
        self.params["x"] = np.asarray(v, dtype=np.float64).copy()
        self.zero_grad()


class FunctionProblem:
    """A batched test function ``f(P)`` (and optionally its gradient
    ``grad(x)``) as a problem with the interface of :class:`NetProblem`."""

    def __init__(self, f, dim, grad=None, bounds=None):
        if not callable(f):
            raise TypeError(f"f: expected a function of a (popsize, D) array, got {type(f).__name__}")
        self.f, self.grad = f, grad
        self.dim = check_int("dim", dim, minimum=1)
        self.bounds = bounds
        self.nfev = 0
        self._layer = _VectorLayer(np.zeros(self.dim))

    def __call__(self, P):
        P = _check_population(P, self.dim)
        self.nfev += P.shape[0]
        return np.asarray(self.f(P), dtype=np.float64)

    def value_and_grad(self, v):
        if self.grad is None:
            raise ValueError("grad: this FunctionProblem was built without a gradient")
        self.nfev += 1
        v = np.asarray(v, dtype=np.float64)
        return float(self.f(v[None])[0]), np.asarray(self.grad(v), dtype=np.float64)

    def parameters(self):
        return self._layer.parameters()

    def descend(self, v, opt, epochs=1, batch_size=None, rng=None):
        """``epochs`` full-batch gradient steps of ``opt`` (built on ``self.parameters()``)."""
        if self.grad is None:
            raise ValueError("grad: gradient descent needs the function's gradient")
        lay = self._layer
        lay.params["x"] = np.asarray(v, dtype=np.float64).copy()
        for _ in range(check_int("epochs", epochs, minimum=1)):
            lay.grads["x"] = np.asarray(self.grad(lay.params["x"]), dtype=np.float64)
            opt.step()
        self.nfev += epochs
        x = lay.params["x"].copy()
        if self.bounds is not None:
            x = np.clip(x, *self.bounds)
        return x if np.isfinite(x).all() else np.asarray(v, dtype=np.float64).copy()


# ---------------------------------------------------------------------------------------
# test functions (batched: rows of P are points)
# ---------------------------------------------------------------------------------------
def sphere(P):
    """f(x) = sum x_i^2; minimum 0 at 0."""
    P = np.atleast_2d(P)
    return (P * P).sum(axis=1)


def sphere_grad(x):
    return 2 * np.asarray(x, dtype=np.float64)


def rastrigin(P):
    """f(x) = 10 D + sum (x_i^2 - 10 cos 2 pi x_i); minimum 0 at 0, a local
    minimum near every integer point."""
    P = np.atleast_2d(P)
    return 10 * P.shape[1] + (P * P - 10 * np.cos(2 * np.pi * P)).sum(axis=1)


def rastrigin_grad(x):
    x = np.asarray(x, dtype=np.float64)
    return 2 * x + 20 * np.pi * np.sin(2 * np.pi * x)


def rosenbrock(P):
    """f(x) = sum 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2; minimum 0 at (1, ..., 1)."""
    P = np.atleast_2d(P)
    a, b = P[:, :-1], P[:, 1:]
    return (100 * (b - a * a) ** 2 + (1 - a) ** 2).sum(axis=1)


def rosenbrock_grad(x):
    x = np.asarray(x, dtype=np.float64)
    g = np.zeros_like(x)
    a, b = x[:-1], x[1:]
    g[:-1] += -400 * a * (b - a * a) - 2 * (1 - a)
    g[1:] += 200 * (b - a * a)
    return g


TEST_FUNCTIONS = {
    "sphere": (sphere, sphere_grad, (-100.0, 100.0)),
    "rastrigin": (rastrigin, rastrigin_grad, (-5.12, 5.12)),
    "rosenbrock": (rosenbrock, rosenbrock_grad, (-5.0, 10.0)),
}
"""name -> (batched function, gradient, the usual search bounds (lower, upper))."""
