"""Record the chapter "Metaheuristics vs gradient descent": the source thesis's
experiment (§6) at a scale that runs on a 2-core CPU.

    python benchmarks/record_metaheuristics.py            # full record (~20-30 min)
    python benchmarks/record_metaheuristics.py --quick    # a smoke run (~1 min)

Writes ``nnbook/results/metaheuristics.json`` after every run (a partial file
survives an interruption).  BLAS is limited to one thread: the small batched
products of a population evaluation run 10-100x slower when two OpenBLAS
threads fight for a shared, busy machine.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
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

OUT = pathlib.Path(nb.__file__).parent / "results" / "metaheuristics.json"
GD = ("nag", "rmsprop", "adam")


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def plan(quick):
    """(dataset, hidden layers, seeds, MH budget in FEs, population size)."""
    if quick:
        return [("breast_cancer", 1, [42], 400, 10), ("diabetes", 1, [42], 400, 10)]
    p = []
    for ds in ("breast_cancer", "diabetes"):
        p += [(ds, 1, [42, 1, 2], 4000, 20), (ds, 2, [42, 1, 2], 4000, 20),
              (ds, 5, [42, 1, 2], 2000, 20), (ds, 11, [42], 200, 10)]
    p.append(("mnist", 2, [42, 1], 1000, 20))
    return p


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a one-minute smoke run")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out)
    rec = {"meta": {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{cpu_name()}, {os.cpu_count()} logical CPUs ({platform.system()} "
                   f"{platform.machine()})",
        "command": "python " + " ".join([sys.argv[0]] + (argv if argv is not None
                                                         else sys.argv[1:])),
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
                     "nnbook": nb.__version__},
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "gradient": {"optimizers": ["NAG", "RMSProp", "Adam"], "epochs": 20, "batch_size": 32,
                     "schedule": "one-cycle, max lr from the lr range test (valley point)",
                     "selection": "epoch with the lowest validation loss"},
        "metaheuristics": {
            "methods": list(mh.MH_METHODS), "checkpoints": 20, "lbfgsb_evals_per_ls": 100,
            "gd_local_search": "1 epoch of Adam (lr 1e-3, batch 32) per application",
            "evaluation": "1 FE = the loss over the whole training set; an epoch of "
                          "gradient steps or a value-and-gradient call counts as 1 FE",
            "selection": "checkpoint with the lowest validation loss"},
        "models": {str(k): v for k, v in mh.MLP_HIDDEN.items()},
        "notes": ["MLPs without BatchNorm (nnbook has none); thesis models have it",
                  "diabetes (scikit-learn) stands in for Boston housing",
                  "MNIST with an MLP 784-64-64-10 (about LeNet-5's 62k parameters): "
                  "the LeNet-5 layers were not available in nnbook when this was recorded",
                  "11 hidden layers: one seed and 200 FEs (time)"],
        "plan": [{"dataset": d, "hidden_layers": L, "seeds": s, "mh_max_evals": b,
                  "popsize": ps} for d, L, s, b, ps in plan(args.quick)],
    }, "runs": []}
    t_all = time.perf_counter()
    for ds, L, seeds, budget, popsize in plan(args.quick):
        for seed in seeds:
            data = mh.load_dataset(ds, seed=seed)
            hidden = mh.MLP_HIDDEN[L]
            base = {"dataset": ds, "hidden_layers": L, "seed": seed,
                    "n_train": int(len(data["X_train"])), "n_features": int(data["X_train"].shape[1])}
            for opt in GD:
                r = mh.run_gradient(data, hidden, opt, seed=seed)
                rec["runs"].append({**base, **r})
                print(f"[{time.perf_counter() - t_all:7.1f}s] {ds} L={L} seed={seed} "
                      f"{r['method']:14} {r['test']} ({r['seconds']:.1f}s)", flush=True)
            for m in mh.MH_METHODS:
                r = mh.run_metaheuristic(data, hidden, m, budget, seed=seed, popsize=popsize)
                rec["runs"].append({**base, **r})
                print(f"[{time.perf_counter() - t_all:7.1f}s] {ds} L={L} seed={seed} "
                      f"{r['method']:14} {r['test']} ({r['seconds']:.1f}s)", flush=True)
            rec["meta"]["total_seconds"] = time.perf_counter() - t_all
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(rec, indent=1, default=float))
    print(f"wrote {out} ({time.perf_counter() - t_all:.0f} s)")


if __name__ == "__main__":
    main()
