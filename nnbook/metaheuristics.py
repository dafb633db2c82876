"""Training without gradients: differential evolution, SHADE, SHADE-ILS and
their hybrids with gradient descent.

A network's parameters are one point of R^D (:func:`get_flat` / :func:`set_flat`);
a metaheuristic moves a *population* of such points, stored as the rows of a
matrix P of shape (popsize, D).  :func:`population_loss` evaluates the loss of
every row in one batched pass for an MLP (``X @ W[p]`` over the population
axis, with the array module of :func:`nnbook.get_xp`, so it runs on CuPy too),
and member by member for a convolutional network such as LeNet-5 (layer by
layer over chunks of the data; a BatchNorm layer in training mode normalises
with the statistics of the whole data, see :func:`calibrate_batchnorm`).

Algorithms (all minimise; all take ``seed`` and a budget ``max_evals`` in
function evaluations, and return an :class:`OptimizeResult` with the best point
and its history):

=====================  =========================================================
:func:`de`             differential evolution, DE/rand/1/bin or
                       DE/current-to-pbest/1/bin with an archive (Storn & Price
                       1997; Zhang & Sanderson 2009)
:func:`shade`          success-history adaptive DE (Tanabe & Fukunaga 2013)
:func:`shade_ils`      SHADE + iterated local search with L-BFGS-B and restarts
                       (Molina, LaTorre & Herrera 2018)
:func:`shade_gd`       SHADE whose local search is k epochs of an nnbook optimizer
:func:`shade_ils_gd`   SHADE-ILS choosing between L-BFGS-B and gradient descent
=====================  =========================================================

Objectives are *batched*: ``f(P)`` takes (popsize, D) and returns (popsize,).
:class:`NetProblem` wraps a model, a loss and training data into such an
objective that also offers ``value_and_grad`` (backpropagation, for L-BFGS-B)
and ``descend`` (epochs of an nnbook optimizer, for the hybrids).

Counting: one function evaluation (FE) is one evaluation of the objective at
one point (for a network, the loss over the whole training set).  A call of
``value_and_grad`` counts as one FE, and one epoch of mini-batch gradient
steps also counts as one FE (it visits every example once), although a
backward pass costs about two more forwards; wall-clock time is reported too.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time

import numpy as np

from . import functional as F
from . import init as _init
from ._checks import check_array, check_choice, check_int, check_positive, describe
from .backend import asarray, get_xp, to_numpy
from .conv import AvgPool2D, BatchNorm1d, BatchNorm2d, Conv2D, Flatten, MaxPool2D
from .layers import Dense, Identity, Layer, ReLU, Sigmoid, Softmax, Tanh
from .losses import MSE, BinaryCrossEntropy, Loss, SoftmaxCrossEntropy
from .models import Sequential

__all__ = [
    "param_count", "get_flat", "set_flat", "population_forward", "population_loss",
    "calibrate_batchnorm", "NetProblem", "FunctionProblem", "OptimizeResult",
    "de", "shade", "shade_ils", "shade_gd", "shade_ils_gd",
    "LBFGSB", "GradientDescentLS", "make_optimizer",
    "lehmer_mean", "weighted_mean", "shade_memory_update", "sample_cr_f",
    "bounce_back", "midpoint_repair", "de_rand_1", "current_to_pbest_1", "binomial_crossover",
    "sphere", "rastrigin", "rosenbrock", "sphere_grad", "rastrigin_grad", "rosenbrock_grad",
    "TEST_FUNCTIONS", "accuracy", "balanced_accuracy", "mse", "r2_score",
]


# ---------------------------------------------------------------------------------------
# flatten / unflatten
# ---------------------------------------------------------------------------------------
def _params(model):
    if not isinstance(model, Layer):
        raise TypeError(f"model: expected an nnbook layer or model (e.g. nb.mlp(...)), "
                        f"got {type(model).__name__}")
    ps = model.parameters()
    if not ps:
        raise ValueError(f"model: expected a model with parameters, got {model!r} with none")
    return ps


def param_count(model) -> int:
    """Number of scalar parameters D of ``model`` (the dimension metaheuristics search)."""
    return int(sum(int(np.prod(p.shape)) for p in _params(model)))


def get_flat(model) -> np.ndarray:
    """All parameters of ``model`` as one NumPy float64 vector of length D (a copy).

    Order: the order of ``model.parameters()`` (layer by layer; W before b),
    each array raveled in row-major order.
    """
    return np.concatenate([to_numpy(p.value).astype(np.float64).ravel() for p in _params(model)])


def set_flat(model, v):
    """Load the vector ``v`` (length D, NumPy or backend array) into ``model``'s parameters.

    The inverse of :func:`get_flat`; values are cast to each parameter's dtype
    and moved to the active backend.  ``v`` itself is not modified.
    """
    ps = _params(model)
    D = param_count(model)
    v = to_numpy(v) if not isinstance(v, np.ndarray) else v
    if not isinstance(v, np.ndarray) or v.ndim != 1 or v.shape[0] != D:
        raise ValueError(f"v: expected a vector of length {D} (the model's parameter count), "
                         f"got {describe(v)}")
    if v.dtype.kind != "f":
        raise TypeError(f"v: expected a floating-point vector, got dtype {v.dtype}")
    if not np.isfinite(v).all():
        raise ValueError(f"v: expected finite values, got {int((~np.isfinite(v)).sum())} NaN/inf")
    off = 0
    for p in ps:
        n = int(np.prod(p.shape))
        old = p.value
        p.layer.params[p.name] = asarray(v[off:off + n].reshape(p.shape).astype(old.dtype))
        off += n
    return model


# ---------------------------------------------------------------------------------------
# batched population evaluation
# ---------------------------------------------------------------------------------------
_ACTS = {ReLU: F.relu_forward, Sigmoid: F.sigmoid_forward, Tanh: F.tanh_forward}


def _stack_plan(model):
    """A list of ops that evaluates the whole population at once, or None when
    ``model`` holds layers the batched path does not know (then members are
    evaluated one by one)."""
    layers = model.layers if isinstance(model, Sequential) else [model]
    offsets, off = {}, 0
    for p in model.parameters():
        offsets[(id(p.layer), p.name)] = off
        off += int(np.prod(p.shape))
    plan = []
    for l in layers:
        t = type(l)
        if t is Dense:
            i, o = l.in_features, l.out_features
            ob = offsets[(id(l), "b")] if l.use_bias else None
            plan.append(("dense", offsets[(id(l), "W")], i, o, ob))
        elif t in _ACTS:
            plan.append(("act", _ACTS[t]))
        elif t is Identity:
            continue
        elif t is Softmax:
            plan.append(("softmax",))
        else:
            return None
    return plan


def _run_plan(plan, Pd, X):
    """Outputs (pop, N, K) for the population rows Pd (pop, D) on inputs X (N, in)."""
    xp = get_xp()
    pop = Pd.shape[0]
    h = X
    for op in plan:
        if op[0] == "dense":
            _, ow, i, o, ob = op
            W = Pd[:, ow:ow + i * o].reshape(pop, i, o)
            h = xp.matmul(h, W)               # (N, i) or (pop, N, i) @ (pop, i, o) -> (pop, N, o)
            if ob is not None:
                h += Pd[:, ob:ob + o][:, None, :]
        elif op[0] == "act":
            h = op[1](h)[0]
        else:
            h = F.softmax(h, axis=-1)
    if h.ndim == 2:                           # a model without Dense layers
        h = xp.broadcast_to(h, (pop,) + h.shape)
    return h


def _member_losses(loss, Z, y):
    """Loss of each member: Z (pop, N, ...) outputs, y the (checked) targets.
    Same formulas as :mod:`nnbook.losses`, reduced over all axes but the first."""
    xp = get_xp()
    N = Z.shape[1]
    if isinstance(loss, SoftmaxCrossEntropy):
        logp = F.log_softmax(Z, axis=-1)
        if y.ndim == 1:
            return -logp[:, xp.arange(N), y].sum(axis=1) / N
        return -(y * logp).sum(axis=(1, 2)) / N
    axes = tuple(range(1, Z.ndim))
    if isinstance(loss, BinaryCrossEntropy):
        return (xp.maximum(Z, 0) - Z * y + xp.log1p(xp.exp(-xp.abs(Z)))).mean(axis=axes)
    if isinstance(loss, MSE):
        d = Z - y
        return (d * d).mean(axis=axes)
    return None


def _check_population(P, D, name="P"):
    if not isinstance(P, np.ndarray):
        P = to_numpy(P) if hasattr(P, "shape") else P
    if not isinstance(P, np.ndarray):
        raise TypeError(f"{name}: expected an array of shape (popsize, {D}), got {describe(P)}")
    if P.ndim == 1:
        P = P[None, :]
    if P.ndim != 2 or P.shape[1] != D:
        raise ValueError(f"{name}: expected shape (popsize, {D}) (one parameter vector per row), "
                         f"got {describe(P)}")
    if P.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one row, got {describe(P)}")
    if P.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point population, got dtype {P.dtype}")
    return P


def _chunk_rows(pop, N, plan, max_elems):
    width = max([op[3] for op in plan if op[0] == "dense"] + [1])
    return max(1, min(pop, int(max_elems // max(1, N * width))))


# ---------------------------------------------------------------------------------------
# member-by-member evaluation of other networks (convolutions, pooling, BatchNorm)
# ---------------------------------------------------------------------------------------
_BN = (BatchNorm1d, BatchNorm2d)
_PER_EXAMPLE = (Conv2D, MaxPool2D, AvgPool2D, Flatten, Dense, ReLU, Sigmoid, Tanh, Identity,
                Softmax)
_CHUNKABLE_LOSSES = (SoftmaxCrossEntropy, BinaryCrossEntropy, MSE)


def _chunkable(model):
    """True when ``model`` is a Sequential whose layers :class:`_Chunked` knows
    (exact types: a subclass may compute something else)."""
    return isinstance(model, Sequential) and all(
        type(l) in _PER_EXAMPLE or type(l) in _BN for l in model.layers)


def _replica(layer):
    """A shallow copy of ``layer`` that shares its parameters but has its own
    caches, gradients and work buffers (one per chunk of the data)."""
    r = copy.copy(layer)
    r.grads, r._bufs, r._fresh, r._reuse = {}, {}, True, False
    if hasattr(r, "_plan"):
        r._plan = None                 # a convolution's lowering buffers are per geometry
    r.zero_grad()
    return r


class _Chunked:
    """A Sequential run *layer by layer* over chunks of the data.

    Every layer but batch normalisation acts on each example on its own, so it
    runs chunk by chunk (small arrays: cache-friendly, bounded work buffers).
    A BatchNorm layer in training mode normalises with the mean and (biased)
    variance of the *whole* data, gathered over all chunks — exactly what one
    forward pass of the whole data in training mode computes, without updating
    the running statistics.  In evaluation mode BatchNorm uses its running
    statistics and acts per example.  ``keep=True`` keeps one replica of each
    layer per chunk, with its caches, for :meth:`backward`.
    """

    def __init__(self, model, n, chunk_size=1000, keep=False, batch_stats=None):
        self.layers = model.layers
        self.bounds = [(a, min(a + chunk_size, n)) for a in range(0, n, chunk_size)]
        self.keep = keep
        self.batch_stats = batch_stats      # None: each BatchNorm's own mode
        self.states = []

    def forward(self, X):
        xp = get_xp()
        hs = [X[a:b] for a, b in self.bounds]
        self.states = []
        for l in self.layers:
            if type(l) in _BN and (l.training if self.batch_stats is None else self.batch_stats):
                m, mean, var = _bn_statistics(hs)
                dt = hs[0].dtype
                mu = l._shape(mean.astype(dt))
                inv = (1.0 / xp.sqrt(var + l.eps)).astype(dt)
                g, b = l._shape(l.params["gamma"]), l._shape(l.params["beta"])
                if self.keep:
                    xhats = [(h - mu) * l._shape(inv) for h in hs]
                    hs = [xh * g + b for xh in xhats]
                else:                         # one affine map: h * scale + shift
                    xhats = None
                    scale = l._shape(l.params["gamma"] * inv)
                    shift = b - mu * scale
                    hs = [_affine(h, scale, shift) for h in hs]
                self.states.append(("bn", m, mean, var, inv, xhats))
            else:
                reps = [_replica(l) for _ in hs] if self.keep else [_replica(l)] * len(hs)
                hs = [r._forward(h) for r, h in zip(reps, hs)]
                self.states.append(("layer", reps if self.keep else None))
        return hs

    def backward(self, douts):
        """Gradient (NumPy float64, in :func:`get_flat`'s order) from dE/d(output) per chunk."""
        parts = []
        for i in range(len(self.layers) - 1, -1, -1):
            l, st = self.layers[i], self.states[i]
            need_dx = i > 0
            if st[0] == "bn":
                _, m, _, _, inv, xhats = st
                dbeta = sum(d.sum(axis=l._axes) for d in douts)
                dgamma = sum((d * xh).sum(axis=l._axes) for d, xh in zip(douts, xhats))
                grads = {"gamma": dgamma, "beta": dbeta}
                if need_dx:
                    gi = l._shape(l.params["gamma"] * inv)
                    db_m, dg_m = l._shape(dbeta / m), l._shape(dgamma / m)
                    douts = [gi * (d - db_m - xh * dg_m) for d, xh in zip(douts, xhats)]
            else:
                reps = st[1]
                douts = [r._backward(d, need_dx=need_dx) for r, d in zip(reps, douts)]
                grads = {k: sum(r.grads[k] for r in reps) for k in l.params}
            parts.append([to_numpy(grads[k]).astype(np.float64).ravel() for k in l.params])
        return np.concatenate([a for layer_parts in reversed(parts) for a in layer_parts])


def _channel_rows(h):
    """h (N, C, ...) as a C-contiguous (A, C, B) array in its own memory order
    (a view when h's memory allows, e.g. a fast convolution's (N, H, C, W)
    output; a copy otherwise), so per-channel sums run over contiguous rows."""
    xp = get_xp()
    order = sorted(range(h.ndim), key=lambda i: -h.strides[i])
    v = h.transpose(order)
    if not v.flags.c_contiguous:
        v, order = xp.ascontiguousarray(h), list(range(h.ndim))
    k = order.index(1)
    return v.reshape(int(np.prod(v.shape[:k])), h.shape[1], -1)


def _bn_statistics(hs):
    """(count, mean, biased variance) per channel over the chunks hs, float64 sums
    (two passes: the variance from the centred values)."""
    xp = get_xp()
    rows = [_channel_rows(h) for h in hs]
    m = sum(a.shape[0] * a.shape[2] for a in rows)
    mean = sum((a @ xp.ones(a.shape[2], dtype=a.dtype)).sum(axis=0, dtype=np.float64)
               for a in rows) / m
    mu = mean.astype(hs[0].dtype)[None, :, None]
    var = 0.0
    for a in rows:
        d = a - mu
        var = var + xp.einsum("acb,acb->ac", d, d).sum(axis=0, dtype=np.float64)
    return m, mean, var / m


def _affine(h, scale, shift):
    out = h * scale
    out += shift
    return out


def _chunk_loss(loss, outs, bounds, y, n, backward=False):
    """The mean loss over all chunks (and dE/d(output) per chunk with ``backward``)."""
    val, douts = 0.0, []
    for (a, b), o in zip(bounds, outs):
        val += loss._forward(o, y[a:b]) * ((b - a) / n)
        if backward:
            douts.append(loss._backward((b - a) / n))
    return val, douts


def calibrate_batchnorm(model, X, chunk_size=1000):
    """Set the running statistics of every BatchNorm layer of ``model`` to the
    mean and (biased) variance of its input over the whole of X.

    Afterwards the model in evaluation mode computes exactly what it computes
    in training mode on the whole of X at once, the loss a metaheuristic
    minimises (:func:`population_loss` of a model in training mode).  Use it
    before predicting with a network whose weights were *set* (a population
    member) rather than trained with mini-batches, whose running statistics
    are stale.  Returns ``model``; the weights and the mode are untouched.
    """
    check_array("X", X)
    if not _chunkable(model):
        raise TypeError(f"model: expected a Sequential of layers nnbook.metaheuristics knows "
                        f"(Dense, Conv2D, pooling, Flatten, BatchNorm, activations), got {model!r}")
    model._check_input(X)
    eng = _Chunked(model, X.shape[0], chunk_size, batch_stats=True)
    eng.forward(X)
    for l, st in zip(model.layers, eng.states):
        if st[0] == "bn":
            dt = l.buffers["running_mean"].dtype
            l.buffers["running_mean"] = asarray(to_numpy(st[2]).astype(dt))
            l.buffers["running_var"] = asarray(to_numpy(st[3]).astype(dt))
    return model


def _probe(model, x):
    """model.forward(x) in evaluation mode (BatchNorm statistics untouched, and
    a single example allowed); every layer's mode is restored afterwards."""
    layers = model.layers if isinstance(model, Sequential) else [model]
    modes = [l.training for l in layers]
    top = model.training
    model.eval()
    try:
        return model.forward(x)
    finally:
        for l, mode in zip(layers, modes):
            l.train(mode)
        model.training = top


def _member_by_member(model, P, fn):
    """fn() for each row of P loaded into ``model`` (weights restored after);
    rows with NaN/inf give None."""
    saved = get_flat(model)
    out = []
    try:
        for row in P:
            if not np.isfinite(row).all():
                out.append(None)
                continue
            set_flat(model, row)
            out.append(fn())
    finally:
        set_flat(model, saved)
    return out


def population_forward(model, P, X, max_elems=2 ** 25, chunk_size=1000):
    """Outputs of every member of the population P (pop, D) on X (N, ...): (pop, N, K).

    Batched for Sequential models of Dense and activation layers; other models
    are evaluated member by member (their weights are restored afterwards):
    Sequentials of convolution, pooling, Flatten, Dense, BatchNorm and
    activation layers layer by layer over chunks of ``chunk_size`` examples
    (:class:`_Chunked`; a BatchNorm layer in training mode normalises with the
    statistics of the whole of X, as ``model.forward(X)`` does, but leaves its
    running statistics alone), any other model with ``model.forward(X)``.
    ``max_elems`` bounds the size of one intermediate (pop_chunk * N * width)
    of the batched path.  A row with NaN/inf gives NaN outputs.
    """
    xp = get_xp()
    D = param_count(model)
    P = _check_population(P, D)
    check_array("X", X)
    plan = _stack_plan(model)
    dtype = model.parameters()[0].value.dtype
    if plan is None:
        model._check_input(X)
        eng = _Chunked(model, X.shape[0], chunk_size) if _chunkable(model) else None

        def fn():
            return xp.concatenate(eng.forward(X)) if eng is not None else model.forward(X)

        outs = _member_by_member(model, P, fn)
        shape = (X.shape[0],) + tuple(_probe(model, X[:1]).shape[1:])
        return xp.stack([o if o is not None else xp.full(shape, xp.nan, dtype=dtype)
                         for o in outs])
    model._check_input(X)
    step = _chunk_rows(P.shape[0], X.shape[0], plan, max_elems)
    outs = [_run_plan(plan, asarray(P[i:i + step].astype(dtype)), X)
            for i in range(0, P.shape[0], step)]
    return outs[0] if len(outs) == 1 else xp.concatenate(outs)


def population_loss(model, loss, P, X, y, max_elems=2 ** 25, chunk_size=1000):
    """Loss of every member of P (pop, D) on the batch (X, y): a NumPy float64 (pop,).

    One batched pass per chunk of the population for an MLP (see
    :func:`population_forward`), member by member otherwise (convolutional
    networks: layer by layer over chunks of ``chunk_size`` examples); equal,
    up to rounding, to setting each row into the model with :func:`set_flat`
    and calling ``loss.forward(model.forward(X), y)`` — for a model with
    BatchNorm in training mode, one forward pass of the whole of X, so each
    member is normalised with the statistics of X (its running statistics are
    not changed).  NaN losses (a diverged member) and rows with NaN/inf are
    returned as +inf.
    """
    if not isinstance(loss, Loss):
        raise TypeError(f"loss: expected an nnbook loss, got {type(loss).__name__}")
    D = param_count(model)
    P = _check_population(P, D)
    check_array("X", X)
    plan = _stack_plan(model)
    out1 = _probe(model, X[:1])
    full = get_xp().zeros((X.shape[0],) + tuple(out1.shape[1:]), dtype=out1.dtype)
    y = loss.check(full, y)
    if plan is None or not isinstance(loss, _CHUNKABLE_LOSSES):
        eng = (_Chunked(model, X.shape[0], chunk_size)
               if plan is None and _chunkable(model) and isinstance(loss, _CHUNKABLE_LOSSES)
               else None)

        def fn():
            if eng is not None:
                return _chunk_loss(loss, eng.forward(X), eng.bounds, y, X.shape[0])[0]
            return loss.forward(model.forward(X), y)

        vals = np.asarray([np.inf if v is None else v for v in _member_by_member(model, P, fn)],
                          dtype=np.float64)
    else:
        dtype = model.parameters()[0].value.dtype
        step = _chunk_rows(P.shape[0], X.shape[0], plan, max_elems)
        vals = np.concatenate([
            to_numpy(_member_losses(loss, _run_plan(plan, asarray(P[i:i + step].astype(dtype)), X),
                                    y)).astype(np.float64)
            for i in range(0, P.shape[0], step)])
    vals[np.isnan(vals)] = np.inf
    return vals


# ---------------------------------------------------------------------------------------
# problems: batched objectives with optional gradients
# ---------------------------------------------------------------------------------------
def make_optimizer(name, params, lr=None):
    """An nnbook optimizer by name: ``"sgd"``, ``"nag"`` (SGD, momentum 0.9,
    Nesterov), ``"rmsprop"``, ``"adam"``; ``lr=None`` takes PyTorch's default
    (0.01 for NAG/RMSprop/SGD, 0.001 for Adam)."""
    from .optim import SGD, Adam, RMSprop  # noqa: PLC0415
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
        from .train import _check_targets, _prepare  # noqa: PLC0415
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
            val = self.loss._forward(m._forward(self.X), self.y)
            m._backward(self.loss._backward(), need_dx=False)
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
        for _ in range(check_int("epochs", epochs, minimum=1)):
            order = rng.permutation(n)
            for i in range(0, n, batch_size):
                idx = order[i:i + batch_size]
                if xp is not np:
                    idx = xp.asarray(idx)
                out = m._forward(X[idx])
                loss._forward(out, y[idx])
                m._backward(loss._backward(), need_dx=False)
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


# ---------------------------------------------------------------------------------------
# DE operators (pure functions: the book's formulas)
# ---------------------------------------------------------------------------------------
def de_rand_1(P, r0, r1, r2, F):
    """Mutant vectors v_i = x_{r0} + F (x_{r1} - x_{r2}) (rows of P; F scalar or (pop,))."""
    F = np.asarray(F, dtype=np.float64).reshape(-1, 1) if np.ndim(F) else float(F)
    return P[r0] + F * (P[r1] - P[r2])


def current_to_pbest_1(P, pbest, r1, xr2, F):
    """v_i = x_i + F_i (x_pbest - x_i) + F_i (x_r1 - x~_r2); xr2 already gathered
    (from the population or the archive)."""
    F = np.asarray(F, dtype=np.float64).reshape(-1, 1) if np.ndim(F) else float(F)
    return P + F * (P[pbest] - P) + F * (P[r1] - xr2)


def binomial_crossover(X, V, CR, rand, jrand):
    """u_ij = v_ij if rand_ij < CR_i or j == jrand_i else x_ij."""
    CR = np.asarray(CR, dtype=np.float64).reshape(-1, 1) if np.ndim(CR) else float(CR)
    mask = rand < CR
    mask[np.arange(X.shape[0]), jrand] = True
    return np.where(mask, V, X)


def bounce_back(V, X, lower, upper, rand):
    """Bounce-back repair: a coordinate below ``lower`` becomes
    lower + rand (x - lower), above ``upper`` upper - rand (upper - x), where x is
    the parent's coordinate (so the point lands between the bound and the parent)."""
    lo = np.broadcast_to(lower, V.shape)
    hi = np.broadcast_to(upper, V.shape)
    out = V.copy()
    below, above = V < lo, V > hi
    out[below] = (lo + rand * (X - lo))[below]
    out[above] = (hi - rand * (hi - X))[above]
    return out


def midpoint_repair(V, X, lower, upper):
    """SHADE's repair (Tanabe & Fukunaga 2013): (lower + x)/2 or (upper + x)/2."""
    return bounce_back(V, X, lower, upper, 0.5)


# ---------------------------------------------------------------------------------------
# SHADE's parameter adaptation (pure functions)
# ---------------------------------------------------------------------------------------
def weighted_mean(s, w):
    """sum_k w_k s_k / sum_k w_k."""
    s, w = np.asarray(s, dtype=np.float64), np.asarray(w, dtype=np.float64)
    return float((w * s).sum() / w.sum())


def lehmer_mean(s, w):
    """Weighted Lehmer mean sum_k w_k s_k^2 / sum_k w_k s_k (pulls towards large values)."""
    s, w = np.asarray(s, dtype=np.float64), np.asarray(w, dtype=np.float64)
    return float((w * s * s).sum() / (w * s).sum())


def shade_memory_update(M_CR, M_F, k, S_CR, S_F, delta):
    """One SHADE memory update.  Returns new (M_CR, M_F, k) (inputs unchanged).

    If there were successes (S_CR non-empty), with weights
    w_j = delta_j / sum delta (delta_j = |f(u_j) - f(x_j)|, the improvement):
    M_CR[k] = sum w_j S_CR_j (weighted arithmetic mean),
    M_F[k] = sum w_j S_F_j^2 / sum w_j S_F_j (weighted Lehmer mean), k -> (k+1) mod H.
    Otherwise nothing changes.
    """
    M_CR, M_F = np.array(M_CR, dtype=np.float64), np.array(M_F, dtype=np.float64)
    S_CR, S_F, delta = (np.asarray(a, dtype=np.float64) for a in (S_CR, S_F, delta))
    if S_CR.size == 0:
        return M_CR, M_F, int(k)
    if np.isinf(delta).any():          # a parent with an infinite (diverged) loss
        w = np.isinf(delta) / np.isinf(delta).sum()
    elif delta.sum() > 0:
        w = delta / delta.sum()
    else:
        w = np.full(delta.size, 1.0 / delta.size)
    M_CR[k] = weighted_mean(S_CR, w)
    M_F[k] = lehmer_mean(S_F, w)
    return M_CR, M_F, (int(k) + 1) % M_CR.size


def sample_cr_f(M_CR, M_F, rng, n):
    """SHADE's per-individual parameters: r_i ~ U{0..H-1};
    CR_i ~ N(M_CR[r_i], 0.1) clipped to [0, 1]; F_i ~ Cauchy(M_F[r_i], 0.1),
    redrawn while <= 0, truncated to 1.  Returns (CR, F, r)."""
    H = len(M_CR)
    r = rng.integers(H, size=n)
    CR = np.clip(rng.normal(M_CR[r], 0.1), 0.0, 1.0)
    F = M_F[r] + 0.1 * np.tan(np.pi * (rng.random(n) - 0.5))
    bad = F <= 0
    while bad.any():
        F[bad] = M_F[r[bad]] + 0.1 * np.tan(np.pi * (rng.random(int(bad.sum())) - 0.5))
        bad = F <= 0
    return CR, np.minimum(F, 1.0), r


# ---------------------------------------------------------------------------------------
# common machinery
# ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class OptimizeResult:
    """What an algorithm returns: the best point ``x`` and its value ``fun``,
    the evaluations used ``nfev``, iterations ``nit`` (generations), the
    best-so-far value after each generation/local search (``history``) with
    the evaluations used at that moment (``history_nfev``), and ``info``."""

    x: np.ndarray
    fun: float
    nfev: int
    nit: int
    history: list
    history_nfev: list
    algorithm: str
    seconds: float
    info: dict = dataclasses.field(default_factory=dict)

    def __repr__(self):
        return (f"OptimizeResult({self.algorithm}: fun={self.fun:.6g}, nfev={self.nfev}, "
                f"nit={self.nit}, {self.seconds:.2f} s)")


def _rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed: expected a non-negative int, a numpy Generator or None, "
                        f"got {seed!r}")
    return np.random.default_rng(int(seed))


