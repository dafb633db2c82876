"""Hand-written CUDA kernels for the dense network, in numba-cuda.

One file per operation, in the style of llm.c's ``dev/cuda``: each module has a
NumPy reference, numbered kernel versions, a ``check(version, ...)`` that
compares a version with the reference, and a ``benchmark(...)`` for a GPU.

Without a working GPU the package switches numba to its CUDA *simulator*
(``NUMBA_ENABLE_CUDASIM=1``) **before** ``numba.cuda`` is imported, so every
kernel can still be imported and run -- slowly, one Python thread per CUDA
thread -- on tiny shapes.  :func:`on_simulator` says which mode is active.
On the simulator, kernels take NumPy arrays; on a GPU, CuPy arrays (numba reads
them without a copy through ``__cuda_array_interface__``).

Environment variables:

* ``NNBOOK_KERNELS_SIM=1``: force the simulator even when a GPU works;
* ``NNBOOK_KERNELS_SIM=0``: force the real CUDA target even without a GPU (only
  compiling works then: ``python -m nnbook.kernels._ptx``);
* ``NUMBA_ENABLE_CUDASIM``: respected if the user already set it.

Convolution kernels (``conv*.py``, ``pool*.py``, ``im2col*.py``) live in this
package too but are not imported here.
"""
from __future__ import annotations

import os
import sys

from ..backend import gpu_available as _gpu_available


def _decide_simulator() -> bool:
    if "numba.cuda" in sys.modules:  # too late to choose: report what numba did
        from numba.cuda.core import config  # noqa: PLC0415
        return bool(config.ENABLE_CUDASIM)
    force = os.environ.get("NNBOOK_KERNELS_SIM", "")
    if force == "0":   # real CUDA target even without a GPU (to compile PTX, see _ptx.py)
        os.environ["NUMBA_ENABLE_CUDASIM"] = "0"
        return False
    if force:
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
        return True
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "") not in ("", "0"):
        return True
    if _gpu_available():
        os.environ["NUMBA_ENABLE_CUDASIM"] = "0"
        return False
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    return True


_SIMULATOR = _decide_simulator()
# numba and CuPy both launch on the legacy default stream here, which already
# orders their work: the extra synchronisation numba would do on every foreign
# (CuPy) array only adds launch latency.
os.environ.setdefault("NUMBA_CUDA_ARRAY_INTERFACE_SYNC", "0")

from numba import cuda  # noqa: E402  (must come after the environment is set)


def on_simulator() -> bool:
    """True when kernels run in numba's CUDA simulator (no working GPU)."""
    return _SIMULATOR


__all__ = ["cuda", "on_simulator"]
