"""A network's parameters as one point of R^D, and the loss of a whole
population of such points.

:func:`get_flat` / :func:`set_flat` map a model's parameters to a float64
vector and back.  :func:`population_loss` / :func:`population_forward`
evaluate every row of a population matrix P (popsize, D): in one batched pass
per chunk of the population for an MLP (:func:`_stack_plan`, :func:`_run_plan`),
member by member otherwise, a Sequential of convolution, pooling, BatchNorm
and dense layers layer by layer over chunks of the data (``_Chunked``;
BatchNorm in training mode normalises with the statistics of the whole data,
see :func:`calibrate_batchnorm`).
"""
from __future__ import annotations

import copy

import numpy as np

from .. import functional as F
from .._checks import check_array, describe
from ..backend import asarray, get_xp, to_numpy
from ..conv import AvgPool2D, BatchNorm1d, BatchNorm2d, Conv2D, Flatten, MaxPool2D
from ..layers import Dense, Identity, Layer, ReLU, Sigmoid, Softmax, Tanh
from ..losses import MSE, BinaryCrossEntropy, Loss, SoftmaxCrossEntropy
from ..models import Sequential


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
    """True when ``model`` is a Sequential whose layers ``_Chunked`` knows
    (exact types: a subclass may compute something else)."""
    return isinstance(model, Sequential) and all(
        type(l) in _PER_EXAMPLE or type(l) in _BN for l in model.layers)


def _replica(layer):
    """A shallow copy of ``layer`` that shares its parameters but has its own
    caches, gradients (zero) and work buffers (one per chunk of the data)."""
    r = copy.copy(layer)
    r.grads = {}
    # work buffers some layers keep for themselves (a convolution's lowering, per
    # geometry): never shared between replicas
    for name, value in (("_bufs", {}), ("_fresh", True), ("_reuse", False), ("_plan", None)):
        if hasattr(r, name):
            setattr(r, name, value)
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
                hs = [r.forward(h) for r, h in zip(reps, hs)]
                self.states.append(("layer", reps if self.keep else None))
        return hs

    def backward(self, douts):
        """Gradient (NumPy float64, in :func:`get_flat`'s order) from dE/d(output) per chunk."""
        parts = []
        for i in range(len(self.layers) - 1, -1, -1):
            l, st = self.layers[i], self.states[i]
            if st[0] == "bn":
                _, m, _, _, inv, xhats = st
                dbeta = sum(d.sum(axis=l._axes) for d in douts)
                dgamma = sum((d * xh).sum(axis=l._axes) for d, xh in zip(douts, xhats))
                grads = {"gamma": dgamma, "beta": dbeta}
                if i > 0:
                    gi = l._shape(l.params["gamma"] * inv)
                    db_m, dg_m = l._shape(dbeta / m), l._shape(dgamma / m)
                    douts = [gi * (d - db_m - xh * dg_m) for d, xh in zip(douts, xhats)]
            else:
                reps = st[1]
                douts = [r.backward(d) for r, d in zip(reps, douts)]  # grads add to 0
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
    _check_input(model, X)
    eng = _Chunked(model, X.shape[0], chunk_size, batch_stats=True)
    eng.forward(X)
    for l, st in zip(model.layers, eng.states):
        if st[0] == "bn":
            dt = l.buffers["running_mean"].dtype
            l.buffers["running_mean"] = asarray(to_numpy(st[2]).astype(dt))
            l.buffers["running_var"] = asarray(to_numpy(st[3]).astype(dt))
    return model


def _check_input(model, X):
    """``model.check_input(X)``: the layer's own input checks (shape, dtype)."""
    check = getattr(model, "check_input", None)
    if check is None:                  # layers from before check_input was public
        check = model._check_input
    check(X)


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
    (``_Chunked``; a BatchNorm layer in training mode normalises with the
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
        _check_input(model, X)
        eng = _Chunked(model, X.shape[0], chunk_size) if _chunkable(model) else None

        def fn():
            return xp.concatenate(eng.forward(X)) if eng is not None else model.forward(X)

        outs = _member_by_member(model, P, fn)
        shape = (X.shape[0],) + tuple(_probe(model, X[:1]).shape[1:])
        return xp.stack([o if o is not None else xp.full(shape, xp.nan, dtype=dtype)
                         for o in outs])
    _check_input(model, X)
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