def _objective(f, dim):
    """(batched objective returning float64 with NaN -> inf, D)."""
    if not callable(f):
        raise TypeError(f"f: expected a function of a (popsize, D) array (or a NetProblem), "
                        f"got {type(f).__name__}")
    pd = getattr(f, "dim", None)
    if dim is None:
        if pd is None:
            raise ValueError("dim: give the dimension D of the search space (f has no .dim)")
        dim = pd
    dim = check_int("dim", dim, minimum=1)
    if pd is not None and pd != dim:
        raise ValueError(f"dim: f is a problem of dimension {pd}, got dim={dim}")

    def fun(P):
        v = np.asarray(f(P), dtype=np.float64).reshape(-1)
        if v.shape[0] != P.shape[0]:
            raise ValueError(f"f: expected {P.shape[0]} values for a ({P.shape[0]}, {dim}) "
                             f"population, got shape {v.shape}")
        v = v.copy()
        v[np.isnan(v)] = np.inf
        return v
    return fun, dim


def _bounds(bounds, dim):
    if bounds is None:
        return None, None
    try:
        lo, hi = bounds
    except (TypeError, ValueError):
        raise ValueError(f"bounds: expected (lower, upper) (scalars or length-{dim} arrays), "
                         f"got {bounds!r}") from None
    lo = np.broadcast_to(np.asarray(lo, dtype=np.float64), (dim,)).copy()
    hi = np.broadcast_to(np.asarray(hi, dtype=np.float64), (dim,)).copy()
    if not (np.isfinite(lo).all() and np.isfinite(hi).all() and (lo < hi).all()):
        raise ValueError(f"bounds: expected finite lower < upper, got {bounds!r}")
    return lo, hi


