"""The SGD update as one elementwise kernel (PyTorch's rule, as :class:`nnbook.SGD`).

For each parameter element, with gradient g, weight decay λ, momentum μ,
dampening τ and momentum buffer b::

    g ← g + λ·p
    b ← g                     at the first step (μ > 0)
    b ← μ·b + (1 − τ)·g       afterwards
    g ← g + μ·b  (Nesterov)   or   g ← b
    p ← p − lr·g

With μ = 0 the buffer is untouched and the step is ``p -= lr (g + λ p)``.  Every
element is read and written once: the kernel is memory-bound, 3 floats moved per
element without momentum (read p, g; write p) and 5 with it (also read and write b).

=======  ==========================================================
version  idea
=======  ==========================================================
1        one thread per element (as many threads as elements)
2        a fixed grid with a grid-stride loop (each thread updates
         several elements; fewer, fuller blocks)
=======  ==========================================================

>>> from nnbook.kernels import sgd
>>> sgd.check(2, 37, momentum=0.9, nesterov=True) < 1e-6
True
"""
from __future__ import annotations

import numpy as np
from numba import float32

from ._common import (assert_close, cdiv, cuda, on_simulator, poisoned, random_array,
                      time_kernel, to_device, xp)

__all__ = ["reference", "step", "check", "benchmark", "VERSIONS", "GPU_CONFIG", "SIM_CONFIG",
           "bytes_moved"]

VERSIONS = (1, 2)
DEFAULT_VERSION = 2
GPU_CONFIG = {"block": 256, "blocks": 1056}      # 132 SMs x 8 blocks on an H100 SXM
SIM_CONFIG = {"block": 8, "blocks": 3}


def _cfg(config):
    return dict(config) if config is not None else dict(SIM_CONFIG if on_simulator() else GPU_CONFIG)


def reference(p, g, buf, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
              first=True):
    """(new p, new buf) in float64 on the host."""
    p = np.asarray(p, np.float64)
    g = np.asarray(g, np.float64) + weight_decay * p
    b = None if buf is None else np.asarray(buf, np.float64)
    if momentum:
        b = g.copy() if first else momentum * b + (1 - dampening) * g
        g = g + momentum * b if nesterov else b
    return p - lr * g, b


@cuda.jit(device=True, inline=True)
def _update(p, g, b, i, lr, mu, damp, wd, nesterov, first):
    gi = g[i] + wd * p[i]
    if mu != float32(0.0):
        if first:
            bi = gi
        else:
            bi = mu * b[i] + (float32(1.0) - damp) * gi
        b[i] = bi
        if nesterov:
            gi = gi + mu * bi
        else:
            gi = bi
    p[i] = p[i] - lr * gi


@cuda.jit
def sgd_v1(p, g, b, n, lr, mu, damp, wd, nesterov, first):
    i = cuda.grid(1)
    if i < n:
        _update(p, g, b, i, lr, mu, damp, wd, nesterov, first)


@cuda.jit
def sgd_v2(p, g, b, n, lr, mu, damp, wd, nesterov, first):
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        _update(p, g, b, i, lr, mu, damp, wd, nesterov, first)


_DUMMY = {}


def _dummy():
    key = on_simulator()
    if key not in _DUMMY:
        _DUMMY[key] = xp().zeros((1,), np.float32)
    return _DUMMY[key]


def step(p, g, buf=None, lr=0.01, momentum=0.0, dampening=0.0, weight_decay=0.0,
         nesterov=False, first=True, version=DEFAULT_VERSION, config=None):
    """Update device array ``p`` in place from ``g`` (and ``buf`` when momentum > 0).

    All three must be float32, C-contiguous and of the same shape; ``buf`` is
    written at every step with momentum (its old values are ignored when ``first``).
    """
    for name, a in (("p", p), ("g", g)) + ((("buf", buf),) if buf is not None else ()):
        if a.dtype != np.float32 or tuple(a.shape) != tuple(p.shape):
            raise ValueError(f"{name}: expected float32 of shape {tuple(p.shape)}, got "
                             f"{a.dtype} {tuple(a.shape)}")
    if momentum and buf is None:
        raise ValueError("buf: a momentum buffer is needed when momentum > 0")
    n = int(np.prod(p.shape))
    if n == 0:
        return p
    pf, gf = p.reshape(-1), g.reshape(-1)
    # without momentum the buffer is never touched; pass a distinct 1-element array
    # (aliasing p would make the simulator copy p back twice, the stale copy last)
    bf = buf.reshape(-1) if buf is not None else _dummy()
    args = (pf, gf, bf, n, np.float32(lr), np.float32(momentum), np.float32(dampening),
            np.float32(weight_decay), bool(nesterov), bool(first))
    cfg = _cfg(config)
    if version == 1:
        sgd_v1[cdiv(n, cfg["block"]), cfg["block"]](*args)
    elif version == 2:
        sgd_v2[min(cfg["blocks"], cdiv(n, cfg["block"])), cfg["block"]](*args)
    else:
        raise ValueError(f"version: expected one of {VERSIONS}, got {version!r}")
    return p


def bytes_moved(n, momentum=False) -> int:
    return 4 * n * (5 if momentum else 3)


def check(version, n, lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.01,
          nesterov=False, config=None, seed=0, tol=1e-6) -> float:
    """Two steps (the first and a later one) against :func:`reference`."""
    rng = np.random.default_rng(seed)
    p = random_array(rng, (n,))
    buf = poisoned((n,)) if momentum else None
    pd = to_device(p)
    ref_p, ref_b = p, None
    err = 0.0
    for first in (True, False):
        g = random_array(rng, (n,))
        step(pd, to_device(g), buf, lr, momentum, dampening, weight_decay, nesterov, first,
             version=version, config=config)
        ref_p, ref_b = reference(ref_p, g, ref_b, lr, momentum, dampening, weight_decay,
                                 nesterov, first)
        err = max(err, assert_close(pd, ref_p, tol, f"sgd v{version} p"))
        if momentum:
            err = max(err, assert_close(buf, ref_b, tol, f"sgd v{version} buf"))
    return err


def benchmark(version, n, momentum=0.0, config=None, n_repeat=20, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    p = to_device(random_array(rng, (n,)))
    g = to_device(random_array(rng, (n,)))
    buf = xp().zeros((n,), np.float32) if momentum else None
    t = time_kernel(lambda: step(p, g, buf, 1e-6, momentum, first=False, version=version,
                                 config=config), n_repeat=n_repeat)
    return {"version": version, "n": n, "momentum": momentum, "seconds": t,
            "gbps": bytes_moved(n, bool(momentum)) / t / 1e9}
