"""Allreduce from point-to-point messages, and the α–β model of what it costs.

Each algorithm takes an mpi4py-style communicator ``comm`` (``comm.rank``,
``comm.size``, ``Send``/``Recv``/``Sendrecv`` on NumPy buffers: an mpi4py
``MPI.Comm`` under ``mpiexec``, or a :class:`~nnbook.distributed.ThreadComm` in one
process) and this rank's array ``x``, and returns a new array: the sum of every
rank's ``x``.  ``x`` is not modified.

The cost model: sending a message of n bytes between two processes takes
``α + n β`` seconds (α: latency, β: seconds per byte, 1/bandwidth).  For p
processes and n bytes per process:

=================  ====================================  ===========================
algorithm          time                                  bytes sent by the busiest
                                                         process
=================  ====================================  ===========================
reduce+broadcast   2 (p-1) (α + n β)                     (p-1) n  (the root)
binomial tree      2 ⌈log₂ p⌉ (α + n β)                  ⌈log₂ p⌉ n  (the root)
ring               2 (p-1) α + 2 (p-1)/p · n β           2 (p-1)/p · n
=================  ====================================  ===========================

The ring's bandwidth term does not grow with p: that is why NCCL, Horovod and
PyTorch's DDP use it (or trees of rings) for large gradients.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["naive_allreduce", "tree_allreduce", "ring_allreduce", "ring_chunks",
           "allreduce_time", "ALGORITHMS"]

ALGORITHMS = ("naive", "tree", "ring")


def naive_allreduce(comm, x):
    """Reduce to rank 0, then broadcast from it: rank 0 receives p-1 whole arrays one
    after another, sums them in rank order and sends the sum back to each rank."""
    r, p = comm.rank, comm.size
    out = np.array(x, copy=True)
    if r == 0:
        buf = np.empty_like(out)
        for src in range(1, p):
            comm.Recv(buf, source=src)
            out += buf
        for dst in range(1, p):
            comm.Send(out, dest=dst)
    else:
        comm.Send(out, dest=0)
        comm.Recv(out, source=0)
    return out


def tree_allreduce(comm, x):
    """Binomial tree: in round k = 0, 1, ... the ranks that are odd multiples of 2^k
    send their partial sum to the rank 2^k below and drop out; after ⌈log₂ p⌉ rounds
    rank 0 holds the sum, which goes back down the same tree."""
    r, p = comm.rank, comm.size
    out = np.array(x, copy=True)
    buf = np.empty_like(out)
    step = 1
    while step < p:                       # reduce up the tree
        if r % (2 * step) == step:
            comm.Send(out, dest=r - step)
            break
        if r % (2 * step) == 0 and r + step < p:
            comm.Recv(buf, source=r + step)
            out += buf
        step *= 2
    step = 1 << max(0, math.ceil(math.log2(p)) - 1) if p > 1 else 0
    while step >= 1:                      # broadcast down it
        if r % (2 * step) == 0 and r + step < p:
            comm.Send(out, dest=r + step)
        elif r % (2 * step) == step:
            comm.Recv(out, source=r - step)
        step //= 2
    return out


def ring_chunks(n, p):
    """Split n elements into p contiguous chunks whose sizes differ by at most one:
    the ``(start, stop)`` of each."""
    q, rem = divmod(n, p)
    bounds, start = [], 0
    for i in range(p):
        stop = start + q + (i < rem)
        bounds.append((start, stop))
        start = stop
    return bounds


def ring_allreduce(comm, x):
    """Ring allreduce: reduce-scatter, then allgather, each in p-1 steps.

    The array is cut into p chunks.  In step s of the reduce-scatter, rank r sends
    chunk (r - s) mod p to its right neighbour r+1 and adds the chunk (r - s - 1)
    mod p that its left neighbour sends to its own copy; after p-1 steps rank r
    holds the complete sum of chunk (r + 1) mod p.  The allgather then passes the
    finished chunks once around the ring.  Every rank sends 2(p-1) messages of n/p
    elements; ``Sendrecv`` sends and receives at once, so no rank waits for a
    neighbour that is itself waiting to send."""
    r, p = comm.rank, comm.size
    out = np.array(x, copy=True)
    if p == 1:
        return out
    flat = out.reshape(-1)
    chunks = [flat[a:b] for a, b in ring_chunks(flat.size, p)]
    right, left = (r + 1) % p, (r - 1) % p
    for s in range(p - 1):                               # reduce-scatter
        send, recv = chunks[(r - s) % p], chunks[(r - s - 1) % p]
        buf = np.empty_like(recv)
        comm.Sendrecv(send, dest=right, recvbuf=buf, source=left)
        recv += buf
    for s in range(p - 1):                               # allgather
        send, recv = chunks[(r + 1 - s) % p], chunks[(r - s) % p]
        comm.Sendrecv(send, dest=right, recvbuf=recv, source=left)
    return out


def allreduce_time(algorithm, nbytes, p, alpha, beta):
    """The α–β model's time (s) of an allreduce of ``nbytes`` per process over ``p``
    processes; ``alpha``: latency (s), ``beta``: seconds per byte."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm: expected one of {ALGORITHMS}, got {algorithm!r}")
    if p == 1:
        return 0.0
    if algorithm == "naive":
        return 2 * (p - 1) * (alpha + nbytes * beta)
    if algorithm == "tree":
        return 2 * math.ceil(math.log2(p)) * (alpha + nbytes * beta)
    return 2 * (p - 1) * alpha + 2 * (p - 1) / p * nbytes * beta
