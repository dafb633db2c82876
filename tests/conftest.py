"""Shared test configuration.

* Without a working GPU, numba-cuda kernels run in the CUDA simulator
  (``NUMBA_ENABLE_CUDASIM=1`` is set here, before numba.cuda is imported).
* Tests marked ``gpu`` and notebook cells tagged ``gpu`` are skipped without a GPU.
* Hypothesis runs a bounded, deterministic number of examples.
"""
import os

import pytest

from nnbook.backend import gpu_available

HAS_GPU = gpu_available()
if not HAS_GPU:
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

try:
    from hypothesis import HealthCheck, settings
    settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # pragma: no cover
    pass


def pytest_collection_modifyitems(config, items):
    if HAS_GPU:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
            continue
        cell = getattr(item, "cell", None)  # nbval notebook cells
        if cell is not None and "gpu" in cell.get("metadata", {}).get("tags", []):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _numpy_backend_and_seed():
    """Every test starts on the NumPy backend, float32 default, seeded."""
    import nnbook as nb
    nb.use("numpy")
    nb.set_default_dtype("float32")
    nb.seed(0)
    yield
    nb.use("numpy")
    nb.set_default_dtype("float32")
