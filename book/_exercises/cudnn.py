"""Reference answers of the exercises of "Comparison with cuDNN and cuBLAS" (``cudnn.*``)."""
import numpy as np

from nnbook.exercises.build import Solution
from nnbook.kernels import cuda


def conv_flops(N, C, H, W, K, R, S, stride, padding):
    P = (H + 2 * padding - R) // stride + 1
    Q = (W + 2 * padding - S) // stride + 1
    return 2 * N * K * P * Q * C * R * S


def intensity(N, C, H, W, K, R, S, stride, padding):
    P = (H + 2 * padding - R) // stride + 1
    Q = (W + 2 * padding - S) // stride + 1
    flops = 2 * N * K * P * Q * C * R * S
    return flops / (4 * (N * C * H * W + K * C * R * S + N * K * P * Q))


def winograd_multiplies(m, r):
    return np.array([m * m * r * r, (m + r - 1) ** 2])


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


def _intensity_no_weights(N, C, H, W, K, R, S, stride, padding):
    P = (H + 2 * padding - R) // stride + 1
    Q = (W + 2 * padding - S) // stride + 1
    return conv_flops(N, C, H, W, K, R, S, stride, padding) / (4 * (N * C * H * W + N * K * P * Q))


@cuda.jit
def maxpool2x2(x, y):
    i = cuda.grid(1)
    N, C, P, Q = y.shape
    if i < N * C * P * Q:
        q = i % Q                      # the last index varies fastest: coalesced writes
        p = (i // Q) % P
        c = (i // (P * Q)) % C
        n = i // (C * P * Q)
        m = x[n, c, 2 * p, 2 * q]
        for r in range(2):
            for s in range(2):
                v = x[n, c, 2 * p + r, 2 * q + s]
                if v > m:
                    m = v
        y[n, c, p, q] = m


@cuda.jit
def _maxpool_from_zero(x, y):          # a running maximum that starts at 0
    i = cuda.grid(1)
    N, C, P, Q = y.shape
    if i < N * C * P * Q:
        q, p = i % Q, (i // Q) % P
        c, n = (i // (P * Q)) % C, i // (C * P * Q)
        m = 0.0
        for r in range(2):
            for s in range(2):
                m = max(m, x[n, c, 2 * p + r, 2 * q + s])
        y[n, c, p, q] = m


@cuda.jit
def _maxpool_no_bounds(x, y):          # no `if i < total`: the last block's extra threads run
    i = cuda.grid(1)
    N, C, P, Q = y.shape
    q, p = i % Q, (i // Q) % P
    c, n = (i // (P * Q)) % C, i // (C * P * Q)
    m = x[n, c, 2 * p, 2 * q]
    for r in range(2):
        for s in range(2):
            m = max(m, x[n, c, 2 * p + r, 2 * q + s])
    y[n, c, p, q] = m


@cuda.jit
def _maxpool_stride_one(x, y):         # windows moved by 1, not 2
    i = cuda.grid(1)
    N, C, P, Q = y.shape
    if i < N * C * P * Q:
        q, p = i % Q, (i // Q) % P
        c, n = (i // (P * Q)) % C, i // (C * P * Q)
        m = x[n, c, p, q]
        for r in range(2):
            for s in range(2):
                m = max(m, x[n, c, p + r, q + s])
        y[n, c, p, q] = m


def _pool_cases(rng):
    f = np.float32
    return [rng.normal(size=(1, 1, 2, 2)).astype(f),
            rng.normal(size=(1, 1, 3, 3)).astype(f),                        # odd: a row and a column left out
            rng.normal(size=(2, 3, 5, 4)).astype(f),
            rng.normal(size=(1, 2, 7, 9)).astype(f),
            -rng.random(size=(3, 1, 4, 6)).astype(f) - 1,                   # every value negative
            rng.integers(0, 3, size=(1, 1, 6, 6)).astype(f),                # ties
            np.array([[[[-np.inf, -1.0], [-2.0, -np.inf]]]], f)]            # -inf is a value too


SOLUTIONS = {
    "cudnn.conv_flops": Solution(
        conv_flops, _layer_cases,
        wrong={"the input size, not the output size":
                   lambda N, C, H, W, K, R, S, stride, padding: 2 * N * K * H * W * C * R * S}),
    "cudnn.intensity": Solution(
        intensity, _layer_cases,
        wrong={"forgets the weights' traffic": _intensity_no_weights}),
    "cudnn.winograd": Solution(
        winograd_multiplies,
        lambda rng: [(2, 3), (4, 3), (6, 3), (1, 1), (3, 5), (2, 2)]
        + [(int(rng.integers(1, 9)), int(rng.integers(1, 8))) for _ in range(3)],
        wrong={"the 1-D counts F(m, r)": lambda m, r: np.array([m * r, m + r - 1])}),
    "cudnn.maxpool2x2_kernel": Solution(
        maxpool2x2, lambda rng: [(x,) for x in _pool_cases(rng)],
        wrong={"a running maximum that starts at 0": _maxpool_from_zero,
               "no bounds check": _maxpool_no_bounds,
               "windows moved by 1, not 2": _maxpool_stride_one}),
}
