"""SGEMM ``C = A @ B`` in float32: a NumPy reference and five CUDA kernels.

``A``: (M, K), ``B``: (K, N), ``C``: (M, N), all C-contiguous (row-major).

=======  ==============================================================  ==========
version  idea                                                            threads
=======  ==============================================================  ==========
0        the vendor: cuBLAS through ``cupy.matmul`` (NumPy on the sim.)  --
1        naive: one thread per output; ``threadIdx.x`` walks *rows*      per C elem
2        coalesced: ``threadIdx.x`` walks *columns* (warps read B/C      per C elem
         rows contiguously)
3        shared-memory tiles: a block stages TS×TS tiles of A and B      per C elem
4        2-D register blocking: a block computes BM×BN from BM×BK and    BM·BN/(TM·TN)
         BK×BN shared tiles; each thread a TM×TN micro-tile in registers
5        v4 + A tile stored transposed (k-major) + double buffering:     as v4
         the next tile is loaded while the current one is multiplied
=======  ==============================================================  ==========

Every version handles ragged edges (M, N, K not multiples of any tile): loads
outside the matrices read 0, stores outside are skipped.

Tile sizes are compile-time constants: :func:`kernel` builds (and caches) a
kernel per configuration.  :data:`GPU_CONFIG` holds the sizes meant for a real
GPU; :data:`SIM_CONFIG` much smaller ones, so that the simulator (one Python
thread per CUDA thread) finishes on tiny inputs in well under a second while
still exercising several blocks and partial tiles.

>>> import numpy as np
>>> from nnbook.kernels import matmul
>>> err = matmul.check(4, 7, 17, 33)        # M, N, K
>>> err < 1e-5
True

Also here: :func:`transpose` (a tiled shared-memory transpose), used by the
dense layer's backward pass for ``X^T dZ`` and ``dZ W^T``.
"""
from __future__ import annotations

import functools

import numpy as np
from numba import float32

from ._common import (assert_close, cdiv, cuda, on_simulator, poisoned, random_array,
                      time_kernel, to_device, xp)

__all__ = ["reference", "matmul", "check", "benchmark", "transpose", "kernel", "VERSIONS",
           "GPU_CONFIG", "SIM_CONFIG", "config_for", "flops", "min_bytes", "tolerance"]

VERSIONS = (0, 1, 2, 3, 4, 5)
DEFAULT_VERSION = 5

#: tile sizes on a GPU (siboehm's SGEMM worklog uses the same shapes for v4/v5)
GPU_CONFIG = {
    1: {"block": (16, 16)},
    2: {"block": (32, 8)},
    3: {"TS": 32},
    4: {"BM": 128, "BN": 128, "BK": 8, "TM": 8, "TN": 8},
    5: {"BM": 128, "BN": 128, "BK": 8, "TM": 8, "TN": 8},
    "transpose": {"TILE": 32, "ROWS": 8},
}
#: tiny tiles for the simulator: many blocks and ragged tiles on tiny matrices
SIM_CONFIG = {
    1: {"block": (4, 4)},
    2: {"block": (4, 4)},
    3: {"TS": 4},
    4: {"BM": 8, "BN": 8, "BK": 4, "TM": 2, "TN": 2},
    5: {"BM": 8, "BN": 8, "BK": 4, "TM": 2, "TN": 2},
    "transpose": {"TILE": 4, "ROWS": 2},
}


def config_for(version, config=None) -> dict:
    """The tile configuration used for ``version``: ``config`` if given, else the
    GPU or simulator default."""
    if config is not None:
        return dict(config)
    return dict((SIM_CONFIG if on_simulator() else GPU_CONFIG)[version])


def flops(M, N, K) -> int:
    """Floating-point operations of one GEMM: a multiply and an add per (m, n, k)."""
    return 2 * M * N * K


def min_bytes(M, N, K, itemsize=4) -> int:
    """Fewest bytes through device memory: read A and B once, write C once."""
    return itemsize * (M * K + K * N + M * N)


def tolerance(K) -> float:
    """Accepted ‖C − C_ref‖/‖C_ref‖ for float32 with a float64 reference.
    Rounding errors of a K-term sum grow like sqrt(K)·2^-24."""
    return max(1e-5, 2e-7 * np.sqrt(K))


def reference(A, B) -> np.ndarray:
    """C = A @ B on the host, accumulated in float64 (returned as float64)."""
    return np.asarray(A, dtype=np.float64) @ np.asarray(B, dtype=np.float64)


