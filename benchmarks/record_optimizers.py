"""Record a fuller optimizer comparison on MNIST for the chapter "Optimizers".

MLP 784-256-128-10 (Glorot weights, seed 42 as in the second thesis), all 60 000
training images, 10 epochs, batches of 128, validation on the 10 000 test images.
Each optimizer runs with a fixed rate and, for NAG and Adam, also with a one-cycle
schedule.  Writes ``nnbook/results/optimizers_mnist.json``, which
``book/part2/optimizers.ipynb`` displays.

    python benchmarks/record_optimizers.py [--epochs 10] [--out PATH]
"""
from __future__ import annotations

import argparse
import json
import pathlib
import platform
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nnbook as nb  # noqa: E402
from nnbook.bench._util import stamp  # noqa: E402
from nnbook.schedules import OneCycleLR  # noqa: E402


def configs():
    def nag(p, lr):
        return nb.SGD(p, lr=lr, momentum=0.9, nesterov=True)
    return {
        "SGD (lr 0.1)": (lambda p: nb.SGD(p, lr=0.1), None),
        "Momentum (lr 0.05, 0.9)": (lambda p: nb.SGD(p, lr=0.05, momentum=0.9), None),
        "NAG (lr 0.05, 0.9)": (lambda p: nag(p, 0.05), None),
        "RMSprop (lr 1e-3)": (lambda p: nb.RMSprop(p, lr=1e-3), None),
        "Adam (lr 1e-3)": (lambda p: nb.Adam(p, lr=1e-3), None),
        "AdamW (lr 1e-3, wd 0.01)": (lambda p: nb.AdamW(p, lr=1e-3), None),
        "NAG + one-cycle (max_lr 0.5)": (lambda p: nag(p, 0.5),
                                         lambda o, n: OneCycleLR(o, max_lr=0.5, total_steps=n)),
        "Adam + one-cycle (max_lr 3e-3)": (lambda p: nb.Adam(p, lr=3e-3),
                                           lambda o, n: OneCycleLR(o, max_lr=3e-3,
                                                                   total_steps=n)),
    }


def run(make_opt, make_sched, X, y, Xv, yv, epochs, batch_size=128, seed=42):
    nb.seed(seed)
    model = nb.mlp([784, 256, 128, 10], init="glorot")
    loss = nb.SoftmaxCrossEntropy()
    opt = make_opt(model.parameters())
    steps = epochs * -(-len(X) // batch_size)
    sched = make_sched(opt, steps) if make_sched else None
    out = {"train_loss": [], "val_loss": [], "val_acc": [], "epoch_seconds": []}
    for _ in range(epochs):
        t0 = time.perf_counter()
        total = 0.0
        step = nb.engine.compile_step(model, loss, opt)     # the step nb.fit runs
        for idx in nb.train.iterate_minibatches(len(X), batch_size):
            total += step(X[idx], y[idx])[0] * len(idx)
            if sched is not None:
                sched.step()
        out["epoch_seconds"].append(time.perf_counter() - t0)
        vl, va = nb.evaluate(model, loss, Xv, yv)
        out["train_loss"].append(total / len(X))
        out["val_loss"].append(vl)
        out["val_acc"].append(va)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "nnbook" / "results" / "optimizers_mnist.json"))
    args = ap.parse_args(argv)
    (Xtr, ytr), (Xte, yte) = nb.data.load_mnist()
    X, Xv = nb.data.scale(nb.data.flatten(Xtr)), nb.data.scale(nb.data.flatten(Xte))
    runs = {}
    for name, (make_opt, make_sched) in configs().items():
        runs[name] = run(make_opt, make_sched, X, ytr, Xv, yte, args.epochs)
        r = runs[name]
        print(f"{name:32} val acc {r['val_acc'][-1]:.4f} "
              f"({sum(r['epoch_seconds']):.1f} s)", flush=True)
    meta = {
        # stamp: date, command, git commit of the checkout, BLAS library and kernel
        **stamp("python benchmarks/record_optimizers.py"
                + (f" --epochs {args.epochs}" if args.epochs != 10 else "")),
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
        "python": platform.python_version(), "numpy": np.__version__,
        "nnbook": nb.__version__, "backend": nb.backend_name(),
        "model": "MLP 784-256-128-10, Glorot, seed 42, batch 128",
        "train_size": len(X), "val_size": len(Xv), "epochs": args.epochs,
    }
    path = pathlib.Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))
    print("wrote", path)


if __name__ == "__main__":
    main()
