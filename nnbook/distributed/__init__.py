"""Data-parallel training on many processes: MPI on CPUs, NCCL on GPUs.

Start p copies of a script with ``mpiexec -n p python script.py``; in the script::

    import nnbook as nb
    import nnbook.distributed as dist

    comm = dist.init()                 # MPI (mpi4py); dist.init("nccl") on GPUs
    nb.seed(0)                         # the same seed on every rank
    model = nb.mlp([784, 256, 128, 10])
    opt = nb.SGD(model.parameters(), lr=0.1)
    hist = nb.fit(model, nb.SoftmaxCrossEntropy(), opt, X, y, batch_size=128, comm=comm)

Every rank holds a replica of the model and trains on its shard of each global
batch of 128; the gradients are averaged over the ranks before every step, so the
weights are those of one process training on batches of 128 (up to rounding: see
``nnbook.distributed.step``).  From the command line:
``mpiexec -n 4 python -m nnbook train mlp --distributed``.

Modules: ``distributed.comm`` (communicators: MPI, NCCL, threads),
``distributed.algorithms`` (allreduce from point-to-point messages and
its α–β cost), ``distributed.step`` (the training step),
``distributed.launch`` (running ``mpiexec`` from Python).
"""
from __future__ import annotations

import sys
import traceback

from .algorithms import (ALGORITHMS, allreduce_time, naive_allreduce, ring_allreduce,
                         ring_chunks, tree_allreduce)
from .comm import (IN_PLACE, Communicator, DeadlockError, LocalComm, MPIComm, NCCLComm,
                   ThreadComm, abort_on_error, mpi_available, run_threads)
from .step import (DataParallelStep, DistributedOptimizer, broadcast_parameters,
                   replicas_agree, shard)

__all__ = ["init", "Communicator", "MPIComm", "NCCLComm", "LocalComm", "ThreadComm",
           "run_threads", "DeadlockError", "IN_PLACE", "abort_on_error", "mpi_available",
           "DataParallelStep", "DistributedOptimizer", "broadcast_parameters", "replicas_agree",
           "shard", "naive_allreduce", "tree_allreduce", "ring_allreduce", "ring_chunks",
           "allreduce_time", "ALGORITHMS"]


def init(backend="mpi", ordered=False, abort_on_exception=True):
    """The communicator of this job's processes: ``"mpi"`` (mpi4py, NumPy or CuPy
    arrays) or ``"nccl"`` (CuPy's NCCL, one GPU per process; MPI starts the
    processes).  ``ordered``: sum gradients in rank order (see
    :attr:`Communicator.ordered`).  With ``abort_on_exception`` (default), an exception that no code
    catches on any rank prints its traceback and ends the whole job with
    ``MPI_Abort``, instead of leaving the other ranks waiting for it forever (what
    ``python -m mpi4py script.py`` does)."""
    if backend not in ("mpi", "nccl"):
        raise ValueError(f"backend: expected 'mpi' or 'nccl', got {backend!r}")
    comm = MPIComm(ordered=ordered) if backend == "mpi" else NCCLComm(ordered=ordered)
    if abort_on_exception and comm.size > 1:
        previous = sys.excepthook

        def hook(kind, value, tb):
            text = "".join(traceback.format_exception(kind, value, tb))
            sys.stderr.write("".join(f"[rank {comm.rank}] {l}\n" for l in text.splitlines()))
            sys.stderr.flush()
            if issubclass(kind, KeyboardInterrupt):
                previous(kind, value, tb)
            comm.abort(1)

        sys.excepthook = hook
    return comm
