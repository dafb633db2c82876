"""Softmax + cross-entropy, fused forward and gradient, for integer labels.

Inputs: ``logits`` (N, K) float32, ``labels`` (N,) integers in [0, K).
Outputs, in one launch:

* ``row_loss[n] = log Σ_j exp(z_nj) − z_{n,y_n}`` (computed as
  ``m + log Σ_j exp(z_nj − m)`` with the row maximum ``m``, so nothing overflows),
* ``loss[0] = (1/N) Σ_n row_loss[n]`` (accumulated with atomic adds),
* ``grad = scale · (softmax(z) − onehot(y)) / N``, the gradient of the mean loss
  (``scale`` lets a training loop fold the learning rate in).

=======  =================================================================
version  idea
=======  =================================================================
1        one thread per row, three passes over the row (max, sum, write).
         Fine when K is tiny (MNIST: K = 10) and N large.
2        one block per row: the threads stride over the row and combine
         their partial maxima, then partial sums, with shared-memory tree
         reductions (log₂ B steps, a barrier each).
3        v2 with the *online* softmax (Milakov & Gimelshein 2018): each
         thread keeps a running (max, sum) pair, rescaling the sum when the
         max grows, so max and sum come from one pass; pairs merge in one
         tree reduction.  Two reads of the row instead of three.
=======  =================================================================

>>> from nnbook.kernels import softmax_xent
>>> softmax_xent.check(3, 7, 17) < 1e-5
True
"""
from __future__ import annotations

import functools
import math

import numpy as np
from numba import float32

from ._common import (alias_target, assert_close, cdiv, cuda, on_simulator, poisoned, random_array,
                      time_kernel, to_device, xp)

__all__ = ["reference", "forward_backward", "check", "benchmark", "VERSIONS", "GPU_CONFIG",
           "SIM_CONFIG", "bytes_moved"]

VERSIONS = (1, 2, 3)
DEFAULT_VERSION = 1     # MNIST-sized rows (K = 10): a thread per row wins

NEG_INF = np.float32(-np.inf)

GPU_CONFIG = {"block1d": 128, "block_row": 128}
SIM_CONFIG = {"block1d": 8, "block_row": 4}


def _cfg(config):
    return dict(config) if config is not None else dict(SIM_CONFIG if on_simulator() else GPU_CONFIG)


def reference(logits, labels, scale=1.0):
    """(mean loss, row losses, gradient) in float64 on the host."""
    z = np.asarray(logits, np.float64)
    y = np.asarray(labels)
    N = z.shape[0]
    m = z.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
    row = lse - z[np.arange(N), y]
    p = np.exp(z - lse[:, None])
    p[np.arange(N), y] -= 1.0
    return row.mean(), row, p * (scale / N)


# ----------------------------------------------------------------------------- kernels
@cuda.jit
def softmax_xent_v1(z, y, row_loss, loss, grad, N, K, coef, inv_n):
    n = cuda.grid(1)
    if n < N:
        m = z[n, 0]
        for j in range(1, K):
            m = max(m, z[n, j])
        s = float32(0.0)
        for j in range(K):
            s += math.exp(z[n, j] - m)
        lab = y[n]
        lse = m + math.log(s)
        rl = lse - z[n, lab]
        row_loss[n] = rl
        cuda.atomic.add(loss, 0, rl * inv_n)
        inv = float32(1.0) / s
        for j in range(K):
            p = math.exp(z[n, j] - m) * inv
            grad[n, j] = (p - float32(1.0) if j == lab else p) * coef


@functools.lru_cache(maxsize=None)
def _make_v2(B):
    if B & (B - 1):
        raise ValueError(f"config: block_row must be a power of two, got {B}")

    @cuda.jit
    def softmax_xent_v2(z, y, row_loss, loss, grad, N, K, coef, inv_n):
        red = cuda.shared.array(B, float32)
        n = cuda.blockIdx.x
        t = cuda.threadIdx.x
        m = NEG_INF
        for j in range(t, K, B):
            m = max(m, z[n, j])
        red[t] = m
        cuda.syncthreads()
        h = B // 2
        while h > 0:
            if t < h:
                red[t] = max(red[t], red[t + h])
            cuda.syncthreads()
            h //= 2
        m = red[0]
        cuda.syncthreads()              # everyone has read red[0] before it is reused
        s = float32(0.0)
        for j in range(t, K, B):
            s += math.exp(z[n, j] - m)
        red[t] = s
        cuda.syncthreads()
        h = B // 2
        while h > 0:
            if t < h:
                red[t] += red[t + h]
            cuda.syncthreads()
            h //= 2
        s = red[0]
        lab = y[n]
        if t == 0:
            rl = m + math.log(s) - z[n, lab]
            row_loss[n] = rl
            cuda.atomic.add(loss, 0, rl * inv_n)
        inv = float32(1.0) / s
        for j in range(t, K, B):
            p = math.exp(z[n, j] - m) * inv
            grad[n, j] = (p - float32(1.0) if j == lab else p) * coef
    return softmax_xent_v2


