"""Exercises of the chapter "GPU adaptation" -- index arithmetic, cost models and a
kernel (the checks; the stored cases are in ``nnbook/exercise_data/gpu.*``)."""
from ..exercises import register
from . import _kernel

register(
    "gpu.thread_to_element",
    "thread_to_element(bx, by, bdx, bdy, tx, ty) -> (row, col): the element of C a thread of "
    "the coalesced SGEMM computes, where threadIdx.x runs along the columns of C.",
)

register(
    "gpu.num_blocks",
    "num_blocks(M, N, BM, BN): how many thread blocks, each computing a BM x BN tile of C, "
    "a launch needs to cover an M x N output when M and N need not be multiples of the tile.",
)

register(
    "gpu.gemm_intensity",
    "gemm_intensity(M, N, K, itemsize=4): arithmetic intensity (FLOP/byte) of an (M,K)@(K,N) "
    "product that reads A and B once and writes C once (a multiply-add counts as 2 FLOPs).",
    rtol=1e-9,
)

register(
    "gpu.roofline",
    "roofline(intensity, peak_flops, bandwidth): the attainable FLOP/s, min(peak, I * B), "
    "elementwise for an array of arithmetic intensities I (FLOP/byte).",
    rtol=1e-12,
)


# --- a kernel: bias + ReLU, one thread per element ------------------------------------------
def _launch_bias_relu(kernel, args):
    Z, b = args
    M, N = Z.shape
    bx, by = _kernel.block_2d()
    grid = (max(1, -(-N // bx)), max(1, -(-M // by)))
    return _kernel.launch(kernel, grid, (bx, by), [Z, b], (M, N), guard=by * N + bx)


register(
    "gpu.bias_relu_kernel",
    "Write a numba-cuda kernel bias_relu(Z, b, out) (decorate it with @cuda.jit, from "
    "nnbook.kernels import cuda) that sets out[r, c] = max(Z[r, c] + b[c], 0) for Z and "
    "out of shape (M, N) and b of shape (N,), float32, with one thread per element: "
    "threadIdx.x and blockIdx.x along the columns (coalesced, as in SGEMM v2), .y along "
    "the rows. The check launches blocks of (BX, BY) threads -- (4, 4) on the simulator, "
    "(32, 8) on a GPU -- and ceil(N / BX) x ceil(M / BY) blocks; M and N are not multiples "
    "of the block, so threads outside the matrix must do nothing.",
    call=_launch_bias_relu,
    compare=lambda got, want, args: _kernel.compare(got, want, what="out"),
    show_args=lambda args: f"Z, b: {_kernel.shapes(args)}",
)
