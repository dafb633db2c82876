"""Synchronous data-parallel training: p processes, one model replica each.

Every step, each rank takes its shard of the global batch (contiguous rows,
sizes differing by at most one), runs forward and backward on it, and the ranks
then sum their gradients, each weighted by its shard's share of the batch:

    g = Σ_r (b_r / B) · g_r,     g_r = (1/b_r) Σ_{i in shard r} ∇ℓ_i,

which is exactly the gradient of the mean loss over the whole batch of B.  Every
rank then takes the same optimizer step from the same gradient, so the replicas
stay identical.  Parameters are broadcast from rank 0 at the start, and the batch
order comes from nnbook's seeded generator: call ``nb.seed(s)`` with the same ``s``
on every rank (each step checks that the ranks drew the same batch).

The result: p processes on global batch B give the weights of one process on
batch B up to rounding — each shard's gradient is a sum over fewer rows, added to
the others afterwards, so the floating-point sums run in a different order.  The
layers covered are those that treat the samples of a batch independently
(Dense, Conv2D, pooling, activations); BatchNorm normalises each shard with its
own statistics and Dropout draws each shard's mask on its own rank, so models
with them train correctly but not equal to one process.
"""
from __future__ import annotations

import time
import warnings
import zlib

import numpy as np

from ..backend import get_xp, to_numpy
from ..engine import compile_step
from ..models import all_layers
from ..norm import _BatchNorm
from ..optim import Optimizer

__all__ = ["DataParallelStep", "DistributedOptimizer", "broadcast_parameters", "shard",
           "replicas_agree"]


def shard(n, size, rank):
    """The rows ``slice(lo, hi)`` of a batch of ``n`` that rank ``rank`` of ``size``
    trains on: contiguous, the first ``n mod size`` ranks one row more."""
    q, r = divmod(n, size)
    lo = rank * q + min(rank, r)
    return slice(lo, lo + q + (rank < r))


def _params(model_or_params):
    ps = model_or_params.parameters() if hasattr(model_or_params, "parameters") else model_or_params
    return list(ps)


class _Flat:
    """One contiguous buffer per dtype holding every parameter (or gradient), so that
    one message carries them all (PyTorch's DDP calls such buffers buckets)."""

    def __init__(self, params):
        xp = get_xp()
        groups = {}
        for p in params:
            groups.setdefault(np.dtype(p.value.dtype), []).append(p)
        self.groups = []
        for dtype, ps in groups.items():
            slots, start = [], 0
            for p in ps:
                size = int(np.prod(p.shape, dtype=np.int64))
                slots.append((p, start, start + size))
                start += size
            self.groups.append((xp.empty(start, dtype=dtype), slots))
        self.nbytes = sum(int(buf.nbytes) for buf, _ in self.groups)

    @staticmethod
    def view(buf, p, a, b):
        return buf[a:b].reshape(p.shape)


def broadcast_parameters(model_or_params, comm, root=0):
    """Give every rank the parameter values of rank ``root`` (in place)."""
    flat = _Flat(_params(model_or_params))
    for buf, slots in flat.groups:
        for p, a, b in slots:
            flat.view(buf, p, a, b)[...] = p.value
        comm.bcast_(buf, root)
        for p, a, b in slots:
            p.value[...] = flat.view(buf, p, a, b)


def _signature(params):
    shapes = ";".join(f"{p.name}{tuple(p.shape)}{np.dtype(p.value.dtype).str}" for p in params)
    return np.array([len(params), sum(int(np.prod(p.shape)) for p in params),
                     zlib.crc32(shapes.encode())], dtype=np.int64)


def _same_everywhere(comm, row, what):
    """Raise the same ValueError on every rank unless ``row`` is equal on all ranks."""
    xp = get_xp()
    rows = to_numpy(comm.allgather(xp.asarray(row)))
    if not (rows == rows[0]).all():
        raise ValueError(f"{what}: the ranks differ (rank by rank: {rows.tolist()})")


def replicas_agree(model_or_params, comm):
    """True when every rank holds bit-for-bit the same parameter values."""
    params = _params(model_or_params)
    crc = [zlib.crc32(np.ascontiguousarray(to_numpy(p.value)).tobytes()) for p in params]
    rows = to_numpy(comm.allgather(get_xp().asarray(np.array(crc, dtype=np.int64))))
    return bool((rows == rows[0]).all())


class DistributedOptimizer(Optimizer):
    """Wraps an optimizer: ``step()`` first replaces every gradient by the weighted
    sum over the ranks, then lets the wrapped optimizer step (Horovod's
    ``hvd.DistributedOptimizer`` does the same).  ``weight``: this rank's share
    ``b_r / B`` of the current global batch, set before each step.  ``seconds``:
    cumulative time in ``"packing"`` (copying the weighted gradients into one
    buffer and back) and ``"communication"`` (the allreduce itself, including any
    wait for a slower rank).  With ``split_wait=True`` a barrier before each
    exchange measures that wait apart, in ``"wait"`` (a measurement aid: it costs
    one more latency per step)."""

    def __init__(self, opt, comm, split_wait=False):    # no super().__init__: a view of opt
        if not isinstance(opt, Optimizer):
            raise TypeError(f"opt: expected an nnbook optimizer, got {type(opt).__name__}")
        self.opt, self.comm, self.split_wait = opt, comm, bool(split_wait)
        self.params = opt.params
        self.weight = 1.0
        self.seconds = {"wait": 0.0, "packing": 0.0, "communication": 0.0}
        self._flat = _Flat(self.params)

    # the wrapped optimizer's learning rate, step count and state (schedules set lr)
    lr = property(lambda self: self.opt.lr, lambda self, v: setattr(self.opt, "lr", v))
    t = property(lambda self: self.opt.t, lambda self, v: setattr(self.opt, "t", v))
    state = property(lambda self: self.opt.state)

    def average_gradients(self):
        sec, clock = self.seconds, time.perf_counter
        if self.split_wait:
            t = clock()
            self.comm.barrier()
            sec["wait"] += clock() - t
        xp = get_xp()
        for buf, slots in self._flat.groups:
            t0 = clock()
            for p, a, b in slots:
                view = self._flat.view(buf, p, a, b)
                if self.weight:
                    xp.multiply(p.grad, self.weight, out=view)
                else:
                    view.fill(0)          # an empty shard adds nothing
            t1 = clock()
            self.comm.allreduce_(buf)
            t2 = clock()
            for p, a, b in slots:
                p.grad[...] = self._flat.view(buf, p, a, b)
            sec["packing"] += (t1 - t0) + (clock() - t2)
            sec["communication"] += t2 - t1

    def step(self):
        self.average_gradients()
        self.opt.step()

    def zero_grad(self):
        self.opt.zero_grad()

    def __repr__(self):
        return f"DistributedOptimizer({self.opt!r}, {self.comm!r})"


