"""Exercises of the chapter "GPU adaptation" (index arithmetic and cost models)."""
import numpy as np

from ..exercises import register


def thread_to_element(bx, by, bdx, bdy, tx, ty):
    """(row, col) of C computed by a thread of the coalesced SGEMM (kernel v2):
    x runs along columns, y along rows."""
    return (by * bdy + ty, bx * bdx + tx)


def _index_cases(rng):
    cases = [(0, 0, 32, 8, 0, 0), (1, 0, 32, 8, 31, 0), (0, 3, 16, 16, 5, 15),
             (2, 5, 4, 4, 3, 1)]
    for _ in range(6):
        bdx, bdy = int(rng.integers(1, 33)), int(rng.integers(1, 33))
        cases.append((int(rng.integers(0, 50)), int(rng.integers(0, 50)), bdx, bdy,
                      int(rng.integers(0, bdx)), int(rng.integers(0, bdy))))
    return cases


register(
    "gpu.thread_to_element",
    "thread_to_element(bx, by, bdx, bdy, tx, ty) -> (row, col): the element of C a thread of "
    "the coalesced SGEMM computes, where threadIdx.x runs along the columns of C.",
    reference=thread_to_element,
    cases=_index_cases,
    wrong=lambda bx, by, bdx, bdy, tx, ty: (bx * bdx + tx, by * bdy + ty),   # naive v1 mapping
)


def num_blocks(M, N, BM, BN):
    """Blocks of BM x BN outputs that cover an M x N matrix (ragged edges included)."""
    return (-(-M // BM)) * (-(-N // BN))


register(
    "gpu.num_blocks",
    "num_blocks(M, N, BM, BN): how many thread blocks, each computing a BM x BN tile of C, "
    "a launch needs to cover an M x N output when M and N need not be multiples of the tile.",
    reference=num_blocks,
    cases=lambda rng: [(128, 128, 128, 128), (1, 1, 128, 128), (129, 128, 128, 128),
                       (33, 7, 8, 8), (1000, 777, 64, 32), (8192, 8192, 128, 128)]
    + [tuple(int(v) for v in rng.integers(1, 300, 2)) + (16, 8) for _ in range(4)],
    wrong=lambda M, N, BM, BN: (M // BM) * (N // BN),                          # drops the edges
)


def gemm_intensity(M, N, K, itemsize=4):
    """FLOPs per byte of C = A @ B when A and B are read once and C written once."""
    return 2.0 * M * N * K / (itemsize * (M * K + K * N + M * N))


register(
    "gpu.gemm_intensity",
    "gemm_intensity(M, N, K, itemsize=4): arithmetic intensity (FLOP/byte) of an (M,K)@(K,N) "
    "product that reads A and B once and writes C once (a multiply-add counts as 2 FLOPs).",
    reference=gemm_intensity,
    cases=lambda rng: [(1024, 1024, 1024), (128, 256, 784), (1, 4096, 4096),
                       (8192, 8192, 8192, 2), (128, 10, 128)]
    + [tuple(int(v) for v in rng.integers(1, 2000, 3)) for _ in range(3)],
    wrong=lambda M, N, K, itemsize=4: M * N * K / (itemsize * (M * K + K * N + M * N)),
    rtol=1e-9,
)


def roofline(intensity, peak_flops, bandwidth):
    """Attainable FLOP/s of a kernel of the given arithmetic intensity (roofline model)."""
    return np.minimum(peak_flops, np.asarray(intensity, dtype=np.float64) * bandwidth)


register(
    "gpu.roofline",
    "roofline(intensity, peak_flops, bandwidth): the attainable FLOP/s, min(peak, I * B), "
    "elementwise for an array of arithmetic intensities I (FLOP/byte).",
    reference=roofline,
    cases=lambda rng: [(np.array([0.25, 1.0, 20.0, 1000.0]), 67e12, 3.35e12),
                       (np.array([0.0]), 1e12, 1e11), (rng.uniform(0, 100, 7), 67e12, 3.35e12)],
    wrong=lambda intensity, peak_flops, bandwidth: np.maximum(peak_flops,
                                                              np.asarray(intensity) * bandwidth),
    rtol=1e-12,
)