def _init_population(init_pop, popsize, dim, lo, hi, rng, f):
    if init_pop is not None:
        P = _check_population(np.asarray(init_pop, dtype=np.float64), dim, "init_pop").copy()
        if P.shape[0] < 4:
            raise ValueError(f"init_pop: expected at least 4 rows, got {describe(P)}")
        if not np.isfinite(P).all():
            raise ValueError("init_pop: expected finite values")
        return P
    if lo is not None:
        return lo + rng.random((popsize, dim)) * (hi - lo)
    sampler = getattr(f, "init_population", None)
    if sampler is not None:
        return np.asarray(sampler(popsize, rng), dtype=np.float64)
    raise ValueError("bounds: give bounds=(lower, upper) or an initial population init_pop "
                     "(or an objective with .init_population)")


def _check_budget(max_evals, popsize):
    max_evals = check_int("max_evals", max_evals, minimum=1)
    if max_evals < popsize:
        raise ValueError(f"max_evals: expected at least popsize={popsize} evaluations "
                         f"(one per initial individual), got {max_evals}")
    return max_evals


def _distinct_from(rng, n_choices, exclude):
    """For each row i, an index in [0, n_choices) different from every exclude[k][i]."""
    n = exclude[0].shape[0]
    r = rng.integers(n_choices, size=n)
    bad = np.zeros(n, bool)
    for e in exclude:
        bad |= r == e
    while bad.any():
        r[bad] = rng.integers(n_choices, size=int(bad.sum()))
        bad[:] = False
        for e in exclude:
            bad |= r == e
    return r


