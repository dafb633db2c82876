"""Fused bias + activation, forward and backward, for a dense layer's output.

Forward: ``A = f(Z + b)`` with ``Z``: (M, N) (the GEMM output ``X W``), ``b``: (N,).
Backward, from ``dA`` and the *output* ``A`` (every supported f' is a function
of f): ``dZ = dA ⊙ f'(A)`` and the bias gradient ``db = Σ_rows dZ``.

Activations (argument ``act``): ``"identity"``, ``"relu"`` (f' = [A > 0]),
``"sigmoid"`` (f' = A(1 − A)), ``"tanh"`` (f' = 1 − A²).

=======  ============================================================
version  idea
=======  ============================================================
1        forward: one thread per element on a 2-D grid (x → column, so
         warps read and write rows contiguously).  backward: the same
         elementwise kernel for dZ, then a second kernel with one thread
         per column summing down the rows (two passes over dZ).
2        forward: a 1-D *grid-stride* loop (a fixed number of blocks,
         each thread handles several elements).  backward: one fused
         kernel: each thread writes dZ for a strip of rows and keeps a
         running column sum, the block adds its rows with a shared-memory
         tree reduction, and one atomic add per block and column lands in
         ``db`` (one pass over dZ).
=======  ============================================================

>>> from nnbook.kernels import bias_act
>>> bias_act.check(2, 7, 17, "sigmoid") < 1e-5
True
"""
from __future__ import annotations

import functools
import math

import numpy as np
from numba import float32

from ._common import (alias_target, assert_close, cdiv, cuda, on_simulator, poisoned, random_array,
                      time_kernel, to_device, xp)

__all__ = ["ACTIVATIONS", "reference_forward", "reference_backward", "forward", "backward",
           "check", "benchmark", "VERSIONS", "GPU_CONFIG", "SIM_CONFIG", "bytes_moved"]

ACTIVATIONS = {"identity": 0, "relu": 1, "sigmoid": 2, "tanh": 3}
VERSIONS = (1, 2)
DEFAULT_VERSION = 2

GPU_CONFIG = {"block2d": (32, 8), "block1d": 256, "blocks1d": 1024,
              "BX": 32, "BY": 8, "rows_per_thread": 8, "max_grid_y": 1024}
SIM_CONFIG = {"block2d": (4, 4), "block1d": 8, "blocks1d": 3,
              "BX": 4, "BY": 4, "rows_per_thread": 2, "max_grid_y": 64}


def _cfg(config):
    return dict(config) if config is not None else dict(SIM_CONFIG if on_simulator() else GPU_CONFIG)


def _act_code(act):
    if act not in ACTIVATIONS:
        raise ValueError(f"act: expected one of {tuple(ACTIVATIONS)}, got {act!r}")
    return ACTIVATIONS[act]


# ----------------------------------------------------------------------------- reference
def reference_forward(Z, b, act) -> np.ndarray:
    """f(Z + b) in float64 on the host."""
    z = np.asarray(Z, np.float64) + np.asarray(b, np.float64)
    code = _act_code(act)
    if code == 1:
        return np.maximum(z, 0.0)
    if code == 2:
        return 0.5 * (1.0 + np.tanh(0.5 * z))      # = 1 / (1 + e^-z), stable
    if code == 3:
        return np.tanh(z)
    return z


def reference_backward(dA, A, act):
    """(dZ, db) in float64 on the host, with f' written in terms of the output A."""
    dA = np.asarray(dA, np.float64)
    A = np.asarray(A, np.float64)
    code = _act_code(act)
    fp = {0: np.ones_like(A), 1: (A > 0).astype(np.float64), 2: A * (1.0 - A),
          3: 1.0 - A * A}[code]
    dZ = dA * fp
    return dZ, dZ.sum(axis=0)


# ----------------------------------------------------------------------------- device code
@cuda.jit(device=True, inline=True)
def _f(z, code):
    if code == 1:
        return z if z > float32(0.0) else float32(0.0)
    if code == 2:
        if z >= float32(0.0):
            return float32(1.0) / (float32(1.0) + math.exp(-z))
        e = math.exp(z)
        return e / (float32(1.0) + e)
    if code == 3:
        return math.tanh(z)
    return z


