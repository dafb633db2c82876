"""Train ResNet-15 with SGD, NAG, RMSProp and Adam on the same MNIST subset, from the
same initial weights, and record every run.

    python benchmarks/record_resnet_optimizers.py [--limit 1000] [--epochs 3]
        [--test-limit 1000] [--out nnbook/results/resnet_optimizers.json]

The optimizers and their rates are those of ``benchmarks/record_optimizers.py`` (the
chapter "Optimizers"): SGD lr 0.1; NAG lr 0.05, momentum 0.9; RMSprop lr 1e-3; Adam
lr 1e-3; fixed rates, batch 128.  The second thesis (§6.4) gives PyTorch's defaults,
the one-cycle policy and a learning-rate range test, but no rates; a range test per
optimizer would cost as much as an epoch here, so the rates are those the chapter
already uses.  The model is :func:`nnbook.models.ResNet15` (thesis Table 3, 513,034
parameters, dropout 0.5 before the classifier), float32, NumPy backend, built with
the same seed for every optimizer (so every run starts from the same weights and sees
the batches in the same order).  Inputs: the first ``--limit`` MNIST training digits
zero-padded to 32x32 (as ``benchmarks/record_resnet.py``); the first ``--test-limit``
test digits (all 10,000 with ``--test-limit 10000``) are evaluated after every epoch,
for the curves only (nothing is chosen from them).  Writes per-epoch training loss and
accuracy, test loss and accuracy, seconds per epoch (training only) and the load
average, plus the machine, versions, git commit, BLAS and the exact command.  The
JSON file is rewritten after each optimizer, so an interrupted run keeps what it did.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import nnbook as nb  # noqa: E402
from nnbook.bench._util import (  # noqa: E402
    epoch_line, limit_threads, machine, median, stamp, train_test_epoch, write_json)
from nnbook.models import ResNet15  # noqa: E402

OUT = os.path.join(ROOT, "nnbook", "results", "resnet_optimizers.json")


def configs():
    """Name -> (optimizer factory, description); the rates of record_optimizers.py."""
    return {
        "SGD": (lambda p: nb.SGD(p, lr=0.1), "SGD(lr=0.1)"),
        "NAG": (lambda p: nb.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
                "SGD(lr=0.05, momentum=0.9, nesterov=True)"),
        "RMSProp": (lambda p: nb.RMSprop(p, lr=1e-3), "RMSprop(lr=1e-3)"),
        "Adam": (lambda p: nb.Adam(p, lr=1e-3), "Adam(lr=1e-3)"),
    }


def images(X, size=32):
    """uint8 (N, 28, 28) -> float32 (N, 1, size, size) in [0, 1], zero-padded."""
    X = (X.astype(np.float32) / 255.0)[:, None]
    p = (size - 28) // 2
    return np.pad(X, ((0, 0), (0, 0), (p, p), (p, p))) if p else X


def train(name, make_opt, desc, Xtr, ytr, Xte, yte, args):
    nb.seed(args.seed)                       # same initial weights for every optimizer
    model = ResNet15(input_size=Xtr.shape[-1], dtype="float32")
    loss = nb.SoftmaxCrossEntropy()
    opt = make_opt(model.parameters())
    rec = {"optimizer": desc, "parameters": model.num_parameters(),
           "train_loss": [], "train_acc": [], "test_loss": [], "test_acc": [],
           "seconds_per_epoch": [], "seconds_test": [], "load_average_1min": []}
    for epoch in range(args.epochs):
        nb.seed(args.seed + 1000 + epoch)   # same batch order for every optimizer
        e = train_test_epoch(model, loss, opt, Xtr, ytr, Xte, yte, args.batch_size)
        for k, v in e.items():
            rec[k].append(float(v))
        print(f"{name:8} epoch {epoch + 1}/{args.epochs}: {epoch_line(e)}", flush=True)
    rec["final_test_acc"] = rec["test_acc"][-1]
    return rec


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--limit", type=int, default=1000, help="training images")
    p.add_argument("--test-limit", type=int, default=1000, help="test images")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--only", nargs="*", choices=list(configs()), default=None,
                   help="run only these optimizers (default: all four)")
    p.add_argument("--out", default=OUT)
    args = p.parse_args(argv)
    if args.epochs < 1 or args.limit < args.batch_size:
        p.error(f"--epochs must be >= 1 and --limit >= --batch-size, got {args.epochs} and "
                f"{args.limit}")
    limit_threads(args.threads)
    nb.use("numpy")
    (Xtr, ytr), (Xte, yte) = nb.data.load_mnist()
    Xtr, ytr = images(Xtr[:args.limit]), ytr[:args.limit]
    Xte, yte = images(Xte[:args.test_limit]), yte[:args.test_limit]
    command = "python " + " ".join([os.path.relpath(__file__, ROOT),
                                    *(argv if argv is not None else sys.argv[1:])])
    rec = {"model": "ResNet-15 (nnbook.models.ResNet15, thesis Table 3)",
           "train_images": len(Xtr), "test_images": len(Xte), "input": [1, 32, 32],
           "batch_size": args.batch_size, "epochs": args.epochs, "dtype": "float32",
           "seed": args.seed, "threads": args.threads,
           "rates_from": "benchmarks/record_optimizers.py (fixed rates, no schedule)",
           "runs": {}}
    rec.update(machine())
    t0 = time.perf_counter()
    for name, (make_opt, desc) in configs().items():
        if args.only and name not in args.only:
            continue
        rec["runs"][name] = train(name, make_opt, desc, Xtr, ytr, Xte, yte, args)
        rec["total_seconds"] = time.perf_counter() - t0
        rec.update(stamp(command))
        write_json(args.out, rec)
    for name, r in rec["runs"].items():
        print(f"{name:8} test accuracy {r['final_test_acc']:.4f} "
              f"({median(r['seconds_per_epoch']):.1f} s per epoch)")
    print(f"wrote {args.out} ({rec['total_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