@functools.lru_cache(maxsize=None)
def _make_v3(B):
    if B & (B - 1):
        raise ValueError(f"config: block_row must be a power of two, got {B}")

    @cuda.jit
    def softmax_xent_v3(z, y, row_loss, loss, grad, N, K, coef, inv_n):
        rm = cuda.shared.array(B, float32)
        rs = cuda.shared.array(B, float32)
        n = cuda.blockIdx.x
        t = cuda.threadIdx.x
        m = NEG_INF
        s = float32(0.0)
        for j in range(t, K, B):      # online: one pass gives max and sum together
            x = z[n, j]
            if x > m:
                s = s * math.exp(m - x) + float32(1.0)
                m = x
            else:
                s += math.exp(x - m)
        rm[t] = m
        rs[t] = s
        cuda.syncthreads()
        h = B // 2
        while h > 0:
            if t < h:
                m1 = rm[t]
                m2 = rm[t + h]
                s1 = rs[t]
                s2 = rs[t + h]
                mm = max(m1, m2)
                # an empty partial (s = 0, m = -inf) must not produce exp(-inf + inf)
                a = s1 * math.exp(m1 - mm) if s1 > float32(0.0) else float32(0.0)
                b = s2 * math.exp(m2 - mm) if s2 > float32(0.0) else float32(0.0)
                rm[t] = mm
                rs[t] = a + b
            cuda.syncthreads()
            h //= 2
        m = rm[0]
        s = rs[0]
        lab = y[n]
        if t == 0:
            rl = m + math.log(s) - z[n, lab]
            row_loss[n] = rl
            cuda.atomic.add(loss, 0, rl * inv_n)
        inv = float32(1.0) / s
        for j in range(t, K, B):
            p = math.exp(z[n, j] - m) * inv
            grad[n, j] = (p - float32(1.0) if j == lab else p) * coef
    return softmax_xent_v3


# ----------------------------------------------------------------------------- API
def forward_backward(logits, labels, scale=1.0, grad=None, row_loss=None, loss=None,
                     version=DEFAULT_VERSION, config=None):
    """Return ``(loss, grad, row_loss)`` as device arrays (``loss`` has shape (1,)).

    ``labels`` must already be on the device (int32 or int64); ``grad`` may be
    ``logits`` itself (each element is read before it is written by the same thread
    in versions 1-3).
    """
    if getattr(logits, "ndim", None) != 2 or logits.dtype != np.float32:
        raise ValueError(f"logits: expected a 2-D float32 array, got "
                         f"{getattr(logits, 'dtype', None)} {getattr(logits, 'shape', None)}")
    N, K = logits.shape
    if getattr(labels, "ndim", None) != 1 or labels.shape[0] != N or labels.dtype.kind not in "iu":
        raise ValueError(f"labels: expected ({N},) integers, got "
                         f"{getattr(labels, 'dtype', None)} {getattr(labels, 'shape', None)}")
    if K < 1 or N < 1:
        raise ValueError(f"logits: expected at least one row and one class, got {logits.shape}")
    cfg = _cfg(config)
    X = xp()
    grad = X.empty((N, K), np.float32) if grad is None else grad
    row_loss = X.empty((N,), np.float32) if row_loss is None else row_loss
    loss = X.zeros((1,), np.float32) if loss is None else loss
    loss[...] = 0
    coef = np.float32(scale / N)
    inv_n = np.float32(1.0 / N)
    out_grad, grad = grad, alias_target(grad, logits)
    if version == 1:
        nthr = cfg["block1d"]
        softmax_xent_v1[cdiv(N, nthr), nthr](logits, labels, row_loss, loss, grad, N, K, coef, inv_n)
    elif version in (2, 3):
        B = cfg["block_row"]
        k = _make_v2(B) if version == 2 else _make_v3(B)
        k[N, B](logits, labels, row_loss, loss, grad, N, K, coef, inv_n)
    else:
        raise ValueError(f"version: expected one of {VERSIONS}, got {version!r}")
    if grad is not out_grad:
        out_grad[...] = grad
    return loss, out_grad, row_loss


def bytes_moved(N, K, version=3) -> int:
    """Bytes through device memory: logits read (3 passes in v1/v2 if the row is
    not cached, 2 in v3), labels read, gradient and row losses written."""
    passes = 2 if version == 3 else 3
    return 4 * (passes * N * K + N * K + 2 * N)


def check(version, N, K, config=None, seed=0, tol=1e-5, scale=1.0) -> float:
    """Compare loss, row losses and gradient of ``version`` with :func:`reference`."""
    rng = np.random.default_rng(seed)
    z = random_array(rng, (N, K), low=-8, high=8)
    y = rng.integers(0, K, size=N).astype(np.int32)
    grad, row = poisoned((N, K)), poisoned((N,))
    loss, grad, row = forward_backward(to_device(z), to_device(y, np.int32), scale, grad=grad,
                                       row_loss=row, version=version, config=config)
    rl, rrow, rg = reference(z, y, scale)
    e1 = assert_close(loss, np.array([rl]), tol, f"softmax_xent v{version} loss")
    e2 = assert_close(row, rrow, tol, f"softmax_xent v{version} row losses")
    e3 = assert_close(grad, rg, tol, f"softmax_xent v{version} grad")
    return max(e1, e2, e3)


def benchmark(version, N, K, config=None, n_repeat=20, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    z = to_device(random_array(rng, (N, K), low=-8, high=8))
    y = to_device(rng.integers(0, K, size=N), np.int32)
    X = xp()
    grad, row, loss = X.empty((N, K), np.float32), X.empty((N,), np.float32), X.zeros(1, np.float32)
    t = time_kernel(lambda: forward_backward(z, y, grad=grad, row_loss=row, loss=loss,
                                             version=version, config=config), n_repeat=n_repeat)
    return {"version": version, "N": N, "K": K, "seconds": t,
            "gbps": bytes_moved(N, K, version) / t / 1e9}