# ----------------------------------------------------------------------------- kernels
def _make_v1(block):
    @cuda.jit
    def matmul_v1(A, B, C, M, N, K):
        # naive: x (the fast thread index) -> row.  Neighbouring threads of a warp
        # read A[row, k] K floats apart and write C N floats apart: uncoalesced.
        row = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        col = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
        if row < M and col < N:
            acc = float32(0.0)
            for k in range(K):
                acc += A[row, k] * B[k, col]
            C[row, col] = acc

    def launch(A, B, C, M, N, K):
        grid = (cdiv(M, block[0]), cdiv(N, block[1]))
        matmul_v1[grid, block](A, B, C, M, N, K)
    launch.kernel = matmul_v1
    return launch


def _make_v2(block):
    @cuda.jit
    def matmul_v2(A, B, C, M, N, K):
        # coalesced: x -> column.  A warp reads one A element (a broadcast) and
        # 32 consecutive B elements, and writes 32 consecutive C elements.
        col = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        row = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
        if row < M and col < N:
            acc = float32(0.0)
            for k in range(K):
                acc += A[row, k] * B[k, col]
            C[row, col] = acc

    def launch(A, B, C, M, N, K):
        grid = (cdiv(N, block[0]), cdiv(M, block[1]))
        matmul_v2[grid, block](A, B, C, M, N, K)
    launch.kernel = matmul_v2
    return launch


def _make_v3(TS):
    @cuda.jit
    def matmul_v3(A, B, C, M, N, K):
        # shared-memory tiles: each A and B element is read from global memory
        # once per block instead of once per thread (TS times fewer reads).
        As = cuda.shared.array((TS, TS), float32)
        Bs = cuda.shared.array((TS, TS), float32)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        row = cuda.blockIdx.y * TS + ty
        col = cuda.blockIdx.x * TS + tx
        acc = float32(0.0)
        for k0 in range(0, K, TS):
            ka = k0 + tx
            As[ty, tx] = A[row, ka] if (row < M and ka < K) else float32(0.0)
            kb = k0 + ty
            Bs[ty, tx] = B[kb, col] if (kb < K and col < N) else float32(0.0)
            cuda.syncthreads()                  # the tiles are complete
            for kk in range(TS):
                acc += As[ty, kk] * Bs[kk, tx]  # As: broadcast, Bs: consecutive banks
            cuda.syncthreads()                  # everyone is done before overwriting
        if row < M and col < N:
            C[row, col] = acc

    def launch(A, B, C, M, N, K):
        matmul_v3[(cdiv(N, TS), cdiv(M, TS)), (TS, TS)](A, B, C, M, N, K)
    launch.kernel = matmul_v3
    return launch


