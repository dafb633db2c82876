"""CPU scale: NumPy SGEMM throughput over sizes (the practical peak the book quotes).

``python -m nnbook bench peak [--threads 2] [--out FILE]``

For each n in 256 … 2048, times C = A @ B (float32, n×n) ``--repeats`` times
after a warm-up and reports the median GFLOP/s (2n³ FLOPs per product).
"""
from __future__ import annotations

import argparse
import time

from ._util import limit_threads, machine, median, stamp, write_json


def main(argv=()):
    p = argparse.ArgumentParser(prog="python -m nnbook bench peak",
                                description="NumPy SGEMM GFLOP/s over sizes")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--sizes", default="256,512,1024,2048")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    limit_threads(args.threads)
    import numpy as np  # noqa: PLC0415
    rng = np.random.default_rng(0)
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        A = rng.standard_normal((n, n), dtype=np.float32)
        B = rng.standard_normal((n, n), dtype=np.float32)
        C = np.empty((n, n), np.float32)
        reps = max(args.repeats, int(2e9 // (2 * n**3)))
        np.matmul(A, B, out=C)
        ts = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            for _ in range(max(1, reps // args.repeats)):
                np.matmul(A, B, out=C)
            ts.append((time.perf_counter() - t) / max(1, reps // args.repeats))
        g = 2 * n**3 / median(ts) / 1e9
        rows.append({"n": n, "median_s": median(ts), "gflops": g})
        print(f"n={n:5d}  {g:7.1f} GFLOP/s")
    res = {"benchmark": "numpy_sgemm", "threads": args.threads, "rows": rows, **machine(), **stamp()}
    if args.out:
        write_json(args.out, res)
    return 0
