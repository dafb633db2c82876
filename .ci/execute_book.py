"""Re-execute the book's notebooks in place, keeping what only a GPU can produce.

    python .ci/execute_book.py [NOTEBOOK ...]      (default: every notebook in book/)

Cells tagged ``gpu`` are not run without a CUDA GPU: their stored outputs (recorded on
a GPU, or the last run's) are kept, as nbval skips them too.  Without a GPU the
numba-cuda kernels run in the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``), as in the
tests.  Each cell has a 300 s limit; a failing cell stops that notebook and leaves the
file unchanged.
"""
from __future__ import annotations

import os
import pathlib
import sys

import nbformat
from nbclient import NotebookClient


def execute(path, has_gpu):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if not has_gpu and "gpu" in cell.metadata.get("tags", []):
                continue
            client.execute_cell(cell, i)
    nbformat.write(nb, path)


def main(argv):
    from nnbook.backend import gpu_available
    has_gpu = gpu_available()
    if not has_gpu:
        os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
    root = pathlib.Path(__file__).resolve().parent.parent
    paths = [pathlib.Path(a).resolve() for a in argv] or sorted(
        p for p in (root / "book").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    failed = []
    for p in paths:
        print(f"executing {p.relative_to(root)}", flush=True)
        try:
            execute(p, has_gpu)
        except Exception as e:  # noqa: BLE001 - report and go on with the next notebook
            failed.append(p)
            print(f"  FAILED: {type(e).__name__}: {str(e)[-2000:]}", flush=True)
    if failed:
        print("failed:", *[str(p.relative_to(root)) for p in failed])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
