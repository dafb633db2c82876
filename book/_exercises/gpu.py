"""Reference answers of the exercises of "GPU adaptation" (``gpu.*``)."""
import numpy as np

from nnbook.exercises.build import Solution
from nnbook.kernels import cuda


def thread_to_element(bx, by, bdx, bdy, tx, ty):
    return (by * bdy + ty, bx * bdx + tx)


def _index_cases(rng):
    cases = [(0, 0, 32, 8, 0, 0), (1, 0, 32, 8, 31, 0), (0, 3, 16, 16, 5, 15),
             (2, 5, 4, 4, 3, 1)]
    for _ in range(6):
        bdx, bdy = int(rng.integers(1, 33)), int(rng.integers(1, 33))
        cases.append((int(rng.integers(0, 50)), int(rng.integers(0, 50)), bdx, bdy,
                      int(rng.integers(0, bdx)), int(rng.integers(0, bdy))))
    return cases


def num_blocks(M, N, BM, BN):
    return (-(-M // BM)) * (-(-N // BN))


def gemm_intensity(M, N, K, itemsize=4):
    return 2.0 * M * N * K / (itemsize * (M * K + K * N + M * N))


def roofline(intensity, peak_flops, bandwidth):
    return np.minimum(peak_flops, np.asarray(intensity, dtype=np.float64) * bandwidth)


def _roofline_cases(rng):
    return [(np.array([0.25, 1.0, 20.0, 1000.0]), 67e12, 3.35e12),
            (np.array([0.0]), 1e12, 1e11),
            (rng.uniform(0, 100, 7), 67e12, 3.35e12),
            (np.array([20.0, 20.0]), 67e12, 3.35e12),                        # exactly at the ridge
            ([0.5, 50.0], 19.5e12, 1.6e12)]                                  # a list works too


@cuda.jit
def bias_relu(Z, b, out):
    c = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x      # x along the columns
    r = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    if r < out.shape[0] and c < out.shape[1]:
        z = Z[r, c] + b[c]
        out[r, c] = z if z > 0 else 0.0


@cuda.jit
def _bias_relu_naive_mapping(Z, b, out):   # x along the rows: the grid no longer covers out
    r = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    c = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    if r < out.shape[0] and c < out.shape[1]:
        out[r, c] = max(Z[r, c] + b[c], 0.0)


@cuda.jit
def _bias_relu_no_bounds(Z, b, out):       # threads beyond the matrix write too
    c = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    r = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    out[r, c] = max(Z[r, c] + b[c], 0.0)


@cuda.jit
def _bias_by_row(Z, b, out):               # the bias indexed by the row
    c = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    r = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    if r < out.shape[0] and c < out.shape[1]:
        out[r, c] = max(Z[r, c] + b[r % b.shape[0]], 0.0)


def _bias_relu_cases(rng):
    f = np.float32
    return [(rng.normal(size=(s)).astype(f), rng.normal(size=s[1]).astype(f))
            for s in ((1, 1), (3, 5), (4, 4), (7, 9), (9, 4), (2, 17), (13, 3))]


SOLUTIONS = {
    "gpu.thread_to_element": Solution(
        thread_to_element, _index_cases,
        wrong={"the naive v1 mapping": lambda bx, by, bdx, bdy, tx, ty: (bx * bdx + tx, by * bdy + ty)}),
    "gpu.num_blocks": Solution(
        num_blocks,
        lambda rng: [(128, 128, 128, 128), (1, 1, 128, 128), (129, 128, 128, 128),
                     (33, 7, 8, 8), (1000, 777, 64, 32), (8192, 8192, 128, 128)]
        + [tuple(int(v) for v in rng.integers(1, 300, 2)) + (16, 8) for _ in range(4)],
        wrong={"drops the ragged edges": lambda M, N, BM, BN: (M // BM) * (N // BN)}),
    "gpu.gemm_intensity": Solution(
        gemm_intensity,
        lambda rng: [(1024, 1024, 1024), (128, 256, 784), (1, 4096, 4096),
                     (8192, 8192, 8192, 2), (128, 10, 128)]
        + [tuple(int(v) for v in rng.integers(1, 2000, 3)) for _ in range(3)],
        wrong={"a multiply-add counted as one FLOP":
                   lambda M, N, K, itemsize=4: M * N * K / (itemsize * (M * K + K * N + M * N))}),
    "gpu.roofline": Solution(
        roofline, _roofline_cases,
        wrong={"max instead of min": lambda intensity, peak_flops, bandwidth:
                   np.maximum(peak_flops, np.asarray(intensity) * bandwidth)}),
    "gpu.bias_relu_kernel": Solution(
        bias_relu, _bias_relu_cases,
        wrong={"x along the rows (the naive mapping)": _bias_relu_naive_mapping,
               "no bounds check": _bias_relu_no_bounds,
               "the bias indexed by the row": _bias_by_row}),
}