class _Tracker:
    """Budget, history, progress bar and callback shared by the algorithms."""

    def __init__(self, max_evals, progress, callback, name):
        self.max_evals, self.nfev = max_evals, 0
        self.best_f, self.best_x = math.inf, None
        self.history, self.history_nfev = [], []
        self.callback = callback
        self.stop = False
        self.t0 = time.perf_counter()
        self.bar = None
        if progress:
            from tqdm.auto import tqdm  # noqa: PLC0415
            self.bar = tqdm(total=max_evals, unit="FE", desc=name, leave=True)

    @property
    def left(self):
        return self.max_evals - self.nfev

    def spend(self, n):
        self.nfev += int(n)
        if self.bar is not None:
            self.bar.update(int(n))

    def offer(self, x, fx):
        if fx < self.best_f:
            self.best_f, self.best_x = float(fx), np.array(x, dtype=np.float64)

    def record(self):
        self.history.append(self.best_f)
        self.history_nfev.append(self.nfev)
        if self.bar is not None:
            self.bar.set_postfix(best=f"{self.best_f:.4g}")
        if self.callback is not None and self.callback(self.nfev, self.best_x, self.best_f):
            self.stop = True

    def result(self, name, nit, **info):
        if self.bar is not None:
            self.bar.close()
        return OptimizeResult(self.best_x, self.best_f, self.nfev, nit, self.history,
                              self.history_nfev, name, time.perf_counter() - self.t0, info)


# ---------------------------------------------------------------------------------------
# differential evolution
# ---------------------------------------------------------------------------------------
def de(f, dim=None, *, max_evals, bounds=None, popsize=50, F=0.5, CR=0.9,
       strategy="rand/1/bin", p=0.1, archive=True, bound_handling="bounce-back",
       init_pop=None, seed=None, progress=False, callback=None):
    """Differential evolution (Storn & Price 1997) with fixed F and CR.

    ``strategy="rand/1/bin"``: v_i = x_r0 + F (x_r1 - x_r2), r0, r1, r2 distinct
    and different from i.  ``"current-to-pbest/1/bin"`` (JADE): v_i = x_i +
    F (x_pbest - x_i) + F (x_r1 - x~_r2), x_pbest one of the best ceil(p NP),
    x~_r2 drawn from the population united with an ``archive`` of replaced
    parents (size NP).  Binomial crossover with rate CR, greedy one-to-one
    selection (ties go to the trial).  ``bound_handling``: "bounce-back",
    "midpoint" or "clip" (with ``bounds``).  ``callback(nfev, x_best, f_best)``
    after each generation; return True to stop.
    """
    fun, dim = _objective(f, dim)
    rng = _rng(seed)
    popsize = check_int("popsize", popsize, minimum=4)
    max_evals = _check_budget(max_evals, popsize if init_pop is None else len(init_pop))
    F = check_positive("F", F)
    CR = check_positive("CR", CR, allow_zero=True)
    if CR > 1:
        raise ValueError(f"CR: expected a crossover rate in [0, 1], got {CR}")
    check_choice("strategy", strategy, ("rand/1/bin", "current-to-pbest/1/bin"))
    check_choice("bound_handling", bound_handling, ("bounce-back", "midpoint", "clip"))
    p = check_positive("p", p)
    lo, hi = _bounds(bounds, dim)
    P = _init_population(init_pop, popsize, dim, lo, hi, rng, f)
    NP = P.shape[0]
    tr = _Tracker(max_evals, progress, callback, "DE")
    fit = fun(P)
    tr.spend(NP)
    i_best = int(np.argmin(fit))
    tr.offer(P[i_best], fit[i_best])
    tr.record()
    A = np.empty((0, dim))
    idx = np.arange(NP)
    nit = 0
    while tr.left > 0 and not tr.stop:
        if strategy == "rand/1/bin":
            r0 = _distinct_from(rng, NP, [idx])
            r1 = _distinct_from(rng, NP, [idx, r0])
            r2 = _distinct_from(rng, NP, [idx, r0, r1])
            V = de_rand_1(P, r0, r1, r2, F)
        else:
            top = np.argsort(fit, kind="stable")[:max(1, int(math.ceil(p * NP)))]
            pbest = top[rng.integers(len(top), size=NP)]
            r1 = _distinct_from(rng, NP, [idx])
            PA = np.vstack([P, A]) if archive and len(A) else P
            r2 = _distinct_from(rng, PA.shape[0], [idx, r1])
            V = current_to_pbest_1(P, pbest, r1, PA[r2], F)
        U = binomial_crossover(P, V, CR, rng.random((NP, dim)), rng.integers(dim, size=NP))
        U = _repair(U, P, lo, hi, bound_handling, rng)
        m = min(NP, tr.left)
        fu = np.full(NP, np.inf)
        fu[:m] = fun(U[:m])
        tr.spend(m)
        win = fu <= fit
        if archive and strategy != "rand/1/bin":
            A = _archive_push(A, P[fu < fit], NP, rng)
        P[win], fit[win] = U[win], fu[win]
        i_best = int(np.argmin(fit))
        tr.offer(P[i_best], fit[i_best])
        nit += 1
        tr.record()
    return tr.result(f"DE/{strategy}", nit, population=P, fitness=fit)


