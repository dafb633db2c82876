"""Recorded results (JSON) that the book renders: benchmarks and long training runs.

Each file records the machine, library versions, date and the command that
produced it.  ``load(name)`` returns the parsed file or ``None`` if that run
has not been recorded (for example GPU results on a machine without a GPU).
"""
from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent

# name -> (what it is, the command that produces it)
CATALOGUE = {
    "cpu_peak": ("NumPy SGEMM GFLOP/s over sizes (CPU scale)",
                 "python -m nnbook bench peak --out nnbook/results/cpu_peak.json"),
    "bench_mlp": ("MLP epoch, nnbook vs PyTorch CPU",
                  "python -m nnbook bench mlp --rounds 7 --out nnbook/results/bench_mlp.json"),
    "mlp_mnist": ("784-256-128-10 MLP, full MNIST run",
                  "python benchmarks/record_mlp_mnist.py"),
    "bench_lenet5": ("LeNet-5 pass over 10k images, nnbook vs PyTorch CPU",
                     "python -m nnbook bench lenet5 --out nnbook/results/bench_lenet5.json"),
    "lenet5_mnist": ("LeNet-5 full MNIST run", "python benchmarks/record_lenet5.py"),
    "resnet_mnist": ("ResNet-15, ResNet-57 and LeNet-5 on 10k MNIST digits, 5 epochs",
                     "python benchmarks/record_resnet.py"),
    "bench_resnet": ("ResNet-15 pass over 1,024 digits, nnbook vs PyTorch CPU",
                     "python -m nnbook bench resnet --rounds 9 "
                     "--out nnbook/results/bench_resnet.json"),
    "gpu_dense": ("own dense GPU kernels vs cuBLAS, MLP on GPU",
                  "python -m nnbook bench gpu"),
    "cudnn": ("own convolution kernels vs cuDNN", "python -m nnbook bench cudnn"),
    "optimizers_mnist": ("optimizers compared on MNIST", "python benchmarks/record_optimizers.py"),
    "metaheuristics": ("metaheuristics vs gradient descent",
                       "python benchmarks/record_metaheuristics.py"),
    "resnet_optimizers": ("SGD, NAG, RMSProp and Adam on ResNet-15, 1,000 MNIST digits",
                          "python benchmarks/record_resnet_optimizers.py"),
    "resnet_metaheuristics": ("SHADE family vs gradient descent on ResNet-15, 256 digits",
                              "python benchmarks/record_resnet_metaheuristics.py"),
    "distributed": ("data-parallel MLP training over MPI, 1/2/4 processes; allreduce bandwidth",
                    "python -m nnbook bench distributed --out nnbook/results/distributed.json"),
}


def path(name: str) -> Path:
    return HERE / f"{name}.json"


def load(name: str):
    """The recorded results called ``name`` (see ``CATALOGUE``), or None if absent."""
    p = path(name)
    if not p.exists():
        return None
    return json.loads(p.read_text())


def available():
    return sorted(p.stem for p in HERE.glob("*.json"))
