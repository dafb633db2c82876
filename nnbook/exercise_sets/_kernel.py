"""How a GPU-kernel exercise is checked: the student's ``@cuda.jit`` kernel is launched
on the stored inputs -- small, ragged shapes that no block size divides -- into an
output filled with NaN and followed by a NaN guard zone, so an element no thread wrote,
a write outside the output and a wrong value each get their own message.  Without a
GPU the launch runs in numba's CUDA simulator (as in CI); there a thread that indexes
outside an array raises IndexError.

Launch geometry: 2-D kernels get blocks of ``BLOCK_2D`` threads and
``(ceil(N / bx), ceil(M / by))`` blocks for an (M, N) output (x along the columns);
1-D kernels get ``BLOCK_1D`` threads per block and ``ceil(total / BLOCK_1D)`` blocks.
"""
from __future__ import annotations

import numpy as np

from ..exercises import ExerciseError


def block_2d():
    from ..kernels import on_simulator  # noqa: PLC0415  (imports numba: only when used)
    return (4, 4) if on_simulator() else (32, 8)


def block_1d():
    from ..kernels import on_simulator  # noqa: PLC0415
    return 8 if on_simulator() else 256


def _require_kernel(kernel):
    if not (hasattr(kernel, "py_func") and hasattr(type(kernel), "__getitem__")):
        raise ExerciseError("pass the kernel itself: a function decorated with @cuda.jit "
                            "(from nnbook.kernels import cuda)")


def launch(kernel, grid, block, inputs, out_shape, guard):
    """Run ``kernel[grid, block](*inputs, out)``; return the output on the host.  ``out`` is
    NaN-filled and followed by ``guard`` NaN elements that must stay NaN."""
    from ..kernels._common import poisoned, sync, to_device, to_host  # noqa: PLC0415
    _require_kernel(kernel)
    n = int(np.prod(out_shape))
    buf = poisoned((n + guard,))
    out = buf[:n].reshape(out_shape)
    try:
        kernel[grid, block](*[to_device(a) for a in inputs], out)
        sync()
    except IndexError as e:            # the simulator checks every index
        raise ExerciseError(f"a thread indexed outside an array ({e}); threads that fall "
                            f"outside the output must do nothing: check the bounds") from None
    host = to_host(buf)
    if not np.all(np.isnan(host[n:])):
        raise ExerciseError("your kernel wrote past the end of the output: threads that fall "
                            "outside it must not write (check the bounds)")
    return host[:n].reshape(out_shape).copy()


def compare(got, want, rtol=1e-6, atol=1e-7, what="out"):
    """Where the kernel's output differs: an element left unwritten, or a wrong value."""
    got = np.asarray(got)
    if got.shape != want.shape:
        raise ExerciseError(f"{what} has shape {got.shape}, expected {want.shape}")
    missing = np.isnan(got) & ~np.isnan(want)
    if missing.any():
        i = tuple(int(k[0]) for k in np.nonzero(missing))
        raise ExerciseError(f"{what}[{', '.join(map(str, i))}] was never written (still NaN): "
                            f"{int(missing.sum())} of {got.size} elements got no thread; is "
                            f"the mapping from threads to elements right?")
    bad = ~np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
    if bad.any():
        i = tuple(int(k[0]) for k in np.nonzero(bad))
        raise ExerciseError(f"{what}[{', '.join(map(str, i))}] = {float(got[i])!r}, expected "
                            f"{float(want[i])!r} ({int(bad.sum())} of {got.size} elements "
                            f"differ)")


def shapes(args):
    return ", ".join(f"{a.dtype}{tuple(a.shape)}" if isinstance(a, np.ndarray) else repr(a)
                     for a in args)