def _repair(U, X, lo, hi, how, rng):
    if lo is None:
        return U
    if how == "clip":
        return np.clip(U, lo, hi)
    if how == "midpoint":
        return midpoint_repair(U, X, lo, hi)
    return bounce_back(U, X, lo, hi, rng.random(U.shape))


def _archive_push(A, new, cap, rng):
    A = np.vstack([A, new]) if len(new) else A
    if len(A) > cap:
        keep = rng.choice(len(A), size=cap, replace=False)
        A = A[np.sort(keep)]
    return A


# ---------------------------------------------------------------------------------------
# SHADE
# ---------------------------------------------------------------------------------------
class _Shade:
    """SHADE's state (population, fitness, memories, archive) and one generation."""

    def __init__(self, fun, P, fit, lo, hi, H, rng, p_max, archive_rate, bound_handling):
        self.fun, self.P, self.fit = fun, P, fit
        self.lo, self.hi, self.rng = lo, hi, rng
        self.H, self.p_max, self.archive_rate = H, p_max, archive_rate
        self.bound_handling = bound_handling
        self.reset_memory()

    def reset_memory(self):
        self.M_CR = np.full(self.H, 0.5)
        self.M_F = np.full(self.H, 0.5)
        self.k = 0
        self.A = np.empty((0, self.P.shape[1]))

    def generation(self, budget):
        """One generation evaluating at most ``budget`` trials; returns evaluations used."""
        P, fit, rng = self.P, self.fit, self.rng
        NP, D = P.shape
        CR, Fs, _ = sample_cr_f(self.M_CR, self.M_F, rng, NP)
        p = rng.uniform(2.0 / NP, max(self.p_max, 2.0 / NP), size=NP)
        order = np.argsort(fit, kind="stable")
        ntop = np.maximum(1, np.round(p * NP).astype(int))
        pbest = order[(rng.random(NP) * ntop).astype(int)]
        idx = np.arange(NP)
        r1 = _distinct_from(rng, NP, [idx])
        PA = np.vstack([P, self.A]) if len(self.A) else P
        r2 = _distinct_from(rng, PA.shape[0], [idx, r1])
        V = current_to_pbest_1(P, pbest, r1, PA[r2], Fs)
        U = binomial_crossover(P, V, CR, rng.random((NP, D)), rng.integers(D, size=NP))
        U = _repair(U, P, self.lo, self.hi, self.bound_handling, rng)
        m = min(NP, budget)
        fu = np.full(NP, np.inf)
        fu[:m] = self.fun(U[:m])
        better = fu < fit
        win = fu <= fit
        cap = int(round(self.archive_rate * NP))
        if cap > 0:
            self.A = _archive_push(self.A, P[better], cap, rng)
        self.M_CR, self.M_F, self.k = shade_memory_update(
            self.M_CR, self.M_F, self.k, CR[better], Fs[better], fit[better] - fu[better])
        P[win], fit[win] = U[win], fu[win]
        return m

    def best(self):
        i = int(np.argmin(self.fit))
        return i, self.P[i], float(self.fit[i])


def _shade_args(popsize, H, p_max, archive_rate, bound_handling):
    popsize = check_int("popsize", popsize, minimum=4)
    H = popsize if H is None else check_int("H", H, minimum=1)
    p_max = check_positive("p_max", p_max)
    if p_max > 1:
        raise ValueError(f"p_max: expected a fraction in (0, 1], got {p_max}")
    archive_rate = check_positive("archive_rate", archive_rate, allow_zero=True)
    check_choice("bound_handling", bound_handling, ("midpoint", "bounce-back", "clip"))
    return popsize, H, p_max, archive_rate


def shade(f, dim=None, *, max_evals, bounds=None, popsize=100, H=None, p_max=0.2,
          archive_rate=1.0, bound_handling="midpoint", init_pop=None, seed=None,
          progress=False, callback=None):
    """SHADE: success-history based adaptive DE (Tanabe & Fukunaga 2013).

    Per generation each individual i draws r_i ~ U{1..H}, CR_i ~ N(M_CR[r_i], 0.1)
    (clipped to [0, 1]), F_i ~ Cauchy(M_F[r_i], 0.1) (redrawn if <= 0, cut at 1)
    and p_i ~ U[2/NP, p_max]; mutation current-to-pbest/1 with the external
    archive, binomial crossover, midpoint bounds repair, greedy selection.
    Successful (CR_i, F_i) update one memory slot per generation
    (:func:`shade_memory_update`).  ``H`` defaults to ``popsize``; the archive
    holds ``archive_rate * popsize`` replaced parents.
    """
    fun, dim = _objective(f, dim)
    rng = _rng(seed)
    popsize, H, p_max, archive_rate = _shade_args(popsize, H, p_max, archive_rate,
                                                  bound_handling)
    max_evals = _check_budget(max_evals, popsize if init_pop is None else len(init_pop))
    lo, hi = _bounds(bounds, dim)
    P = _init_population(init_pop, popsize, dim, lo, hi, rng, f)
    tr = _Tracker(max_evals, progress, callback, "SHADE")
    fit = fun(P)
    tr.spend(len(P))
    eng = _Shade(fun, P, fit, lo, hi, H, rng, p_max, archive_rate, bound_handling)
    tr.offer(*eng.best()[1:])
    tr.record()
    nit = 0
    while tr.left > 0 and not tr.stop:
        tr.spend(eng.generation(tr.left))
        tr.offer(*eng.best()[1:])
        nit += 1
        tr.record()
    return tr.result("SHADE", nit, population=eng.P, fitness=eng.fit, M_CR=eng.M_CR,
                     M_F=eng.M_F, archive_size=len(eng.A))


# ---------------------------------------------------------------------------------------
# local searches
# ---------------------------------------------------------------------------------------
class _Budget(Exception):
    pass


class LBFGSB:
    """L-BFGS-B (scipy) as a local search with a hard budget of evaluations.

    Uses ``f.value_and_grad`` (backpropagation for a :class:`NetProblem`) when
    the objective has it, else finite differences (each evaluation counted).
    Returns the best point it evaluated.
    """

    name = "L-BFGS-B"

    def __init__(self, f, bounds=None, use_gradient=True):
        self.f = f
        self.vg = getattr(f, "value_and_grad", None) if use_gradient else None
        if self.vg is not None and getattr(f, "grad", 0) is None:
            self.vg = None                  # a FunctionProblem without a gradient
        self.bounds = bounds

    def reset(self):
        pass

    def __call__(self, x, fx, max_evals, rng):
        from scipy.optimize import minimize  # noqa: PLC0415
        state = {"n": 0, "bx": np.array(x, dtype=np.float64), "bf": float(fx)}

        def count(v, val):
            state["n"] += 1
            if val < state["bf"]:
                state["bf"], state["bx"] = float(val), np.array(v, dtype=np.float64)

        def fg(v):
            if state["n"] >= max_evals:
                raise _Budget
            val, g = self.vg(v)
            count(v, val)
            return (val if math.isfinite(val) else 1e300), g

        def fv(v):
            if state["n"] >= max_evals:
                raise _Budget
            val = float(np.asarray(self.f(np.asarray(v)[None]), dtype=np.float64)[0])
            count(v, val)
            return val if math.isfinite(val) else 1e300

        bnds = None
        if self.bounds is not None:
            lo, hi = _bounds(self.bounds, len(x))
            bnds = list(zip(lo, hi))
        try:
            minimize(fg if self.vg else fv, np.array(x, dtype=np.float64), jac=bool(self.vg),
                     method="L-BFGS-B", bounds=bnds,
                     options={"maxfun": max(1, max_evals), "maxiter": max(1, max_evals)})
        except _Budget:
            pass
        return state["bx"], state["bf"], state["n"]


class GradientDescentLS:
    """Local search by gradient descent: ``epochs`` epochs of an nnbook optimizer
    (``"adam"``, ``"nag"``, ``"rmsprop"``, ``"sgd"``) from the given point, then
    one evaluation of the result.  Costs epochs + 1 FEs.  The optimizer's state
    (momenta, moment estimates) is kept between calls, like a training run that
    is interrupted by evolution, and cleared by :meth:`reset` (at restarts)."""

    def __init__(self, problem, optimizer="adam", lr=None, epochs=1, batch_size=32):
        if not hasattr(problem, "descend"):
            raise TypeError(f"problem: expected a NetProblem or FunctionProblem (with .descend), "
                            f"got {type(problem).__name__}")
        self.problem = problem
        self.optimizer, self.lr = check_choice("optimizer", optimizer,
                                               ("sgd", "nag", "rmsprop", "adam")), lr
        self.epochs = check_int("epochs", epochs, minimum=1)
        self.batch_size = check_int("batch_size", batch_size, minimum=1) if batch_size else None
        self.name = f"GD({optimizer})"
        self.reset()

    def reset(self):
        params = (self.problem.model.parameters() if hasattr(self.problem, "model")
                  else self.problem.parameters())
        self.opt = make_optimizer(self.optimizer, params, self.lr)

    def __call__(self, x, fx, max_evals, rng):
        epochs = min(self.epochs, max(0, max_evals - 1))
        if epochs < 1:
            return np.array(x), float(fx), 0
        nf0 = self.problem.nfev
        v = self.problem.descend(x, self.opt, epochs, self.batch_size, rng)
        f_new = float(np.asarray(self.problem(v[None]), dtype=np.float64)[0])
        self.problem.nfev = nf0        # counted here instead
        if not f_new < fx:
            return np.array(x), float(fx), epochs + 1
        return v, f_new, epochs + 1


