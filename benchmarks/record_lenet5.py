"""Train LeNet-5 on the full MNIST training set and record the run.

    python benchmarks/record_lenet5.py [--epochs 10] [--batch-norm] [--out nnbook/results/lenet5_mnist.json]

SGD with momentum 0.9, batch 128, learning rate 0.05 for the first 70% of the
epochs and 0.005 after (a step schedule fixed in advance), float32, NumPy
backend.  The test set is evaluated after every epoch for the curves only:
nothing (schedule, epochs, model) is chosen from it.  Writes per-epoch
training loss/accuracy, test loss/accuracy, seconds per epoch, the machine,
versions, date and the exact command to the JSON file, and the learned
first-layer filters (6 x 5 x 5) and the trained weights to an .npz beside it.
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
from nnbook.bench._util import limit_threads, machine, stamp, write_json  # noqa: E402
from nnbook.lenet import LeNet5  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--batch-norm", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=60000)
    p.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "nnbook", "results",
                                                 "lenet5_mnist.json"))
    args = p.parse_args(argv)
    limit_threads(args.threads)
    nb.use("numpy")
    nb.seed(args.seed)
    (Xtr, ytr), (Xte, yte) = nb.data.load_mnist()
    Xtr = (Xtr[:args.limit].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    ytr = ytr[:args.limit]
    Xte = (Xte.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    model = LeNet5(batch_norm=args.batch_norm, dtype="float32")
    loss = nb.SoftmaxCrossEntropy()
    opt = nb.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    decay_at = int(round(0.7 * args.epochs))
    rec = {"model": "LeNet5(batch_norm=%s)" % args.batch_norm,
           "parameters": model.num_parameters(),
           "optimizer": f"SGD(lr={args.lr}, momentum=0.9), lr x0.1 from epoch {decay_at + 1}",
           "batch_size": 128, "epochs": args.epochs, "train_images": len(Xtr),
           "test_images": len(Xte), "dtype": "float32", "seed": args.seed, "threads": args.threads,
           "train_loss": [], "train_acc": [], "test_loss": [], "test_acc": [], "lr": [],
           "seconds_per_epoch": [], "load_average_1min": []}
    for epoch in range(args.epochs):
        opt.lr = args.lr * (0.1 if epoch >= decay_at else 1.0)
        t = time.perf_counter()
        h = nb.fit(model, loss, opt, Xtr, ytr, epochs=1, batch_size=128, progress=False)
        sec = time.perf_counter() - t
        tl, ta = nb.evaluate(model, loss, Xte, yte)
        for k, v in (("train_loss", h["loss"][0]), ("train_acc", h["acc"][0]), ("test_loss", tl),
                     ("test_acc", ta), ("lr", opt.lr), ("seconds_per_epoch", sec),
                     ("load_average_1min", os.getloadavg()[0])):
            rec[k].append(float(v))
        print(f"epoch {epoch + 1}/{args.epochs}: loss {h['loss'][0]:.4f} acc {h['acc'][0]:.4f} "
              f"test {ta:.4f} ({sec:.1f} s)", flush=True)
    rec["final_test_acc"] = rec["test_acc"][-1]
    rec.update(machine())
    rec.update(stamp("python " + " ".join([os.path.relpath(__file__, os.path.dirname(HERE)),
                                           *(argv if argv is not None else sys.argv[1:])])))
    stem = os.path.splitext(args.out)[0]
    np.savez_compressed(stem + ".npz", conv1_W=model[0].params["W"],
                        **{k.replace(".", "_"): v for k, v in model.state_dict().items()})
    rec["weights_file"] = os.path.basename(stem + ".npz")
    rec["conv1_filters"] = np.round(model[0].params["W"][:, 0].astype(np.float64), 5).tolist()
    write_json(args.out, rec)
    print(f"test accuracy {rec['final_test_acc']:.4f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
