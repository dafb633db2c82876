"""Benchmark suites: ``python -m nnbook bench <suite> [args]`` or
``python -m nnbook.bench <suite> [args]``.

Each suite is a module ``nnbook.bench.<suite>`` with a ``main(argv) -> int``.
Suites time a peer (PyTorch, cuBLAS, cuDNN) in the same process and report
medians of paired ratios, with the machine and library versions.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys


def suites():
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def run_suite(name, argv=()):
    if name not in suites():
        raise ValueError(f"suite: expected one of {suites()}, got {name!r}")
    return importlib.import_module(f"{__name__}.{name}").main(list(argv))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m nnbook.bench SUITE [args]\nsuites: " + ", ".join(suites()))
        return 0
    return run_suite(argv[0], argv[1:])