class _PoolLast:
    """SHADE-ILS's choice among local searches: each is tried once (random
    order); then the one whose last improvement ratio was highest is used,
    re-deciding when the one in use yields 0 or less than its previous ratio."""

    def __init__(self, n, rng):
        self.n, self.rng = n, rng
        self.reset()

    def reset(self):
        self.first = [int(i) for i in self.rng.permutation(self.n)]
        self.imp = [0.0] * self.n
        self.current = None

    def _best(self):
        if all(v == 0 for v in self.imp):
            return int(self.rng.integers(self.n))
        return int(np.argmax(self.imp))

    def get(self):
        if self.first:
            return self.first.pop()
        if self.current is None:
            self.current = self._best()
        return self.current

    def update(self, i, ratio):
        if ratio < 0:
            return
        prev, self.imp[i] = self.imp[i], ratio
        if self.first:
            return
        if self.current is None or ratio == 0 or ratio < prev:
            self.current = self._best()


def _ratio(before, after):
    if before == 0 or not math.isfinite(before):
        return 0.0 if before == 0 else 1.0
    return (before - after) / abs(before)


# ---------------------------------------------------------------------------------------
# SHADE-ILS and hybrids
# ---------------------------------------------------------------------------------------
def shade_ils(f, dim=None, *, max_evals, bounds=None, popsize=100, H=None, evals_de=None,
              evals_ls=None, threshold=0.05, max_worse=3, local_searches=None, restart=True,
              p_max=0.2, archive_rate=1.0, bound_handling="midpoint", init_pop=None, x_init=None,
              seed=None, progress=False, callback=None, name="SHADE-ILS"):
    """SHADE-ILS (Molina, LaTorre & Herrera 2018): SHADE explores, a local search exploits.

    1. population <- random; current <- LS(initial solution) (the centre of the
       bounds, or ``x_init``, or the best initial individual).
    2. repeat until the budget is spent:
       previous <- f(current);
       inject current into the population; run SHADE for ``evals_de`` FEs;
       current <- best of the population;
       choose a local search (each tried once, then the one with the best
       last improvement ratio); current <- LS(current) for ``evals_ls`` FEs;
       if (previous - f(current)) / previous < ``threshold`` for ``max_worse``
       consecutive iterations and ``restart``: new random population, SHADE
       memories and archive reset, local searches reset, current <- a random
       individual moved by up to 1% of the range.
    3. return the best solution ever seen.

    ``local_searches``: a list of local-search objects (default: [:class:`LBFGSB`]);
    the original paper pairs L-BFGS-B with MTS-LS1, the source thesis keeps
    L-BFGS-B alone.  ``evals_de`` defaults to min(50 D, 25000) and ``evals_ls``
    to min(10 D, 5000), the paper's values.
    """
    fun, dim = _objective(f, dim)
    rng = _rng(seed)
    popsize, H, p_max, archive_rate = _shade_args(popsize, H, p_max, archive_rate,
                                                  bound_handling)
    max_evals = _check_budget(max_evals, popsize if init_pop is None else len(init_pop))
    evals_de = min(50 * dim, 25000) if evals_de is None else check_int("evals_de", evals_de,
                                                                       minimum=1)
    evals_ls = min(10 * dim, 5000) if evals_ls is None else check_int("evals_ls", evals_ls,
                                                                      minimum=1)
    threshold = check_positive("threshold", threshold, allow_zero=True)
    max_worse = check_int("max_worse", max_worse, minimum=1)
    lo, hi = _bounds(bounds, dim)
    if local_searches is None:
        local_searches = [LBFGSB(f, bounds=bounds)]
    local_searches = list(local_searches)
    if not local_searches or not all(callable(ls) for ls in local_searches):
        raise TypeError("local_searches: expected a non-empty list of local-search objects "
                        "(e.g. [LBFGSB(f)])")
    tr = _Tracker(max_evals, progress, callback, name)
    P = _init_population(init_pop, popsize, dim, lo, hi, rng, f)
    fit = fun(P)
    tr.spend(len(P))
    eng = _Shade(fun, P, fit, lo, hi, H, rng, p_max, archive_rate, bound_handling)
    i_best, cx, cf = eng.best()
    cx = cx.copy()
    start = (lo + hi) / 2 if lo is not None else (None if x_init is None
                                                   else np.asarray(x_init, dtype=np.float64))
    if start is not None and tr.left > 0:
        if start.shape != (dim,):
            raise ValueError(f"x_init: expected a vector of length {dim}, got {describe(start)}")
        sf = float(fun(start[None])[0])
        tr.spend(1)
        if sf < cf:
            cx, cf = start.copy(), sf
            P[i_best], fit[i_best] = cx, cf
    tr.offer(cx, cf)
    tr.record()
    pool = _PoolLast(len(local_searches), rng)
    usage = {ls.name: 0 for ls in local_searches}
    # initial local search on the starting solution
    if tr.left > 0:
        j = pool.get()
        nx, nf, used = local_searches[j](cx, cf, min(evals_ls, tr.left), rng)
        tr.spend(used)
        usage[local_searches[j].name] += 1
        pool.update(j, _ratio(cf, nf))
        cx, cf = np.array(nx), float(nf)
        tr.offer(cx, cf)
        tr.record()
    nit, worse, restarts = 0, 0, 0
    while tr.left > 0 and not tr.stop:
        previous = cf
        i_best = int(np.argmin(eng.fit))
        if cf < eng.fit[i_best]:
            eng.P[i_best], eng.fit[i_best] = cx, cf
        spent = 0
        while spent < evals_de and tr.left > 0 and not tr.stop:
            used = eng.generation(min(tr.left, evals_de - spent))
            spent += used
            tr.spend(used)
            nit += 1
            tr.offer(*eng.best()[1:])
            tr.record()
        _, bx, bf = eng.best()
        if bf <= cf:
            cx, cf = bx.copy(), bf
        if tr.left <= 0 or tr.stop:
            break
        j = pool.get()
        nx, nf, used = local_searches[j](cx, cf, min(evals_ls, tr.left), rng)
        tr.spend(used)
        usage[local_searches[j].name] += 1
        pool.update(j, _ratio(cf, nf))
        if nf <= cf:
            cx, cf = np.array(nx), float(nf)
        tr.offer(cx, cf)
        tr.record()
        if _ratio(previous, cf) >= threshold:
            worse = 0
        else:
            worse += 1
        if restart and worse >= max_worse and tr.left > len(eng.P):
            worse = 0
            restarts += 1
            base = eng.P[rng.integers(len(eng.P))]
            span = (hi - lo) if lo is not None else (eng.P.max(axis=0) - eng.P.min(axis=0))
            cx = base + rng.uniform(-0.01, 0.01, dim) * span
            if lo is not None:
                cx = np.clip(cx, lo, hi)
            NP = len(eng.P)
            if lo is not None:
                eng.P = lo + rng.random((NP, dim)) * (hi - lo)
            elif hasattr(f, "init_population"):
                eng.P = np.asarray(f.init_population(NP, rng), dtype=np.float64)
            else:
                eng.P = base + rng.normal(size=(NP, dim)) * eng.P.std(axis=0)
            eng.fit = fun(eng.P)
            cf = float(fun(cx[None])[0])
            tr.spend(NP + 1)
            eng.reset_memory()
            pool.reset()
            for ls in local_searches:
                ls.reset()
            tr.offer(cx, cf)
            tr.record()
    return tr.result(name, nit, restarts=restarts, ls_usage=usage, M_CR=eng.M_CR, M_F=eng.M_F)


def shade_gd(problem, *, max_evals, optimizer="adam", lr=None, epochs_per_ls=1, batch_size=32,
             popsize=20, evals_de=None, init_pop=None, seed=None, progress=False, callback=None,
             **kw):
    """Memetic SHADE with gradient descent: SHADE for ``evals_de`` FEs, then
    ``epochs_per_ls`` epochs of an nnbook optimizer on the best individual, and
    again (SHADE-ILS's loop with this one local search and no restarts)."""
    ls = GradientDescentLS(problem, optimizer, lr, epochs_per_ls, batch_size)
    evals_de = evals_de if evals_de is not None else 10 * popsize
    return shade_ils(problem, max_evals=max_evals, popsize=popsize, evals_de=evals_de,
                     evals_ls=epochs_per_ls + 1, local_searches=[ls], restart=False,
                     init_pop=init_pop, seed=seed, progress=progress, callback=callback,
                     name=f"SHADE+GD({optimizer})", **kw)