def _make_v4(BM, BN, BK, TM, TN):
    NTX = BN // TN            # threads along a block row
    NT = (BM // TM) * NTX     # threads per block
    if BM % TM or BN % TN:
        raise ValueError(f"config: BM % TM and BN % TN must be 0, got {BM, BN, TM, TN}")

    @cuda.jit
    def matmul_v4(A, B, C, M, N, K):
        # 2-D register blocking: each thread keeps a TM×TN block of C in registers
        # and, per k, multiplies a column of TM A values by a row of TN B values:
        # TM+TN shared-memory reads for TM·TN fused multiply-adds.
        As = cuda.shared.array((BM, BK), float32)
        Bs = cuda.shared.array((BK, BN), float32)
        acc = cuda.local.array((TM, TN), float32)
        ra = cuda.local.array(TM, float32)
        rb = cuda.local.array(TN, float32)
        tid = cuda.threadIdx.x
        trow = tid // NTX
        tcol = tid % NTX
        bm = cuda.blockIdx.y * BM
        bn = cuda.blockIdx.x * BN
        for i in range(TM):
            for j in range(TN):
                acc[i, j] = float32(0.0)
        for k0 in range(0, K, BK):
            for e in range(tid, BM * BK, NT):   # cooperative, zero-padded loads
                r = e // BK
                c = e % BK
                gr = bm + r
                gc = k0 + c
                As[r, c] = A[gr, gc] if (gr < M and gc < K) else float32(0.0)
            for e in range(tid, BK * BN, NT):
                r = e // BN
                c = e % BN
                gr = k0 + r
                gc = bn + c
                Bs[r, c] = B[gr, gc] if (gr < K and gc < N) else float32(0.0)
            cuda.syncthreads()
            for kk in range(BK):
                for i in range(TM):
                    ra[i] = As[trow * TM + i, kk]
                for j in range(TN):
                    rb[j] = Bs[kk, tcol * TN + j]
                for i in range(TM):
                    for j in range(TN):
                        acc[i, j] += ra[i] * rb[j]
            cuda.syncthreads()
        for i in range(TM):
            r = bm + trow * TM + i
            if r < M:
                for j in range(TN):
                    c = bn + tcol * TN + j
                    if c < N:
                        C[r, c] = acc[i, j]

    def launch(A, B, C, M, N, K):
        matmul_v4[(cdiv(N, BN), cdiv(M, BM)), NT](A, B, C, M, N, K)
    launch.kernel = matmul_v4
    return launch


def _make_v5(BM, BN, BK, TM, TN):
    NTX = BN // TN
    NT = (BM // TM) * NTX
    if BM % TM or BN % TN:
        raise ValueError(f"config: BM % TM and BN % TN must be 0, got {BM, BN, TM, TN}")

    @cuda.jit(device=True, inline=True)
    def load_tiles(A, B, As, Bs, s, k0, bm, bn, tid, M, N, K):
        for e in range(tid, BM * BK, NT):
            r = e // BK
            c = e % BK
            gr = bm + r
            gc = k0 + c
            # stored transposed: As[s, k, m], so a thread's TM values are contiguous
            As[s, c, r] = A[gr, gc] if (gr < M and gc < K) else float32(0.0)
        for e in range(tid, BK * BN, NT):
            r = e // BN
            c = e % BN
            gr = k0 + r
            gc = bn + c
            Bs[s, r, c] = B[gr, gc] if (gr < K and gc < N) else float32(0.0)

    @cuda.jit
    def matmul_v5(A, B, C, M, N, K):
        # v4 with two shared-memory stages: while the block multiplies stage s,
        # the loads of the next K-slice go to stage 1 - s, so one barrier per
        # slice suffices and the memory latency overlaps with arithmetic.
        As = cuda.shared.array((2, BK, BM), float32)
        Bs = cuda.shared.array((2, BK, BN), float32)
        acc = cuda.local.array((TM, TN), float32)
        ra = cuda.local.array(TM, float32)
        rb = cuda.local.array(TN, float32)
        tid = cuda.threadIdx.x
        trow = tid // NTX
        tcol = tid % NTX
        bm = cuda.blockIdx.y * BM
        bn = cuda.blockIdx.x * BN
        for i in range(TM):
            for j in range(TN):
                acc[i, j] = float32(0.0)
        ntiles = (K + BK - 1) // BK
        load_tiles(A, B, As, Bs, 0, 0, bm, bn, tid, M, N, K)
        cuda.syncthreads()
        for t in range(ntiles):
            s = t % 2
            if t + 1 < ntiles:       # prefetch the next slice into the other stage
                load_tiles(A, B, As, Bs, 1 - s, (t + 1) * BK, bm, bn, tid, M, N, K)
            for kk in range(BK):
                for i in range(TM):
                    ra[i] = As[s, kk, trow * TM + i]
                for j in range(TN):
                    rb[j] = Bs[s, kk, tcol * TN + j]
                for i in range(TM):
                    for j in range(TN):
                        acc[i, j] += ra[i] * rb[j]
            cuda.syncthreads()       # stage s is free, stage 1 - s is complete
        for i in range(TM):
            r = bm + trow * TM + i
            if r < M:
                for j in range(TN):
                    c = bn + tcol * TN + j
                    if c < N:
                        C[r, c] = acc[i, j]

    def launch(A, B, C, M, N, K):
        matmul_v5[(cdiv(N, BN), cdiv(M, BM)), NT](A, B, C, M, N, K)
    launch.kernel = matmul_v5
    return launch


def _make_transpose(TILE, ROWS):
    TP = TILE + 1   # padded row length (a shared-array shape must be a constant)

    @cuda.jit
    def transpose_kernel(A, T, M, N):
        # T = A^T, A: (M, N).  A tile is read along rows of A and written along
        # rows of T, both coalesced; the +1 column of padding keeps the
        # column-wise reads of the shared tile in different banks.
        tile = cuda.shared.array((TILE, TP), float32)
        bx = cuda.blockIdx.x * TILE
        by = cuda.blockIdx.y * TILE
        tx = cuda.threadIdx.x
        for j in range(cuda.threadIdx.y, TILE, ROWS):
            r = by + j
            c = bx + tx
            if r < M and c < N:
                tile[j, tx] = A[r, c]
        cuda.syncthreads()
        for j in range(cuda.threadIdx.y, TILE, ROWS):
            r = bx + j          # row of T = column of A
            c = by + tx
            if r < N and c < M:
                T[r, c] = tile[tx, j]

    def launch(A, T, M, N):
        transpose_kernel[(cdiv(N, TILE), cdiv(M, TILE)), (TILE, ROWS)](A, T, M, N)
    launch.kernel = transpose_kernel
    return launch


_MAKERS = {1: lambda c: _make_v1(tuple(c["block"])), 2: lambda c: _make_v2(tuple(c["block"])),
           3: lambda c: _make_v3(c["TS"]),
           4: lambda c: _make_v4(c["BM"], c["BN"], c["BK"], c["TM"], c["TN"]),
           5: lambda c: _make_v5(c["BM"], c["BN"], c["BK"], c["TM"], c["TN"]),
           "transpose": lambda c: _make_transpose(c["TILE"], c["ROWS"])}


@functools.lru_cache(maxsize=None)
def _kernel_cached(version, items):
    return _MAKERS[version](dict(items))


def kernel(version, config=None):
    """Launcher ``f(A, B, C, M, N, K)`` of kernel ``version`` for a tile configuration."""
    if version not in _MAKERS:
        raise ValueError(f"version: expected one of {VERSIONS[1:]} or 'transpose', got {version!r}")
    cfg = config_for(version, config)
    items = tuple(sorted((k, tuple(v) if isinstance(v, (list, tuple)) else v)
                         for k, v in cfg.items()))
    return _kernel_cached(version, items)


# ----------------------------------------------------------------------------- API
def _check_operands(A, B):
    for name, a in (("A", A), ("B", B)):
        if getattr(a, "ndim", None) != 2:
            raise ValueError(f"{name}: expected a 2-D array, got shape {getattr(a, 'shape', None)}")
        if a.dtype != np.float32:
            raise TypeError(f"{name}: expected float32 (the kernels are SGEMM), got {a.dtype}")
    if A.shape[1] != B.shape[0]:
        raise ValueError(f"B: expected {A.shape[1]} rows to match A {A.shape}, got {B.shape}")


def matmul(A, B, out=None, version=DEFAULT_VERSION, config=None):
    """C = A @ B with kernel ``version`` (0: cuBLAS/NumPy) on device arrays."""
    _check_operands(A, B)
    M, K = A.shape
    N = B.shape[1]
    if out is None:
        out = xp().empty((M, N), dtype=np.float32)
    elif tuple(out.shape) != (M, N) or out.dtype != np.float32:
        raise ValueError(f"out: expected float32 of shape {(M, N)}, got {out.dtype} {out.shape}")
    if version == 0:
        return xp().matmul(A, B, out=out)
    if version not in VERSIONS:
        raise ValueError(f"version: expected one of {VERSIONS}, got {version!r}")
    if M and N:
        if K == 0:
            out[...] = 0
        else:
            kernel(version, config)(A, B, out, M, N, K)
    return out


def transpose(A, out=None, config=None):
    """A^T as a new contiguous device array (tiled shared-memory kernel)."""
    if getattr(A, "ndim", None) != 2 or A.dtype != np.float32:
        raise ValueError(f"A: expected a 2-D float32 array, got {getattr(A, 'dtype', None)} "
                         f"{getattr(A, 'shape', None)}")
    M, N = A.shape
    if out is None:
        out = xp().empty((N, M), dtype=np.float32)
    if M and N:
        kernel("transpose", config)(A, out, M, N)
    return out


def check(version, M, N, K, config=None, seed=0, tol=None) -> float:
    """Run ``version`` on random (M, K) @ (K, N) inputs and compare with :func:`reference`.

    The output starts as NaN, so an element the kernel forgets fails the check.
    Returns the relative error; raises AssertionError above ``tol``
    (default :func:`tolerance` of K).
    """
    rng = np.random.default_rng(seed)
    A = random_array(rng, (M, K))
    B = random_array(rng, (K, N))
    C = poisoned((M, N))
    matmul(to_device(A), to_device(B), out=C, version=version, config=config)
    return assert_close(C, reference(A, B), tolerance(K) if tol is None else tol,
                        f"matmul v{version} {M}x{N}x{K}")


def check_transpose(M, N, config=None, seed=0) -> float:
    rng = np.random.default_rng(seed)
    A = random_array(rng, (M, N))
    T = poisoned((N, M))
    transpose(to_device(A), out=T, config=config)
    return assert_close(T, A.T, 0.0, f"transpose {M}x{N}")


def benchmark(version, M, N, K, config=None, n_repeat=20, seed=0) -> dict:
    """Median time of ``version`` on random inputs, with GFLOP/s (device arrays only:
    host↔device copies are outside the timed region)."""
    rng = np.random.default_rng(seed)
    A = to_device(random_array(rng, (M, K)))
    B = to_device(random_array(rng, (K, N)))
    C = xp().empty((M, N), dtype=np.float32)
    t = time_kernel(lambda: matmul(A, B, out=C, version=version, config=config),
                    n_repeat=n_repeat)
    return {"version": version, "M": M, "N": N, "K": K, "seconds": t,
            "gflops": flops(M, N, K) / t / 1e9, "config": config_for(version, config)
            if version else None}