@cuda.jit(device=True, inline=True)
def _fprime_from_out(a, code):
    if code == 1:
        return float32(1.0) if a > float32(0.0) else float32(0.0)
    if code == 2:
        return a * (float32(1.0) - a)
    if code == 3:
        return float32(1.0) - a * a
    return float32(1.0)


@cuda.jit
def bias_act_fwd_v1(Z, b, out, M, N, code):
    c = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    r = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    if r < M and c < N:
        out[r, c] = _f(Z[r, c] + b[c], code)


@cuda.jit
def bias_act_fwd_v2(Z, b, out, M, N, code):
    # grid-stride loop: thread i handles elements i, i + G, i + 2G, ... (G threads
    # in the whole grid); consecutive threads still touch consecutive addresses
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for i in range(start, M * N, stride):
        r = i // N
        c = i - r * N
        out[r, c] = _f(Z[r, c] + b[c], code)


@cuda.jit
def act_bwd_v1(dA, A, dZ, M, N, code):
    c = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    r = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    if r < M and c < N:
        dZ[r, c] = dA[r, c] * _fprime_from_out(A[r, c], code)


@cuda.jit
def colsum_v1(dZ, db, M, N):
    # one thread per column walks down all M rows: neighbouring threads read
    # neighbouring columns (coalesced), but only N threads exist in total
    c = cuda.grid(1)
    if c < N:
        s = float32(0.0)
        for r in range(M):
            s += dZ[r, c]
        db[c] = s


@functools.lru_cache(maxsize=None)
def _make_bwd_v2(BX, BY):
    if BY & (BY - 1):
        raise ValueError(f"config: BY must be a power of two for the tree reduction, got {BY}")

    @cuda.jit
    def bias_act_bwd_v2(dA, A, dZ, db, M, N, code):
        part = cuda.shared.array((BY, BX), float32)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        c = cuda.blockIdx.x * BX + tx
        s = float32(0.0)
        if c < N:
            for r in range(cuda.blockIdx.y * BY + ty, M, cuda.gridDim.y * BY):
                g = dA[r, c] * _fprime_from_out(A[r, c], code)
                dZ[r, c] = g
                s += g
        part[ty, tx] = s
        cuda.syncthreads()
        h = BY // 2                      # tree reduction over the BY rows of the block
        while h > 0:
            if ty < h:
                part[ty, tx] += part[ty + h, tx]
            cuda.syncthreads()
            h //= 2
        if ty == 0 and c < N:
            cuda.atomic.add(db, c, part[0, tx])
    return bias_act_bwd_v2


# ----------------------------------------------------------------------------- API
def _check(name, a, ndim):
    if getattr(a, "ndim", None) != ndim or a.dtype != np.float32:
        raise ValueError(f"{name}: expected a {ndim}-D float32 array, got "
                         f"{getattr(a, 'dtype', None)} {getattr(a, 'shape', None)}")


def forward(Z, b, act="relu", out=None, version=DEFAULT_VERSION, config=None):
    """``f(Z + b)`` on device arrays (``out`` may be ``Z`` itself: the kernels are
    elementwise, so in place is safe)."""
    _check("Z", Z, 2)
    _check("b", b, 1)
    M, N = Z.shape
    if b.shape[0] != N:
        raise ValueError(f"b: expected shape ({N},) to match Z {Z.shape}, got {b.shape}")
    code = _act_code(act)
    cfg = _cfg(config)
    if out is None:
        out = xp().empty((M, N), dtype=np.float32)
    if version not in VERSIONS:
        raise ValueError(f"version: expected one of {VERSIONS}, got {version!r}")
    if M * N == 0:
        return out
    tgt = alias_target(out, Z, b)
    if version == 1:
        bx, by = cfg["block2d"]
        bias_act_fwd_v1[(cdiv(N, bx), cdiv(M, by)), (bx, by)](Z, b, tgt, M, N, code)
    else:
        nthr = cfg["block1d"]
        blocks = min(cfg["blocks1d"], cdiv(M * N, nthr))
        bias_act_fwd_v2[blocks, nthr](Z, b, tgt, M, N, code)
    if tgt is not out:
        out[...] = tgt
    return out


