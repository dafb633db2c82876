"""Train the 784-256-128-10 ReLU MLP on the full MNIST training set and record the run.

    python benchmarks/record_mlp_mnist.py [--epochs 5] [--lr 0.5] [--compare-lr 0.1]
                                          [--out nnbook/results/mlp_mnist.json]

``nb.mlp([784, 256, 128, 10])`` (He-normal weights, zero biases), plain SGD (no
momentum, no weight decay) with learning rate 0.5, batches of 128, float32, seed 0,
NumPy backend, BLAS limited to 2 threads.  Trains on all 60,000 training images;
the official 10,000 test images are evaluated after every epoch for the curves
only (nothing is chosen from them).  Writes to the JSON file: per-epoch training
loss/accuracy, test loss/accuracy and seconds, the final 10 x 10 confusion matrix
(rows: true digit, columns: predicted digit), every misclassified test index with
its predicted label, the machine, versions, date and the exact command; the trained
weights go to an ``.npz`` beside it (``nb.load_model`` reads it back).  The same
training is then repeated with each ``--compare-lr`` rate (default 0.1; ``none`` to
skip) and its per-epoch curves are recorded under ``"compare"``.
``book/part1/layer_l_rule.ipynb`` draws its figures from these files and
``tests/test_mnist_learning.py`` checks the accuracy bar (>= 97.5% within 5 epochs).

Bit for bit, the run repeats only on the same BLAS kernel: other kernels round the
matrix products differently, and at lr 0.5 the last digits follow.  The recorded
98.13% reproduces with OpenBLAS's Haswell kernel::

    OPENBLAS_CORETYPE=Haswell python benchmarks/record_mlp_mnist.py

while the same command on OpenBLAS's AVX-512 (SkylakeX) kernel gives 98.03%.  The
JSON file stamps the BLAS library and kernel that ran (``"blas"``) and the git
commit (``"git_commit"``, ``"git_dirty"``).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from nnbook.bench._util import limit_threads, machine, stamp, write_json  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=0.5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compare-lr", default="0.1",
                   help="comma-separated rates to repeat the run with, or 'none'")
    p.add_argument("--out", default=os.path.join(ROOT, "nnbook", "results", "mlp_mnist.json"))
    args = p.parse_args(argv)
    limit_threads(args.threads)        # before NumPy starts its BLAS pool

    import numpy as np  # noqa: PLC0415

    import nnbook as nb  # noqa: PLC0415

    nb.use("numpy")
    nb.set_default_dtype("float32")
    (Xtr, ytr), (Xte, yte) = nb.data.load_mnist()
    X = nb.data.scale(nb.data.flatten(Xtr))          # float32 in [0, 1], (60000, 784)
    Xt = nb.data.scale(nb.data.flatten(Xte))
    sizes = [784, 256, 128, 10]
    loss = nb.SoftmaxCrossEntropy()

    def train(lr):
        nb.seed(args.seed)
        model = nb.mlp(sizes)                         # ReLU between layers, He init
        opt = nb.SGD(model.parameters(), lr=lr)       # plain SGD
        seconds = []
        t_last = [time.perf_counter()]

        def clock(epoch, hist):
            # called by fit after each epoch (after the test-set evaluation)
            now = time.perf_counter()
            seconds.append(now - t_last[0])
            t_last[0] = now
            print(f"lr {lr} epoch {epoch + 1}/{args.epochs}: loss {hist['loss'][-1]:.4f} "
                  f"acc {hist['acc'][-1]:.4f} test loss {hist['val_loss'][-1]:.4f} "
                  f"test acc {hist['val_acc'][-1]:.4f} ({seconds[-1]:.1f} s)", flush=True)

        t0 = time.perf_counter()
        t_last[0] = t0
        hist = nb.fit(model, loss, opt, X, ytr, epochs=args.epochs, batch_size=args.batch_size,
                      val=(Xt, yte), progress=False, callbacks=[clock])
        curves = {"train_loss": [float(v) for v in hist["loss"]],
                  "train_acc": [float(v) for v in hist["acc"]],
                  "test_loss": [float(v) for v in hist["val_loss"]],
                  "test_acc": [float(v) for v in hist["val_acc"]],
                  "seconds_per_epoch": [round(s, 3) for s in seconds],
                  "seconds_total": round(time.perf_counter() - t0, 3)}
        return model, curves

    model, curves = train(args.lr)
    rec = {"model": f"mlp({sizes}) ReLU, init='he', zero biases",
           "sizes": sizes, "parameters": model.num_parameters(),
           "optimizer": f"SGD(lr={args.lr}) (no momentum, no weight decay)",
           "lr": args.lr, "batch_size": args.batch_size, "epochs": args.epochs,
           "train_images": int(len(X)), "test_images": int(len(Xt)), "dtype": "float32",
           "seed": args.seed, "threads": args.threads, "backend": nb.backend_name(), **curves}
    total = curves["seconds_total"]

    pred = nb.to_numpy(model.predict(Xt)).argmax(axis=1)
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (yte, pred), 1)
    wrong = np.flatnonzero(pred != yte)
    assert abs(1 - len(wrong) / len(yte) - rec["test_acc"][-1]) < 1e-12
    rec["confusion_matrix"] = confusion.tolist()
    rec["confusion_note"] = "rows: true digit, columns: predicted digit (official test set)"
    rec["misclassified"] = {"index": wrong.tolist(), "predicted": pred[wrong].tolist(),
                            "true": yte[wrong].tolist()}
    rec["final_test_acc"] = rec["test_acc"][-1]
    rec["compare"] = []
    if args.compare_lr.lower() != "none":
        for lr in (float(v) for v in args.compare_lr.split(",")):
            rec["compare"].append({"lr": lr, **train(lr)[1]})
    rec.update(machine())
    rec["load_average_1min"] = os.getloadavg()[0]
    argv_used = argv if argv is not None else sys.argv[1:]
    rec.update(stamp("python " + " ".join([os.path.relpath(__file__, ROOT), *argv_used])))

    stem = os.path.splitext(args.out)[0]
    model.save(stem + ".npz")
    rec["weights_file"] = os.path.basename(stem + ".npz")
    write_json(args.out, rec)
    print(f"test accuracy {rec['final_test_acc']:.4f} after {args.epochs} epochs "
          f"({total:.1f} s); wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
