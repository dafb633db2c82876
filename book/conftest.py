"""nbval: skip notebook cells tagged ``gpu`` when no CUDA GPU works.

nbval has no in-notebook skip, so this hook does it; a cell that reuses a
skipped cell's variables must carry the same tag.
"""
import os

import pytest

from nnbook.backend import gpu_available

HAS_GPU = gpu_available()
if not HAS_GPU:
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")


def pytest_collection_modifyitems(config, items):
    if HAS_GPU:
        return
    skip = pytest.mark.skip(reason="GPU cell: needs a CUDA GPU")
    for item in items:
        cell = getattr(item, "cell", None)
        if cell is not None and "gpu" in cell.get("metadata", {}).get("tags", []):
            item.add_marker(skip)