def _order_code(idx):
    """A small integer that identifies a batch's indices and their order (float64
    holds its square and a sum of many of them exactly)."""
    idx = np.asarray(idx, dtype=np.int64)
    pos = np.arange(1, len(idx) + 1, dtype=np.int64)
    return int((np.sum((idx % 65521) * (pos % 65519)) + 7 * len(idx)) % 1_000_003)


class DataParallelStep:
    """The step :func:`nnbook.fit` runs with ``comm=``: this rank's shard of each
    batch through the engine (or the reference layers), then the gradients averaged
    over the ranks, then the optimizer's step.

    It receives the *global* batch: ``gather(X, idx)`` gathers this rank's rows of
    ``X[idx]``, and ``step(xb, y[idx])`` keeps the same rows of the targets.  It
    returns the mean loss and the number of correct predictions over the whole
    global batch, the same on every rank.  ``seconds``: cumulative time in
    ``"compute"`` (forward, backward, optimizer), ``"packing"`` (gradients into
    one buffer and back), ``"communication"`` (the allreduces of the gradients and
    of the loss, including any wait for a slower rank) and ``"wait"`` (with
    ``split_wait=True``: that wait, measured apart by a barrier before each
    exchange, and then not counted in communication)."""

    def __init__(self, model, loss, opt, comm, engine=True, split_wait=False):
        if isinstance(opt, DistributedOptimizer):
            raise TypeError("opt: pass the plain optimizer; the step wraps it itself")
        params = _params(model)
        _same_everywhere(comm, _signature(params), "model: number, names, shapes or dtypes "
                         "of the parameters")
        if comm.size > 1 and any(isinstance(l, _BatchNorm) for l in all_layers(model)):
            warnings.warn("BatchNorm normalises each rank's shard with that shard's statistics, "
                          "so p processes do not equal one process on the whole batch (and the "
                          "running statistics differ between ranks)", RuntimeWarning, stacklevel=3)
        broadcast_parameters(params, comm)
        self.comm = comm
        self.opt = DistributedOptimizer(opt, comm, split_wait=split_wait)
        self.local = compile_step(model, loss, self.opt, engine=engine)
        # the engine fuses the update into the weight-gradient product only for a
        # plain nb.SGD; the wrapper is not one, so gradients exist before the step
        if getattr(self.local, "prescale", False):
            raise RuntimeError("the engine fused the optimizer step into the backward pass: "
                               "gradients could not be averaged before it")
        self.seconds = {"compute": 0.0, "wait": 0.0, "packing": 0.0, "communication": 0.0}
        self.steps = 0
        self._code = None

    @property
    def nbytes(self):
        """Bytes of gradient every rank contributes per step."""
        return self.opt._flat.nbytes

    def rows(self, n):
        """This rank's rows of a global batch of ``n``."""
        return shard(n, self.comm.size, self.comm.rank)

    def gather(self, X, idx):
        """This rank's rows of ``X[idx]``."""
        self._code = _order_code(idx)
        mine = idx[self.rows(len(idx))]
        return self.local.gather(X, mine) if len(mine) else X[:0]

    def __call__(self, xb, yb):
        t0 = time.perf_counter()
        before = dict(self.opt.seconds)
        B = len(yb)
        yb = yb[self.rows(B)]
        b = len(yb)
        self.opt.weight = b / B
        if b:
            value, correct = self.local(xb, yb)
        else:                                   # fewer rows than ranks: take part anyway
            value, correct = 0.0, 0
            self.opt.step()
            self.opt.zero_grad()
        t1 = time.perf_counter()
        h = float(self._code if self._code is not None else 0)
        s = get_xp().asarray(np.array([value * b / B, correct, h, h * h], dtype=np.float64))
        s = to_numpy(self.comm.allreduce_(s))
        t2 = time.perf_counter()
        p = self.comm.size
        if s[2] != p * h or s[3] != p * h * h:
            raise RuntimeError("data parallel: the ranks trained on different batches. Call "
                               "nb.seed(s) with the same s on every rank before building the "
                               "model, and draw random numbers alike on every rank (the batch "
                               "order comes from nnbook's generator)")
        spent = {k: v - before[k] for k, v in self.opt.seconds.items()}
        spent["communication"] += t2 - t1
        for k, v in spent.items():
            self.seconds[k] += v
        self.seconds["compute"] += (t2 - t0) - sum(spent.values())
        self.steps += 1
        return float(s[0]), int(round(s[1]))

    def close(self):
        self.local.close()
