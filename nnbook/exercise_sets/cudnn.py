"""Exercises of the chapter "Comparison with cuDNN and cuBLAS" (the checks; the stored
cases are in ``nnbook/exercise_data/cudnn.*``)."""
from ..exercises import register
from . import _kernel

register(
    "cudnn.conv_flops",
    "Return the FLOPs of one convolution forward pass (a multiply-add counts 2) for input "
    "(N, C, H, W), K filters of R×S, the given stride and zero padding.",
    rtol=0, atol=0,
)

register(
    "cudnn.intensity",
    "Return the arithmetic intensity (FLOP/byte) of a float32 convolution layer, counting only "
    "compulsory traffic: read x and w once, write y once.",
    rtol=1e-12, atol=0,
)

register(
    "cudnn.winograd",
    "For Winograd's F(m×m, r×r) return the multiplications per m×m output tile and channel: "
    "[direct, Winograd] (the transforms' additions are not counted).",
    rtol=0, atol=0,
)


# --- a kernel: 2x2 max pooling, one thread per output ---------------------------------------
def _launch_maxpool(kernel, args):
    (x,) = args
    N, C, H, W = x.shape
    shape = (N, C, H // 2, W // 2)
    total = N * C * (H // 2) * (W // 2)
    block = _kernel.block_1d()
    return _kernel.launch(kernel, (max(1, -(-total // block)),), (block,), [x], shape,
                          guard=block)


register(
    "cudnn.maxpool2x2_kernel",
    "Write a numba-cuda kernel maxpool2x2(x, y) (decorate it with @cuda.jit, from "
    "nnbook.kernels import cuda): 2x2 max pooling with stride 2 of x (N, C, H, W) float32 "
    "into y (N, C, H // 2, W // 2) -- an odd last row or column is left out, as in PyTorch. "
    "One thread per output element on a 1-D grid: thread i = cuda.grid(1) computes the "
    "output whose flat (C-order) index is i, so consecutive threads write consecutive "
    "elements of a row. The check launches ceil(total / B) blocks of B threads (B = 8 on "
    "the simulator, 256 on a GPU), so some threads fall beyond the last output and must "
    "do nothing.",
    call=_launch_maxpool,
    compare=lambda got, want, args: _kernel.compare(got, want, what="y"),
    show_args=lambda args: f"x {_kernel.shapes(args)}",
)
