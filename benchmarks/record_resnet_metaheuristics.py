"""Train ResNet-15 with the metaheuristics chapter's methods (SHADE, SHADE-ILS and
their hybrids with gradient descent) and with NAG, RMSProp and Adam, on one small
MNIST subset, and record every run.

    python benchmarks/record_resnet_metaheuristics.py [--n-train 256] [--n-test 512]
        [--evals 30] [--popsize 10] [--checkpoints 3] [--epochs 5]
        [--out nnbook/results/resnet_metaheuristics.json]

The protocol is the one :mod:`nnbook.metaheuristics.experiment` runs for the MLPs and
LeNet-5 (``benchmarks/record_metaheuristics.py``), with ResNet-15 as the network:

* data: :func:`nnbook.metaheuristics.load_dataset` ``("mnist", images=True)`` with
  ``--n-train`` training digits and ``--n-test`` test digits split half for
  validation, half for the test (the thesis's 10k/5k split, scaled down), zero-padded
  from 28x28 to 32x32 (the thesis's input size);
* network: :func:`nnbook.models.ResNet15` (513,034 parameters), float32, seed 42,
  Glorot-uniform weights for every convolution and the dense layer (as the thesis,
  §6.3), and **no dropout** (``dropout=0``): a metaheuristic compares the training
  loss of two weight vectors, and dropout would make that loss random;
* objective: the mean cross-entropy over the whole training subset, batch
  normalisation with the statistics of that subset (the network in training mode);
  a point is validated and tested after its running statistics are set to the same
  statistics (one pass over the training subset, not counted);
* metaheuristics: ``--evals`` function evaluations (FEs; one FE = the loss over the
  training subset, one forward pass of ``--n-train`` images; a value-and-gradient call
  of L-BFGS-B and an epoch of Adam in the hybrids also count as one FE each),
  population ``--popsize``, the best individual validated at ``--checkpoints`` evenly
  spaced moments and the one with the lowest validation loss tested, L-BFGS-B given
  ``--evals-ls`` FEs per application;
* gradient descent: NAG, RMSProp and Adam for ``--epochs`` epochs of batches of 32
  with the one-cycle policy, the maximum rate of each optimizer taken from the
  LeNet-5 runs of ``nnbook/results/metaheuristics.json`` (seed 42: the range test's
  "valley" there; no range test is run here), and the epoch with the lowest
  validation loss tested.  By default (``--gd-bn calibrated``) a gradient run is
  validated and tested like a metaheuristic's point, with batch-norm statistics of
  the whole training subset: with a few hundred images an epoch is a handful of
  steps, too few for the running averages (momentum 0.1) to follow the weights.

Everything is one seed (42); the JSON file (curves, test accuracy, FEs, seconds,
machine, versions, git commit, BLAS and the command) is rewritten after every run.
BLAS uses ``--threads`` threads.  ``--methods`` runs a subset; ``--combine A.json
B.json ...`` joins the runs of several such partial records (made with the same
settings, for example in parallel processes) into ``--out``, keeping each part's
command, date and commit in ``meta["parts"]``:

    python benchmarks/record_resnet_metaheuristics.py --methods SHADE --out /tmp/a.json
    python benchmarks/record_resnet_metaheuristics.py --methods NAG Adam --out /tmp/b.json
    python benchmarks/record_resnet_metaheuristics.py --combine /tmp/a.json /tmp/b.json
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import nnbook as nb  # noqa: E402
from nnbook import metaheuristics as mh  # noqa: E402
from nnbook.backend import asarray, get_rng  # noqa: E402
from nnbook.bench._util import limit_threads, machine, stamp, write_json  # noqa: E402
from nnbook.conv import BatchNorm1d, BatchNorm2d  # noqa: E402
from nnbook.metaheuristics import experiment as _exp  # noqa: E402
from nnbook.models import ResNet15  # noqa: E402

OUT = os.path.join(ROOT, "nnbook", "results", "resnet_metaheuristics.json")
LENET_RESULTS = os.path.join(ROOT, "nnbook", "results", "metaheuristics.json")
GD = ("nag", "rmsprop", "adam")
GD_NAMES = {"nag": "NAG", "rmsprop": "RMSProp", "adam": "Adam"}
RESNET = "resnet15"


def _walk(layer):
    yield layer
    for c in layer.children():
        yield from _walk(c)


def build_resnet15(data, hidden, seed):
    """ResNet-15 for 32x32 digits, Glorot-uniform weights (fans as build_lenet5), zero
    biases, no dropout.  Replaces :func:`nnbook.metaheuristics.experiment.build_net`
    while this script runs, so that run_gradient and run_metaheuristic train it."""
    if hidden != RESNET:
        raise ValueError(f"hidden: expected {RESNET!r}, got {hidden!r}")
    nb.seed(seed)
    model = ResNet15(num_classes=data["n_out"], input_size=data["X_train"].shape[-1],
                     dropout=0.0, dtype="float32")
    _exp.glorot_weights(_walk(model), get_rng())
    return model


def calibrate_batchnorm_any(model, X):
    """Set every batch-norm layer's running statistics (blocks included) to the mean
    and biased variance of its input over the whole of X: one forward pass in training
    mode with momentum 1, the variance's m/(m-1) undone.  The stand-in for
    :func:`nnbook.metaheuristics.calibrate_batchnorm`, which takes Sequentials of
    plain layers only."""
    bns = [l for l in _walk(model) if type(l) in (BatchNorm1d, BatchNorm2d)]
    moms = [l.momentum for l in bns]
    was = model.training
    try:
        for l in bns:
            l.momentum = 1.0
        model.train()
        model.forward(X)
        for l in bns:
            xhat = l.cache[0]
            m = xhat.size // xhat.shape[1]
            l.buffers["running_var"] = l.buffers["running_var"] * ((m - 1) / m)
    finally:
        for l, mom in zip(bns, moms):
            l.momentum = mom
        model.train(was)
    return model


def calibrated(fn):
    """``fn(model, ..., data)`` after setting the running statistics of every
    batch-norm layer to those of ``data["X_train"]`` (see calibrate_batchnorm_any)."""
    def wrapper(model, *args):
        calibrate_batchnorm_any(model, asarray(args[-1]["X_train"]))
        return fn(model, *args)
    return wrapper


def lenet5_rates(path=LENET_RESULTS, seed=42):
    """The maximum one-cycle rate each optimizer found for LeNet-5 (seed ``seed``)."""
    with open(path) as f:
        runs = json.load(f)["runs"]
    rates = {}
    for r in runs:
        if r.get("model") == "LeNet-5" and r.get("seed") == seed and "lr" in r:
            rates[r["method"]] = float(r["lr"])
    missing = [GD_NAMES[o] for o in GD if GD_NAMES[o] not in rates]
    if missing:
        raise RuntimeError(f"{path}: no LeNet-5 rate for {missing} (seed {seed})")
    return rates


SETTINGS = ("parameters", "n_train", "n_val", "n_test", "seed")


def combine(paths, out):
    """Join partial records (same data and network) into one, in the order GD, MH."""
    parts = []
    for path in paths:
        with open(path) as f:
            parts.append(json.load(f))
    first = parts[0]["meta"]
    kinds = {"gradient": "gradient", "metaheuristics": "metaheuristic"}
    ref = {}                      # the settings of the first part that ran each kind
    for path, part in zip(paths, parts):
        m = part["meta"]
        diff = [k for k in SETTINGS if m.get(k) != first.get(k)]
        for k, kind in kinds.items():
            if not any(r["kind"] == kind for r in part["runs"]):
                continue
            mine = {kk: v for kk, v in m[k].items() if kk not in ("optimizers", "methods")}
            ref.setdefault(k, mine)
            if mine != ref[k]:
                diff.append(k)
        if diff:
            raise ValueError(f"{path}: settings {diff} differ from the other parts'")
    order = [GD_NAMES[o] for o in GD] + list(mh.MH_METHODS)
    runs = sorted((r for part in parts for r in part["runs"]),
                  key=lambda r: order.index(r["method"]))
    names = [r["method"] for r in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"combine: a method appears twice in {names}")
    meta = dict(first)
    gd_names = [n for n in names if n in GD_NAMES.values()]
    mh_names = [n for n in names if n in mh.MH_METHODS]
    meta["gradient"] = {**first["gradient"], **ref.get("gradient", {}),
                        "optimizers": gd_names}
    meta["metaheuristics"] = {**first["metaheuristics"], **ref.get("metaheuristics", {}),
                              "methods": mh_names}
    meta["parts"] = [{k: part["meta"].get(k) for k in
                      ("command", "date", "git_commit", "git_dirty", "threads",
                       "total_seconds")} | {"methods": [r["method"] for r in part["runs"]]}
                     for part in parts]
    meta["command"] = "python " + " ".join(
        [os.path.relpath(__file__, ROOT), "--combine", *paths])
    meta["total_seconds"] = sum(part["meta"].get("total_seconds", 0) for part in parts)
    write_json(out, {"meta": meta, "runs": runs})
    print(f"wrote {out}: {', '.join(names)}")
    return 0


def pad32(X):
    return np.pad(X, ((0, 0), (0, 0), (2, 2), (2, 2))) if X.shape[-1] == 28 else X


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-train", type=int, default=256)
    p.add_argument("--n-test", type=int, default=512,
                   help="test digits, half for validation and half for the test")
    p.add_argument("--evals", type=int, default=30, help="FEs per metaheuristic")
    p.add_argument("--popsize", type=int, default=10)
    p.add_argument("--checkpoints", type=int, default=3)
    p.add_argument("--evals-ls", type=int, default=5, help="L-BFGS-B FEs per application")
    p.add_argument("--epochs", type=int, default=5, help="gradient-descent epochs")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--methods", nargs="*", default=None,
                   help=f"subset of {list(GD_NAMES.values()) + list(mh.MH_METHODS)}")
    p.add_argument("--gd-bn", choices=("calibrated", "running"), default="calibrated",
                   help="batch-norm statistics with which gradient runs are validated "
                        "and tested: those of the training subset (as for the "
                        "metaheuristics) or the running averages of training")
    p.add_argument("--combine", nargs="+", default=None, metavar="JSON",
                   help="join the runs of these partial records into --out and exit")
    p.add_argument("--out", default=OUT)
    args = p.parse_args(argv)
    if args.combine:
        return combine(args.combine, args.out)
    if args.evals < args.popsize:
        p.error(f"--evals must be at least --popsize ({args.popsize}), got {args.evals}")
    limit_threads(args.threads)
    nb.use("numpy")
    rates = lenet5_rates(seed=42)
    data = mh.load_dataset("mnist", seed=args.seed, mnist_train=args.n_train,
                           mnist_test=args.n_test, images=True)
    for k in ("X_train", "X_val", "X_test"):
        data[k] = pad32(data[k])
    # train ResNet-15 through the experiment's own functions
    _exp.build_net = build_resnet15
    _exp.calibrate_batchnorm = calibrate_batchnorm_any
    if args.gd_bn == "calibrated":
        # gradient runs are validated and tested as the metaheuristics' points are
        _exp._val_loss = calibrated(_exp._val_loss)
        _exp.task_metrics = calibrated(_exp.task_metrics)
    command = "python " + " ".join([os.path.relpath(__file__, ROOT),
                                    *(argv if argv is not None else sys.argv[1:])])
    D = mh.param_count(build_resnet15(data, RESNET, args.seed))
    rec = {"meta": {
        "model": "ResNet-15 (nnbook.models.ResNet15, thesis Table 3), dropout 0, Glorot",
        "parameters": D, "dataset": "mnist", "input": [1, 32, 32],
        "n_train": len(data["X_train"]), "n_val": len(data["X_val"]),
        "n_test": len(data["X_test"]), "seed": args.seed, "threads": args.threads,
        "gradient": {"optimizers": [GD_NAMES[o] for o in GD], "epochs": args.epochs,
                     "batch_size": 32, "schedule": "one-cycle",
                     "max_lr": {GD_NAMES[o]: rates[GD_NAMES[o]] for o in GD},
                     "max_lr_from": "LeNet-5 runs, seed 42, nnbook/results/metaheuristics.json",
                     "selection": "epoch with the lowest validation loss",
                     "bn_statistics": (
                         "validated and tested with the running statistics set to those "
                         "of the training subset, as the metaheuristics' points"
                         if args.gd_bn == "calibrated" else
                         "validated and tested with the running averages of training")},
        "metaheuristics": {"methods": list(mh.MH_METHODS), "max_evals": args.evals,
                           "popsize": args.popsize, "checkpoints": args.checkpoints,
                           "lbfgsb_evals_per_ls": args.evals_ls,
                           "gd_local_search": "1 epoch of Adam (lr 1e-3, batch 32)",
                           "selection": "checkpoint with the lowest validation loss"},
        "evaluation": "1 FE = the loss over the whole training subset (one forward pass); "
                      "a value-and-gradient call or an epoch of mini-batch steps counts "
                      "as 1 FE",
        **machine(), **stamp(command)}, "runs": []}
    wanted = args.methods
    t_all = time.perf_counter()

    def save():
        rec["meta"]["total_seconds"] = time.perf_counter() - t_all
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        write_json(args.out, json.loads(json.dumps(rec, default=float)))

    for opt in GD:
        if wanted and GD_NAMES[opt] not in wanted:
            continue
        r = mh.run_gradient(data, RESNET, opt, seed=args.seed, epochs=args.epochs,
                            lr=rates[GD_NAMES[opt]])
        rec["runs"].append({**r, "kind": "gradient", "bn_statistics": args.gd_bn})
        print(f"[{time.perf_counter() - t_all:7.1f}s] {r['method']:13} test {r['test']} "
              f"({r['seconds']:.1f} s)", flush=True)
        save()
    for m in mh.MH_METHODS:
        if wanted and m not in wanted:
            continue
        r = mh.run_metaheuristic(data, RESNET, m, args.evals, seed=args.seed,
                                 popsize=args.popsize, checkpoints=args.checkpoints,
                                 evals_ls=args.evals_ls)
        r["final_train_loss"] = (float(r["final_train_loss"])
                                 if math.isfinite(r["final_train_loss"]) else None)
        rec["runs"].append({**r, "kind": "metaheuristic"})
        print(f"[{time.perf_counter() - t_all:7.1f}s] {r['method']:13} test {r['test']} "
              f"({r['seconds']:.1f} s, {r['evals']} FEs)", flush=True)
        save()
    save()
    print(f"wrote {args.out} ({time.perf_counter() - t_all:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
