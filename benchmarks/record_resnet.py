"""Train ResNet-15, ResNet-57 and LeNet-5 on the same MNIST subset with the same budget,
and record the three runs.

    python benchmarks/record_resnet.py [--epochs 5] [--limit 10000] [--size 32]
                                       [--no-resnet57]
                                       [--out nnbook/results/resnet_mnist.json]

All models see the first ``--limit`` training images, padded by two pixels to the
32x32 of the second thesis's tables (``--size 28`` leaves them as they are), for
``--epochs`` epochs of SGD with momentum 0.9, batch 128, learning rate 0.05 for the
first 70% of the epochs and 0.005 after (fixed in advance), float32, NumPy backend,
through ``nb.fit`` (the training engine).  ResNet-15 and ResNet-57 are
:func:`nnbook.models.ResNet15` and :func:`nnbook.models.ResNet57` (thesis Tables 3
and 4), LeNet-5 is :func:`nnbook.models.LeNet5` without batch norm (the model of the
CNN chapter).  The 10,000 test images are evaluated after every epoch for the curves
only: nothing is chosen from them.  Writes per-epoch training loss/accuracy, test
loss/accuracy, seconds per epoch and the load average for each model, the machine,
versions, date and the exact command to the JSON file.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import nnbook as nb  # noqa: E402
from nnbook.bench._util import (  # noqa: E402
    epoch_line, limit_threads, machine, median, stamp, train_test_epoch, write_json)
from nnbook.models import LeNet5, ResNet15, ResNet57  # noqa: E402


def images(X, size):
    """uint8 (N, 28, 28) -> float32 (N, 1, size, size) in [0, 1], zero-padded."""
    X = (X.astype(np.float32) / 255.0)[:, None]
    p = (size - 28) // 2
    return np.pad(X, ((0, 0), (0, 0), (p, p), (p, p))) if p else X


def train(name, model, Xtr, ytr, Xte, yte, args):
    loss = nb.SoftmaxCrossEntropy()
    opt = nb.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    decay_at = int(round(0.7 * args.epochs))
    rec = {"model": name, "parameters": model.num_parameters(),
           "optimizer": f"SGD(lr={args.lr}, momentum=0.9), lr x0.1 from epoch {decay_at + 1}",
           "train_loss": [], "train_acc": [], "test_loss": [], "test_acc": [], "lr": [],
           "seconds_per_epoch": [], "seconds_test": [], "load_average_1min": []}
    for epoch in range(args.epochs):
        opt.lr = args.lr * (0.1 if epoch >= decay_at else 1.0)
        e = train_test_epoch(model, loss, opt, Xtr, ytr, Xte, yte, 128)
        for k, v in (*e.items(), ("lr", opt.lr)):
            rec[k].append(float(v))
        print(f"{name} epoch {epoch + 1}/{args.epochs}: {epoch_line(e)}", flush=True)
    rec["final_test_acc"] = rec["test_acc"][-1]
    return rec


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--limit", type=int, default=10000, help="training images")
    p.add_argument("--size", type=int, default=32, choices=(28, 32), help="input side")
    p.add_argument("--no-resnet57", dest="resnet57", action="store_false",
                   help="skip ResNet-57 (the longest run)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "nnbook", "results",
                                                 "resnet_mnist.json"))
    args = p.parse_args(argv)
    limit_threads(args.threads)
    nb.use("numpy")
    (Xtr, ytr), (Xte, yte) = nb.data.load_mnist()
    Xtr, ytr = images(Xtr[:args.limit], args.size), ytr[:args.limit]
    Xte = images(Xte, args.size)
    rec = {"train_images": len(Xtr), "test_images": len(Xte), "input": [1, args.size, args.size],
           "batch_size": 128, "epochs": args.epochs, "dtype": "float32", "seed": args.seed,
           "threads": args.threads, "runs": {}}
    t0 = time.perf_counter()
    nb.seed(args.seed)
    rec["runs"]["resnet15"] = train("ResNet-15", ResNet15(input_size=args.size,
                                                          dtype="float32"),
                                    Xtr, ytr, Xte, yte, args)
    nb.seed(args.seed)
    # LeNet-5 reads 28x28 digits with a padded first convolution, or 32x32 without
    rec["runs"]["lenet5"] = train("LeNet-5", LeNet5(pad_input=args.size == 28,
                                                    dtype="float32"),
                                  Xtr, ytr, Xte, yte, args)
    if args.resnet57:
        nb.seed(args.seed)
        rec["runs"]["resnet57"] = train("ResNet-57", ResNet57(input_size=args.size,
                                                              dtype="float32"),
                                        Xtr, ytr, Xte, yte, args)
    rec["total_seconds"] = time.perf_counter() - t0
    rec.update(machine())
    rec.update(stamp("python " + " ".join([os.path.relpath(__file__, os.path.dirname(HERE)),
                                           *(argv if argv is not None else sys.argv[1:])])))
    write_json(args.out, rec)
    for k, r in rec["runs"].items():
        print(f"{r['model']}: test accuracy {r['final_test_acc']:.4f}, "
              f"{median(r['seconds_per_epoch']):.1f} s/epoch")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
