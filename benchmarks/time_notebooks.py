"""Time how long each of the book's notebooks takes to run from top to bottom.

    python benchmarks/time_notebooks.py [NOTEBOOK ...] [--out nnbook/results/notebook_times.json]

Each notebook is executed once, as a reader's "Run all" would: a fresh kernel, every
cell in order.  ``seconds`` is the time to start the kernel plus the time the kernel
spent on each cell (from the cell's start to its end); ``wall_seconds`` also counts the
executing tool's own waits between cells (it waits for interactive widgets' messages,
up to its 300 s limit, where a reader's browser does not).
The notebooks are read from book/ and executed in memory (the files are not changed).
Without a working GPU, cells tagged ``gpu`` are skipped (their recorded outputs are what
the book shows) and the kernels run in numba's CUDA simulator, as in CI.  MNIST must be
in the cache (``python -m nnbook data fetch mnist``).  Writes the times, the 1-minute
load average before and after, the machine, the versions, the date and this command.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from nnbook.bench._util import machine, stamp, write_json  # noqa: E402


def run(path, has_gpu):
    import nbformat  # noqa: PLC0415
    from nbclient import NotebookClient  # noqa: PLC0415
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    skipped, cells = 0, 0.0
    t = time.perf_counter()
    with client.setup_kernel():
        start = time.perf_counter() - t                 # starting the kernel
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if not has_gpu and "gpu" in cell.metadata.get("tags", []):
                skipped += 1
                continue
            client.execute_cell(cell, i)
            e = cell.metadata.get("execution", {})
            if "iopub.status.busy" in e and "iopub.status.idle" in e:
                cells += (_t(e["iopub.status.idle"]) - _t(e["iopub.status.busy"])).total_seconds()
    return start + cells, time.perf_counter() - t, skipped


def _t(stamp):
    import datetime  # noqa: PLC0415
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("notebooks", nargs="*", help="default: every notebook of the book")
    p.add_argument("--out", default=str(ROOT / "nnbook" / "results" / "notebook_times.json"))
    args = p.parse_args(argv)
    from nnbook.backend import gpu_available  # noqa: PLC0415
    has_gpu = gpu_available()
    if not has_gpu:
        os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
    book = ROOT / "book"
    paths = [pathlib.Path(a).resolve() for a in args.notebooks] or sorted(
        q for q in book.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
    rows = []
    load_before = os.getloadavg()[0]
    for path in paths:
        seconds, wall, skipped = run(path, has_gpu)
        name = str(path.relative_to(book).with_suffix(""))
        rows.append({"notebook": name, "seconds": round(seconds, 1), "wall_seconds": round(wall, 1),
                     "gpu_cells_skipped": skipped})
        print(f"{name:32s} {seconds:7.1f} s" + (f"  ({skipped} GPU cells skipped)" if skipped else ""),
              flush=True)
    load_after = os.getloadavg()[0]
    print(f"load average (1 min): {load_before:.2f} before, {load_after:.2f} after")
    write_json(args.out, {**stamp(), **machine(), "gpu": has_gpu, "notebooks": rows,
                          "total_seconds": round(sum(r["seconds"] for r in rows), 1),
                          "load_average_1min": [load_before, load_after]})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