def shade_ils_gd(problem, *, max_evals, optimizer="adam", lr=None, epochs_per_ls=1,
                 batch_size=32, popsize=20, evals_de=None, evals_ls=None, init_pop=None,
                 seed=None, progress=False, callback=None, **kw):
    """SHADE-ILS whose pool holds L-BFGS-B *and* gradient descent (in the place
    of the original's MTS-LS1); the improvement-ratio rule picks between them.
    The gradient local search runs ``epochs_per_ls`` epochs whatever ``evals_ls``."""
    gd = GradientDescentLS(problem, optimizer, lr, epochs_per_ls, batch_size)
    evals_de = evals_de if evals_de is not None else 10 * popsize
    return shade_ils(problem, max_evals=max_evals, popsize=popsize, evals_de=evals_de,
                     evals_ls=evals_ls, local_searches=[LBFGSB(problem), gd], restart=True,
                     init_pop=init_pop, seed=seed, progress=progress, callback=callback,
                     name=f"SHADE-ILS+GD({optimizer})", **kw)


# ---------------------------------------------------------------------------------------
# metrics (NumPy, host)
# ---------------------------------------------------------------------------------------
def accuracy(y_true, y_pred):
    y_true, y_pred = np.asarray(to_numpy(y_true)), np.asarray(to_numpy(y_pred))
    return float((y_true == y_pred).mean())


def balanced_accuracy(y_true, y_pred):
    """Mean over the classes present in y_true of the recall of each class."""
    y_true, y_pred = np.asarray(to_numpy(y_true)), np.asarray(to_numpy(y_pred))
    return float(np.mean([(y_pred[y_true == c] == c).mean() for c in np.unique(y_true)]))


def mse(y_true, y_pred):
    d = np.asarray(to_numpy(y_pred), dtype=np.float64) - np.asarray(to_numpy(y_true), np.float64)
    return float((d * d).mean())


def r2_score(y_true, y_pred):
    """1 - SS_res / SS_tot: the fraction of the target's variance explained."""
    yt = np.asarray(to_numpy(y_true), dtype=np.float64).ravel()
    yp = np.asarray(to_numpy(y_pred), dtype=np.float64).ravel()
    return float(1 - ((yt - yp) ** 2).sum() / ((yt - yt.mean()) ** 2).sum())



# ---------------------------------------------------------------------------------------
# the experiment of the source thesis (§6), at a scale that runs on a laptop
# ---------------------------------------------------------------------------------------
MLP_HIDDEN = {1: [64], 2: [64, 64], 5: [64, 128, 256, 128, 64],
              11: [32, 64, 128, 256, 512, 1024, 512, 256, 128, 64, 32]}
"""Hidden-layer widths of the thesis's MLPs (§6.1), by number of hidden layers."""

THESIS_PARAM_COUNTS = {1: 2238, 2: 6462, 5: 85310, 11: 1403838}
"""Parameter counts the thesis reports (FastAI tabular models on the 30 breast-cancer
features: BatchNorm on the inputs and after every bias-free hidden Linear, 2 outputs)."""


def fastai_tabular_param_count(n_in, hidden, n_out):
    """Parameters of a FastAI tabular MLP: BatchNorm1d(n_in), then per hidden
    width h a bias-free Linear and BatchNorm1d(h), then Linear(h_last, n_out)."""
    total, prev = 2 * n_in, n_in
    for h in hidden:
        total += prev * h + 2 * h
        prev = h
    return total + prev * n_out + n_out


def _split(n, rng, fractions=(0.7, 0.1, 0.2)):
    idx = rng.permutation(n)
    a = int(round(fractions[0] * n))
    b = a + int(round(fractions[1] * n))
    return idx[:a], idx[a:b], idx[b:]


def load_dataset(name, seed=42, corr_min=None, corr_max=0.9, z_max=3.0, mnist_train=10000,
                 mnist_test=5000, images=False):
    """A dataset prepared as in the thesis (§6.2), as a dict of float32 arrays.

    ``"breast_cancer"`` (classification, scikit-learn's copy of the Wisconsin
    set) and ``"diabetes"`` (regression, scikit-learn's, standing in for Boston
    housing, which scikit-learn no longer ships): split 70/10/20 with ``seed``;
    on the training part, drop features with |corr(feature, target)| <
    ``corr_min`` (0.1 for breast cancer, 0.05 for diabetes), drop the second of
    every pair with |corr| > ``corr_max``, drop training rows with a |z-score|
    above ``z_max``, and standardise with the training mean and deviation
    (the regression target too).  ``"mnist"``: ``mnist_train`` training images
    from MNIST's training set, ``mnist_test`` from its test set split 50/50
    into validation and test; pixels scaled to [0, 1] and flattened, or kept
    as (N, 1, 28, 28) images with ``images=True`` (for LeNet-5; the same
    examples for a given seed).
    Keys: X_train, y_train, X_val, y_val, X_test, y_test, task ("classification"
    or "regression"), n_out, features (the kept column indices).
    """
    check_choice("name", name, ("breast_cancer", "diabetes", "mnist"))
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    if name == "mnist":
        from . import data  # noqa: PLC0415
        (Xtr, ytr), (Xte, yte) = data.load_mnist()
        i = rng.choice(len(Xtr), size=mnist_train, replace=False)
        j = rng.choice(len(Xte), size=mnist_test, replace=False)
        half = mnist_test // 2
        if images:
            f = lambda X: data.scale(X).astype(np.float32)[:, None]  # noqa: E731
        else:
            f = lambda X: data.scale(data.flatten(X)).astype(np.float32)  # noqa: E731
        return {"X_train": f(Xtr[i]), "y_train": ytr[i].astype(np.int64),
                "X_val": f(Xte[j[:half]]), "y_val": yte[j[:half]].astype(np.int64),
                "X_test": f(Xte[j[half:]]), "y_test": yte[j[half:]].astype(np.int64),
                "task": "classification", "n_out": 10, "features": None}
    from sklearn import datasets  # noqa: PLC0415
    if name == "breast_cancer":
        X, y = datasets.load_breast_cancer(return_X_y=True)
        task, thr = "classification", 0.1 if corr_min is None else corr_min
    else:
        X, y = datasets.load_diabetes(return_X_y=True, scaled=False)
        task, thr = "regression", 0.05 if corr_min is None else corr_min
    tr, va, te = _split(len(X), rng)
    Xtr, ytr = X[tr], y[tr].astype(np.float64)
    c = np.array([abs(np.corrcoef(Xtr[:, k], ytr)[0, 1]) for k in range(X.shape[1])])
    keep = [k for k in range(X.shape[1]) if c[k] >= thr]
    C = np.abs(np.corrcoef(Xtr[:, keep], rowvar=False))
    kept = []
    for a, k in enumerate(keep):
        if all(C[a, keep.index(q)] <= corr_max for q in kept):
            kept.append(k)
    Xtr = Xtr[:, kept]
    mu, sd = Xtr.mean(0), Xtr.std(0)
    inlier = (np.abs((Xtr - mu) / sd) <= z_max).all(axis=1)
    Xtr, ytr = Xtr[inlier], ytr[inlier]
    mu, sd = Xtr.mean(0), Xtr.std(0)
    out = {"task": task, "features": kept}
    std = lambda A: ((A[:, kept] - mu) / sd).astype(np.float32)  # noqa: E731
    out["X_train"] = ((Xtr - mu) / sd).astype(np.float32)
    out["X_val"], out["X_test"] = std(X[va]), std(X[te])
    if task == "classification":
        out["y_train"] = ytr.astype(np.int64)
        out["y_val"], out["y_test"] = y[va].astype(np.int64), y[te].astype(np.int64)
        out["n_out"] = 2
    else:
        ym, ys = ytr.mean(), ytr.std()
        out["y_train"] = ((ytr - ym) / ys).astype(np.float32)[:, None]
        out["y_val"] = ((y[va] - ym) / ys).astype(np.float32)[:, None]
        out["y_test"] = ((y[te] - ym) / ys).astype(np.float32)[:, None]
        out["n_out"] = 1
    return out


def build_mlp(n_in, hidden, n_out, seed):
    """A ReLU MLP with Glorot-uniform weights and zero biases (as the thesis, §6.3)."""
    from .backend import seed as _seed  # noqa: PLC0415
    from .models import mlp  # noqa: PLC0415
    _seed(seed)
    return mlp([n_in] + list(hidden) + [n_out], activation="relu", init="glorot")


LENET5 = "lenet5"
"""Pass as ``hidden`` to :func:`run_gradient` / :func:`run_metaheuristic` for LeNet-5."""


def build_lenet5(seed, batch_norm=True, num_classes=10):
    """LeNet-5 as in the thesis's Table 2 (ReLU, max-pooling, BatchNorm after every
    convolution and hidden dense layer; :func:`nnbook.lenet.LeNet5`) for 28x28
    inputs padded to 32x32 by the first convolution, with Glorot-uniform weights
    (fan_in = in_channels*kh*kw, fan_out = out_channels*kh*kw for a convolution)
    and zero biases, as the thesis initialises its models (§6.3)."""
    from .backend import get_rng  # noqa: PLC0415
    from .backend import seed as _seed  # noqa: PLC0415
    from .lenet import LeNet5  # noqa: PLC0415
    _seed(seed)
    model = LeNet5(batch_norm=batch_norm, num_classes=num_classes)
    rng = get_rng()
    for l in model.layers:
        if isinstance(l, Conv2D):
            k = int(np.prod(l.kernel_size))
            fans = (l.in_channels * k, l.out_channels * k)
        elif isinstance(l, Dense):
            fans = (l.in_features, l.out_features)
        else:
            continue
        W = l.params["W"]
        l.params["W"] = asarray(np.asarray(_init.glorot(W.shape, *fans, rng), dtype=W.dtype))
        l.init = "glorot"
    return model