def backward(dA, A, act="relu", dZ=None, db=None, version=DEFAULT_VERSION, config=None):
    """``(dZ, db)`` from ``dA`` and the forward output ``A`` (``dZ`` may be ``dA``)."""
    _check("dA", dA, 2)
    _check("A", A, 2)
    if dA.shape != A.shape:
        raise ValueError(f"A: expected shape {dA.shape} to match dA, got {A.shape}")
    M, N = A.shape
    code = _act_code(act)
    cfg = _cfg(config)
    if dZ is None:
        dZ = xp().empty((M, N), dtype=np.float32)
    if db is None:
        db = xp().empty((N,), dtype=np.float32)
    if version not in VERSIONS:
        raise ValueError(f"version: expected one of {VERSIONS}, got {version!r}")
    out_dZ, dZ = dZ, alias_target(dZ, dA, A)
    if version == 1:
        if M * N:
            bx, by = cfg["block2d"]
            act_bwd_v1[(cdiv(N, bx), cdiv(M, by)), (bx, by)](dA, A, dZ, M, N, code)
        if N:
            nthr = cfg["block1d"]
            colsum_v1[cdiv(N, nthr), nthr](dZ, db, M, N)
    elif version == 2:
        db[...] = 0
        if M * N:
            BX, BY = cfg["BX"], cfg["BY"]
            gy = max(1, min(cfg["max_grid_y"], cdiv(M, BY * cfg["rows_per_thread"])))
            _make_bwd_v2(BX, BY)[(cdiv(N, BX), gy), (BX, BY)](dA, A, dZ, db, M, N, code)
    if dZ is not out_dZ:
        out_dZ[...] = dZ
    return out_dZ, db


def bytes_moved(M, N, direction="forward") -> int:
    """Fewest bytes through device memory (float32): forward reads Z and b and
    writes A; backward reads dA and A, writes dZ and db."""
    if direction == "forward":
        return 4 * (2 * M * N + N)
    return 4 * (3 * M * N + N)


def check(version, M, N, act="relu", config=None, seed=0, tol=1e-5) -> float:
    """Check forward and backward of ``version`` against the float64 references;
    returns the larger relative error (AssertionError above ``tol``)."""
    rng = np.random.default_rng(seed)
    Z = random_array(rng, (M, N), low=-3, high=3)
    b = random_array(rng, (N,))
    A = poisoned((M, N))
    forward(to_device(Z), to_device(b), act, out=A, version=version, config=config)
    e1 = assert_close(A, reference_forward(Z, b, act), tol, f"bias_act fwd v{version} {act}")
    A_host = reference_forward(Z, b, act).astype(np.float32)
    dA = random_array(rng, (M, N))
    dZ, db = poisoned((M, N)), poisoned((N,))
    backward(to_device(dA), to_device(A_host), act, dZ=dZ, db=db, version=version, config=config)
    rdZ, rdb = reference_backward(dA, A_host, act)
    e2 = assert_close(dZ, rdZ, tol, f"bias_act bwd dZ v{version} {act}")
    e3 = assert_close(db, rdb, tol, f"bias_act bwd db v{version} {act}")
    return max(e1, e2, e3)


def benchmark(version, M, N, act="relu", direction="forward", config=None, n_repeat=20,
              seed=0) -> dict:
    """Median time and GB/s (counting :func:`bytes_moved`) of one direction."""
    rng = np.random.default_rng(seed)
    Z = to_device(random_array(rng, (M, N)))
    b = to_device(random_array(rng, (N,)))
    out = xp().empty((M, N), dtype=np.float32)
    db = xp().empty((N,), dtype=np.float32)
    if direction == "forward":
        t = time_kernel(lambda: forward(Z, b, act, out=out, version=version, config=config),
                        n_repeat=n_repeat)
    else:
        A = forward(Z, b, act)
        t = time_kernel(lambda: backward(Z, A, act, dZ=out, db=db, version=version,
                                         config=config), n_repeat=n_repeat)
    return {"version": version, "M": M, "N": N, "act": act, "direction": direction,
            "seconds": t, "gbps": bytes_moved(M, N, direction) / t / 1e9}
