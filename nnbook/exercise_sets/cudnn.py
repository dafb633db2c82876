"""Exercises of the chapter "Comparison with cuDNN and cuBLAS"."""
import numpy as np

from ..exercises import register
from ..kernels.conv2d import conv2d_flops


def _layer_cases(rng):
    """(N, C, H, W, K, R, S, stride, padding): LeNet, ResNet, strided, 1×1 and random layers."""
    cases = [(128, 1, 28, 28, 6, 5, 5, 1, 2), (128, 6, 14, 14, 16, 5, 5, 1, 0),
             (32, 64, 56, 56, 64, 3, 3, 1, 1), (32, 512, 7, 7, 512, 3, 3, 1, 1),
             (8, 3, 224, 224, 64, 7, 7, 2, 3), (4, 256, 14, 14, 1024, 1, 1, 1, 0),
             (1, 1, 5, 5, 1, 5, 5, 1, 0), (2, 3, 9, 8, 4, 3, 2, 2, 1)]
    for _ in range(4):
        r = int(rng.integers(1, 6))
        cases.append((int(rng.integers(1, 9)), int(rng.integers(1, 33)), int(rng.integers(r, 40)),
                      int(rng.integers(r, 40)), int(rng.integers(1, 33)), r, r, int(rng.integers(1, 3)),
                      int(rng.integers(0, 3))))
    return cases


def conv_layer_flops(N, C, H, W, K, R, S, stride, padding):
    """FLOPs of one forward pass: 2 per multiply-add."""
    return conv2d_flops((N, C, H, W), (K, C, R, S), stride, padding)


register(
    "cudnn.conv_flops",
    "Return the FLOPs of one convolution forward pass (a multiply-add counts 2) for input "
    "(N, C, H, W), K filters of R×S, the given stride and zero padding.",
    reference=conv_layer_flops,
    cases=_layer_cases,
    wrong=lambda N, C, H, W, K, R, S, stride, padding: 2 * N * K * H * W * C * R * S,  # input size, not output
    rtol=0, atol=0,
)


def conv_intensity(N, C, H, W, K, R, S, stride, padding):
    """FLOP per byte if x, w and y (float32) each cross device memory exactly once."""
    P = (H + 2 * padding - R) // stride + 1
    Q = (W + 2 * padding - S) // stride + 1
    nbytes = 4 * (N * C * H * W + K * C * R * S + N * K * P * Q)
    return conv_layer_flops(N, C, H, W, K, R, S, stride, padding) / nbytes


register(
    "cudnn.intensity",
    "Return the arithmetic intensity (FLOP/byte) of a float32 convolution layer, counting only "
    "compulsory traffic: read x and w once, write y once.",
    reference=conv_intensity,
    cases=_layer_cases,
    wrong=lambda N, C, H, W, K, R, S, stride, padding: (
        conv_layer_flops(N, C, H, W, K, R, S, stride, padding)
        / (4 * (N * C * H * W + N * K * ((H + 2 * padding - R) // stride + 1) * ((W + 2 * padding - S) // stride + 1)))),
    rtol=1e-12, atol=0,
)


def winograd_multiplies(m, r):
    """(direct, Winograd) multiplications for one m×m output tile of an r×r filter, F(m×m, r×r)."""
    return np.array([m * m * r * r, (m + r - 1) ** 2])


register(
    "cudnn.winograd",
    "For Winograd's F(m×m, r×r) return the multiplications per m×m output tile and channel: "
    "[direct, Winograd] (the transforms' additions are not counted).",
    reference=winograd_multiplies,
    cases=lambda rng: [(2, 3), (4, 3), (6, 3), (1, 1), (3, 5), (2, 2)]
    + [(int(rng.integers(1, 9)), int(rng.integers(1, 8))) for _ in range(3)],
    wrong=lambda m, r: np.array([m * r, m + r - 1]),     # the 1-D counts F(m, r)
    rtol=0, atol=0,
)
