"""Exercises of the chapter "Many devices" (the checks; the stored cases are in
``nnbook/exercise_data/distributed.*``).

``distributed.ring_allreduce`` runs the answer on every rank of a group of threads
(:func:`nnbook.distributed.run_threads`) that allows only point-to-point messages,
compares every rank's result with the sum over the ranks, and counts what each
rank sent: a ring sends at most 2(p-1)⌈n/p⌉ elements per rank, so a correct sum
through a root or a tree is rejected too.  The tests run the same function under
``mpiexec`` against MPI's own Allreduce.
"""
import math

import numpy as np

from ..distributed import run_threads
from ..exercises import ExerciseError, _fmt, register


def _run_ring(fn, args):
    """A case is (p, [x_0, ..., x_{p-1}]); rank r runs fn(comm, x_r)."""
    p, xs = args

    def rank(comm, x):
        return fn(comm, x), comm.sent
    return run_threads(rank, p, [(x,) for x in xs], timeout=30, collectives=False)


def _compare_ring(got, want, args):
    p, xs = args
    shape = xs[0].shape
    bound = 2 * (p - 1) * math.ceil(math.prod(shape) / p)
    tol = 1e-5 if xs[0].dtype == np.float32 else 1e-12
    for r, (out, sent) in enumerate(got):
        out = np.asarray(out)
        if out.shape != shape:
            raise ExerciseError(f"rank {r} returned shape {out.shape}, expected {shape}")
        if not np.allclose(out, want, rtol=tol, atol=tol):
            raise ExerciseError(f"rank {r} has the wrong sum\n  expected: {_fmt(want)}\n"
                                f"  got:      {_fmt(out)}")
        if sent > bound:
            raise ExerciseError(
                f"the sums are right, but rank {r} sent {sent} elements; a ring sends at most "
                f"2(p-1)⌈n/p⌉ = {bound} (expected a ring: each rank passes chunks of n/p "
                f"elements to its neighbour)")


register(
    "distributed.ring_allreduce",
    "Write ring_allreduce(comm, x) from point-to-point messages only (comm.Sendrecv, "
    "comm.Send, comm.Recv with mpi4py's arguments): return a new array, the sum of x over "
    "all comm.size ranks, without changing x. Cut x into comm.size chunks; p-1 steps of "
    "reduce-scatter, then p-1 steps of allgather around the ring.",
    call=_run_ring,
    compare=_compare_ring,
    show_args=lambda args: f"{args[0]} ranks, x of shape {args[1][0].shape} ({args[1][0].dtype})",
)


register(
    "distributed.step_time",
    "Return the predicted time (s) of one data-parallel step: compute_s is the time one "
    "device needs for the whole global batch, shared evenly by p devices; then a ring "
    "allreduce of the nbytes-byte gradient with latency alpha (s) and beta (s per byte).",
    rtol=1e-12, atol=0,
)