def build_net(data, hidden, seed):
    """The network for ``data``: LeNet-5 when ``hidden == LENET5`` (image data),
    else a ReLU MLP with the hidden widths ``hidden`` (:func:`build_mlp`)."""
    if isinstance(hidden, str):
        check_choice("hidden", hidden, (LENET5,))
        if data["X_train"].ndim != 4:
            raise ValueError("data: LeNet-5 needs images (N, 1, 28, 28); load them with "
                             "load_dataset('mnist', images=True)")
        return build_lenet5(seed, num_classes=data["n_out"])
    return build_mlp(data["X_train"].shape[1], hidden, data["n_out"], seed)


def _has_batchnorm(model):
    return isinstance(model, Sequential) and any(type(l) in _BN for l in model.layers)


def _predict(model, X):
    """Outputs in evaluation mode (BatchNorm with its running statistics); the
    model's mode is restored afterwards."""
    was = model.training
    model.eval()
    try:
        return model.predict(X)
    finally:
        model.train(was)


def _task_loss(task):
    return SoftmaxCrossEntropy() if task == "classification" else MSE()


def task_metrics(model, data, split="test"):
    """Accuracy and balanced accuracy (classification) or MSE and R² (regression)."""
    X, y = asarray(data[f"X_{split}"]), data[f"y_{split}"]
    out = to_numpy(_predict(model, X))
    if data["task"] == "classification":
        pred = out.argmax(axis=1)
        return {"accuracy": accuracy(y, pred), "balanced_accuracy": balanced_accuracy(y, pred)}
    return {"mse": mse(y, out), "r2": r2_score(y, out)}


def _val_loss(model, loss, data):
    X, y = asarray(data["X_val"]), asarray(data["y_val"])
    return float(loss.forward(_predict(model, X), y))


def run_gradient(data, hidden, optimizer, seed=42, epochs=20, batch_size=32, lr=None,
                 one_cycle=True):
    """Train an MLP (``hidden``: its hidden widths) or LeNet-5 (``hidden=LENET5``)
    with an nnbook optimizer as the thesis does (§6.4): the
    maximum rate from the learning-rate range test (fastai's "valley" point)
    unless ``lr`` is given, the one-cycle policy, ``epochs`` epochs, and the
    weights of the epoch with the lowest validation loss kept (BatchNorm
    layers validate and test with their running statistics).  Returns a dict
    with the per-epoch curves, the test metrics and the time."""
    from .schedules import OneCycleLR, lr_finder  # noqa: PLC0415
    from .backend import seed as _seed  # noqa: PLC0415
    loss = _task_loss(data["task"])
    t0 = time.perf_counter()
    if lr is None:
        _seed(seed + 1)
        res = lr_finder(lambda: build_net(data, hidden, seed), loss,
                        data["X_train"], data["y_train"],
                        optimizer=lambda p, lr: make_optimizer(optimizer, p, lr),
                        start_lr=1e-6, end_lr=10.0, num_iter=100, batch_size=batch_size)
        lr = float(res.valley_lr)
    model = build_net(data, hidden, seed)
    model.train()
    _seed(seed)
    X, y = asarray(data["X_train"]), asarray(data["y_train"])
    opt = make_optimizer(optimizer, model.parameters(), lr)
    n = X.shape[0]
    steps = -(-n // batch_size)
    sched = OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps) if one_cycle else None
    rng = np.random.default_rng(seed)
    xp = get_xp()
    curve_train, curve_val = [], []
    best = (math.inf, None)
    for _ in range(epochs):
        order = rng.permutation(n)
        tot = 0.0
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            if xp is not np:
                idx = xp.asarray(idx)
            out = model._forward(X[idx])
            tot += loss._forward(out, y[idx]) * len(idx)
            model._backward(loss._backward(), need_dx=False)
            opt.step()
            opt.zero_grad()
            if sched is not None:
                sched.step()
        curve_train.append(tot / n)
        vl = _val_loss(model, loss, data)
        curve_val.append(vl)
        if vl < best[0]:
            best = (vl, get_flat(model), _buffers(model))
    if best[1] is not None:
        set_flat(model, best[1])
        _set_buffers(model, best[2])
    return {"method": {"nag": "NAG", "rmsprop": "RMSProp", "adam": "Adam", "sgd": "SGD"}[optimizer],
            "train_loss": curve_train, "val_loss": curve_val, "lr": lr,
            "best_val_loss": best[0], "test": task_metrics(model, data),
            "seconds": time.perf_counter() - t0, "evals": epochs, "params": param_count(model)}


def _buffers(model):
    """Copies of the BatchNorm running statistics (an empty list without BatchNorm)."""
    if not isinstance(model, Sequential):
        return []
    return [{k: v.copy() for k, v in l.buffers.items()} for l in model.layers if type(l) in _BN]


def _set_buffers(model, saved):
    for l, b in zip([l for l in model.layers if type(l) in _BN], saved):
        l.buffers.update(b)


MH_METHODS = ("SHADE", "SHADE-ILS", "SHADE+GD", "SHADE-ILS+GD")


def run_metaheuristic(data, hidden, method, max_evals, seed=42, popsize=20, checkpoints=20,
                      evals_ls=100, gd_optimizer="adam", gd_batch_size=32, progress=False):
    """Train an MLP (``hidden``: its hidden widths) or LeNet-5 (``hidden=LENET5``)
    with SHADE, SHADE-ILS or a hybrid on the full training loss.

    All methods start from the same population for a given seed (row 0: the
    weights gradient descent starts from; rows 1.. drawn with the layers'
    initialisers from ``np.random.default_rng([seed, 1])``, a stream
    independent of the one that built row 0, so all rows are distinct).
    With BatchNorm, the training loss normalises with the statistics of the
    whole training set (:class:`NetProblem`), and a point is validated and tested after
    :func:`calibrate_batchnorm` on the training set, so that evaluation mode
    computes the same function (one extra pass, not counted as an FE).

    As in the thesis (§6.5), the best individual is checked on the validation
    set at ``checkpoints`` evenly spaced moments (the "epochs" of a
    metaheuristic) and the one with the lowest validation loss is tested.
    SHADE-ILS variants alternate SHADE phases and local searches so that the
    hybrids run about ``checkpoints`` gradient epochs in all; L-BFGS-B gets
    ``evals_ls`` FEs per application.
    """
    check_choice("method", method, MH_METHODS)
    loss = _task_loss(data["task"])
    model = build_net(data, hidden, seed)
    prob = NetProblem(model, loss, data["X_train"], data["y_train"])
    # Rows 1.. come from their own stream: build_net seeded nnbook's generator
    # with ``seed`` itself, so default_rng(seed) would redraw row 0's weights
    # (row 1 = row 0 for an MLP).  default_rng([seed, 1]) is independent of it.
    init_pop = prob.init_population(popsize, np.random.default_rng([seed, 1]))
    scratch = build_net(data, hidden, seed)
    bn = _has_batchnorm(scratch)

    def load(x):
        set_flat(scratch, x)
        if bn:
            calibrate_batchnorm(scratch, prob.X)
    marks = list(np.linspace(max_evals / checkpoints, max_evals, checkpoints))
    state = {"best": (math.inf, None), "curve": [], "curve_nfev": []}

    def cb(nfev, x, fx):
        vl = None
        while marks and nfev >= marks[0] - 1e-9:
            marks.pop(0)
            if vl is None:                 # several marks passed at once: one check
                load(x)
                vl = _val_loss(scratch, loss, data)
            state["curve"].append(fx)
            state["curve_nfev"].append(nfev)
            state.setdefault("val_curve", []).append(vl)
            if vl < state["best"][0]:
                state["best"] = (vl, np.array(x))
        return False

    t0 = time.perf_counter()
    evals_de = max(popsize, (max_evals - popsize) // checkpoints - 2)
    kw = dict(max_evals=max_evals, init_pop=init_pop, seed=seed, callback=cb, progress=progress)
    if method == "SHADE":
        res = shade(prob, popsize=popsize, **kw)
    elif method == "SHADE-ILS":
        res = shade_ils(prob, popsize=popsize, evals_de=evals_de, evals_ls=evals_ls, **kw)
    elif method == "SHADE+GD":
        res = shade_gd(prob, popsize=popsize, evals_de=evals_de, optimizer=gd_optimizer,
                       batch_size=gd_batch_size, **kw)
    else:
        res = shade_ils_gd(prob, popsize=popsize, evals_de=evals_de, evals_ls=evals_ls,
                           optimizer=gd_optimizer, batch_size=gd_batch_size, **kw)
    cb(max_evals, res.x, res.fun)
    load(state["best"][1] if state["best"][1] is not None else res.x)
    return {"method": method, "train_loss": state["curve"], "train_nfev": state["curve_nfev"],
            "val_loss": state.get("val_curve", []), "best_val_loss": state["best"][0],
            "final_train_loss": res.fun, "test": task_metrics(scratch, data),
            "seconds": time.perf_counter() - t0, "evals": res.nfev, "params": prob.dim,
            "popsize": popsize, "info": {k: v for k, v in res.info.items()
                                         if k in ("restarts", "ls_usage")}}
