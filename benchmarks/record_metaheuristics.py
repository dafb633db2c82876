"""Record the chapter "Metaheuristics vs gradient descent": the source thesis's
experiment (§6) at a scale that runs on a 2-core CPU.

    python benchmarks/record_metaheuristics.py                # full record (~40 min)
    python benchmarks/record_metaheuristics.py --quick        # a smoke run (~1-2 min)
    python benchmarks/record_metaheuristics.py --lenet5-only  # LeNet-5 only (~20 min),
                                                              # merged into the existing file
    python benchmarks/record_metaheuristics.py --no-lenet5    # all but LeNet-5 (~15-20 min)

Writes ``nnbook/results/metaheuristics.json`` after every seed (a partial file
survives an interruption).  ``--lenet5-only`` runs only the LeNet-5 entries of
the plan and merges them into the file at ``--out``: earlier LeNet-5 runs are
replaced, every other run and the original metadata are kept, and the LeNet-5
recording's own metadata go to ``meta["lenet5"]``.  BLAS is limited to one
thread: the small batched products of a population evaluation run 10-100x
slower when two OpenBLAS threads fight for a shared, busy machine.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import sklearn  # noqa: E402

import nnbook as nb  # noqa: E402
from nnbook import metaheuristics as mh  # noqa: E402
from nnbook.bench._util import stamp  # noqa: E402

OUT = pathlib.Path(nb.__file__).parent / "results" / "metaheuristics.json"
GD = ("nag", "rmsprop", "adam")
LENET = "LeNet-5"

LENET_NOTES = [
    "LeNet-5 as in the thesis's Table 2 (ReLU, max-pooling, BatchNorm after each convolution "
    "and hidden dense layer; 61,932 parameters) on the MNIST 10k/5k split of the MLP rows; "
    "28x28 digits zero-padded to 32x32 by the first convolution; Glorot-uniform weights",
    "LeNet-5 budget: 120 FEs, population 10, seeds 42 and 1 (time: one FE, a forward pass "
    "over the 10,000 training images, costs about 0.5 s here, a value-and-gradient call "
    "about 1.6 s and an epoch of mini-batch steps about 1.4 s)",
    "LeNet-5 BatchNorm: the metaheuristics' training loss normalises with the statistics "
    "of the whole training set; a checkpoint sets the running statistics to them "
    "(one training-set pass, not counted) before validating; gradient descent uses "
    "mini-batch statistics and running averages as usual",
]


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def entry(dataset, hidden, seeds, budget, popsize, epochs=20, checkpoints=20):
    lenet = hidden == mh.LENET5
    return {"dataset": dataset, "hidden_layers": None if lenet else hidden,
            "model": LENET if lenet else "MLP", "seeds": seeds, "mh_max_evals": budget,
            "popsize": popsize, "epochs": epochs, "checkpoints": checkpoints}


def plan(quick, lenet_only=False, no_lenet=False):
    """The runs: dataset, MLP hidden layers (None for LeNet-5), model, seeds, MH
    budget in FEs, population size, gradient epochs and MH checkpoints."""
    if quick:
        p = [entry("breast_cancer", 1, [42], 400, 10), entry("diabetes", 1, [42], 400, 10),
             entry("mnist", mh.LENET5, [42], 20, 10, epochs=2, checkpoints=4)]
    else:
        p = []
        for ds in ("breast_cancer", "diabetes"):
            p += [entry(ds, 1, [42, 1, 2], 4000, 20), entry(ds, 2, [42, 1, 2], 4000, 20),
                  entry(ds, 5, [42, 1, 2], 2000, 20), entry(ds, 11, [42], 200, 10)]
        p.append(entry("mnist", 2, [42, 1], 1000, 20))
        p.append(entry("mnist", mh.LENET5, [42, 1], 120, 10))
    if lenet_only:
        p = [e for e in p if e["model"] == LENET]
    if no_lenet:
        p = [e for e in p if e["model"] != LENET]
    return p


def environment(argv):
    # stamp: date, command, git commit of the checkout, BLAS library and kernel
    return {
        **stamp("python " + " ".join([sys.argv[0]] + (argv if argv is not None
                                                      else sys.argv[1:]))),
        "machine": f"{cpu_name()}, {os.cpu_count()} logical CPUs ({platform.system()} "
                   f"{platform.machine()})",
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
                     "nnbook": nb.__version__},
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
    }


def new_record(argv, quick, no_lenet=False):
    return {"meta": {
        **environment(argv),
        "gradient": {"optimizers": ["NAG", "RMSProp", "Adam"], "epochs": 20, "batch_size": 32,
                     "schedule": "one-cycle, max lr from the lr range test (valley point)",
                     "selection": "epoch with the lowest validation loss"},
        "metaheuristics": {
            "methods": list(mh.MH_METHODS), "checkpoints": 20, "lbfgsb_evals_per_ls": 100,
            "gd_local_search": "1 epoch of Adam (lr 1e-3, batch 32) per application",
            "evaluation": "1 FE = the loss over the whole training set; an epoch of "
                          "gradient steps or a value-and-gradient call counts as 1 FE",
            "selection": "checkpoint with the lowest validation loss"},
        "models": {**{str(k): v for k, v in mh.MLP_HIDDEN.items()},
                   "lenet5": "nnbook.lenet.LeNet5(batch_norm=True)"},
        "notes": ["MLPs without BatchNorm; the thesis's models have it",
                  "diabetes (scikit-learn) stands in for Boston housing",
                  "MNIST also with an MLP 784-64-64-10 (about LeNet-5's 62k parameters)",
                  "11 hidden layers: one seed and 200 FEs (time)"] + LENET_NOTES,
        "plan": plan(quick, no_lenet=no_lenet),
    }, "runs": []}


def run_entry(e, rec, out, t_all, meta_time):
    hidden = mh.LENET5 if e["model"] == LENET else mh.MLP_HIDDEN[e["hidden_layers"]]
    ds = e["dataset"]
    label = LENET if e["model"] == LENET else f"L={e['hidden_layers']}"
    for seed in e["seeds"]:
        data = mh.load_dataset(ds, seed=seed, images=e["model"] == LENET)
        base = {"dataset": ds, "hidden_layers": e["hidden_layers"], "seed": seed,
                "n_train": int(len(data["X_train"])),
                "n_features": int(np.prod(data["X_train"].shape[1:]))}
        if e["model"] == LENET:
            base["model"] = LENET
        for opt in GD:
            r = mh.run_gradient(data, hidden, opt, seed=seed, epochs=e["epochs"])
            rec["runs"].append({**base, **r})
            print(f"[{time.perf_counter() - t_all:7.1f}s] {ds} {label} seed={seed} "
                  f"{r['method']:14} {r['test']} ({r['seconds']:.1f}s)", flush=True)
        for m in mh.MH_METHODS:
            r = mh.run_metaheuristic(data, hidden, m, e["mh_max_evals"], seed=seed,
                                     popsize=e["popsize"], checkpoints=e["checkpoints"])
            rec["runs"].append({**base, **r})
            print(f"[{time.perf_counter() - t_all:7.1f}s] {ds} {label} seed={seed} "
                  f"{r['method']:14} {r['test']} ({r['seconds']:.1f}s)", flush=True)
        meta_time["total_seconds"] = time.perf_counter() - t_all
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rec, indent=1, default=float))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run of a minute or two")
    ap.add_argument("--lenet5-only", action="store_true",
                    help="run only the LeNet-5 entries and merge them into --out "
                         "(which must hold a record), replacing earlier LeNet-5 runs")
    ap.add_argument("--no-lenet5", action="store_true",
                    help="a new record without the LeNet-5 entries (add them with "
                         "--lenet5-only afterwards)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    if args.lenet5_only and args.no_lenet5:
        ap.error("--lenet5-only and --no-lenet5 exclude each other")
    out = pathlib.Path(args.out)
    todo = plan(args.quick, args.lenet5_only, args.no_lenet5)
    t_all = time.perf_counter()
    if args.lenet5_only:
        if not out.exists():
            ap.error(f"--lenet5-only merges into an existing record; {out} does not exist "
                     f"(run without --lenet5-only first)")
        rec = json.loads(out.read_text())
        rec["runs"] = [r for r in rec["runs"] if r.get("model") != LENET]
        meta = rec["meta"]
        meta["plan"] = [p for p in meta["plan"] if p.get("model") != LENET] + todo
        meta["notes"] = [n for n in meta.get("notes", []) if not n.startswith("LeNet-5")] \
            + LENET_NOTES
        meta.setdefault("models", {})["lenet5"] = "nnbook.lenet.LeNet5(batch_norm=True)"
        meta["lenet5"] = environment(argv)
        meta_time = meta["lenet5"]
    else:
        rec = new_record(argv, args.quick, args.no_lenet5)
        meta_time = rec["meta"]
    for e in todo:
        run_entry(e, rec, out, t_all, meta_time)
    print(f"wrote {out} ({time.perf_counter() - t_all:.0f} s)")


if __name__ == "__main__":
    main()
