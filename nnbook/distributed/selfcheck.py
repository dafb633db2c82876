"""Checks that run under ``mpiexec`` and print one JSON line from rank 0.

``mpiexec -n 2 python -m nnbook.distributed.selfcheck contract --model mlp``
    trains with ``nb.fit(..., comm=)`` on every rank, then rank 0 trains the same
    model alone on the same batches and reports the largest relative difference
    of the weights and histories, and whether all replicas are bit-identical.
``... selfcheck allreduce --algorithm ring``
    the book's allreduce (from point-to-point messages) against MPI's Allreduce.
``... selfcheck fail --rank 1``
    rank 1 raises in the middle of training: the job must end with that error.

The tests (tests/test_distributed.py) and the chapter "Many devices" run these.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def _data(model, n, seed=0):
    rng = np.random.default_rng(seed)
    if model == "mlp":
        X = rng.standard_normal((n, 20))
    else:
        X = rng.standard_normal((n, 1, 8, 8))
    y = rng.integers(0, 10, n)
    return X, y


def _model(kind):
    import nnbook as nb  # noqa: PLC0415
    if kind == "mlp":
        return nb.mlp([20, 32, 16, 10])
    return nb.Sequential(nb.Conv2D(1, 4, 3, padding=1), nb.MaxPool2D(2), nb.ReLU(), nb.Flatten(),
                         nb.Dense(4 * 4 * 4, 10))


def _train(args, comm):
    import nnbook as nb  # noqa: PLC0415
    nb.use("cupy" if args.backend == "nccl" else "numpy")
    nb.set_default_dtype(args.dtype)
    nb.seed(args.seed)
    model = _model(args.model)
    opt = nb.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    X, y = _data(args.model, args.n)
    hist = nb.fit(model, nb.SoftmaxCrossEntropy(), opt, X, y, epochs=args.epochs,
                  batch_size=args.batch_size, progress=False, comm=comm,
                  engine=not args.reference)
    return model, hist


def contract(args):
    import nnbook as nb  # noqa: PLC0415
    import nnbook.distributed as dist  # noqa: PLC0415
    comm = (dist.NCCLComm(ordered=args.ordered) if args.backend == "nccl"
            else dist.MPIComm(ordered=args.ordered))
    with dist.abort_on_error(comm):
        model, hist = _train(args, comm)
        agree = dist.replicas_agree(model, comm)
        if comm.rank != 0:
            return 0
        one, hist1 = _train(args, None)                    # one process, the whole batches
        err = max(nb.rel_error(nb.to_numpy(a.value), nb.to_numpy(b.value))
                  for a, b in zip(model.parameters(), one.parameters()))
        absdiff = max(float(np.max(np.abs(nb.to_numpy(a.value) - nb.to_numpy(b.value))))
                      for a, b in zip(model.parameters(), one.parameters()))
        loss_err = max(abs(a - b) / abs(b) for a, b in zip(hist["loss"], hist1["loss"]))
        print(json.dumps({"processes": comm.size, "backend": comm.name, "model": args.model,
                          "dtype": args.dtype,
                          "steps": args.epochs * -(-args.n // args.batch_size),
                          "max_rel_error": err, "max_abs_diff": absdiff,
                          "loss_rel_error": loss_err, "acc_equal": hist["acc"] == hist1["acc"],
                          "bit_identical": bool(err == 0), "replicas_agree": agree}))
    return 0


def allreduce(args):
    import nnbook.distributed as dist  # noqa: PLC0415
    comm = dist.MPIComm()
    fn = {"ring": dist.ring_allreduce, "tree": dist.tree_allreduce,
          "naive": dist.naive_allreduce}[args.algorithm]
    from mpi4py import MPI  # noqa: PLC0415
    rows = []
    with dist.abort_on_error(comm):
        for n in args.sizes:
            rng = np.random.default_rng(100 + comm.rank)
            for kind in ("integers", "floats"):
                x = (rng.integers(-1000, 1000, n).astype(np.float64) if kind == "integers"
                     else rng.standard_normal(n))
                x0 = x.copy()
                ours = fn(comm.mpi, x)
                theirs = np.empty_like(x)
                comm.mpi.Allreduce(x, theirs, op=MPI.SUM)
                err = float(np.max(np.abs(ours - theirs)) / max(1e-300, np.max(np.abs(theirs)))) if n else 0.0
                ok = bool(np.array_equal(x, x0))
                rows.append({"n": n, "kind": kind, "exact": bool(np.array_equal(ours, theirs)),
                             "rel_error": err, "input_unchanged": ok})
        everyone = comm.mpi.gather(rows, root=0)
    if comm.rank == 0:
        worst = max(r["rel_error"] for rs in everyone for r in rs)
        exact_ints = all(r["exact"] for rs in everyone for r in rs if r["kind"] == "integers")
        unchanged = all(r["input_unchanged"] for rs in everyone for r in rs)
        print(json.dumps({"processes": comm.size, "algorithm": args.algorithm,
                          "sizes": args.sizes, "max_rel_error": worst,
                          "integers_exact": exact_ints, "inputs_unchanged": unchanged}))
    return 0


def fail(args):
    import nnbook as nb  # noqa: PLC0415
    import nnbook.distributed as dist  # noqa: PLC0415
    comm = dist.init()                       # an uncaught exception aborts the job

    def boom(epoch, hist):
        if comm.rank == args.rank and epoch == 0:
            raise ValueError(f"deliberate failure on rank {comm.rank}")
    nb.seed(0)
    model = _model("mlp")
    X, y = _data("mlp", 256)
    nb.fit(model, nb.SoftmaxCrossEntropy(), nb.SGD(model.parameters(), lr=0.1), X, y,
           epochs=1000, batch_size=32, progress=False, comm=comm, callbacks=[boom])
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m nnbook.distributed.selfcheck")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("contract")
    c.add_argument("--model", choices=["mlp", "conv"], default="mlp")
    c.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    c.add_argument("--n", type=int, default=200)
    c.add_argument("--batch-size", type=int, default=32)
    c.add_argument("--epochs", type=int, default=2)
    c.add_argument("--lr", type=float, default=0.1)
    c.add_argument("--momentum", type=float, default=0.9)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--ordered", action="store_true", help="sum in rank order (allgather)")
    c.add_argument("--backend", choices=["mpi", "nccl"], default="mpi",
                   help="nccl: CuPy arrays, one GPU per process")
    c.add_argument("--reference", action="store_true", help="reference layers, no engine")
    c.set_defaults(func=contract)
    a = sub.add_parser("allreduce")
    a.add_argument("--algorithm", choices=["ring", "tree", "naive"], default="ring")
    a.add_argument("--sizes", type=int, nargs="+", default=[0, 1, 3, 7, 1000, 100003])
    a.set_defaults(func=allreduce)
    f = sub.add_parser("fail")
    f.add_argument("--rank", type=int, default=1)
    f.set_defaults(func=fail)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
