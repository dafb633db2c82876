"""GPU suite: our convolution kernels against cuDNN, cuBLAS and PyTorch.

``python -m nnbook.bench cudnn [--quick] [--out FILE] [--repeats 20] [--warmup 3]``

Runs on any CUDA machine (without one it prints a one-line error and exits
with status 2).  Everything is FP32 with TF32 off (``NVIDIA_TF32_OVERRIDE=0``
is set before CUDA starts, cuDNN engines that use tensor cores are filtered
out, PyTorch's ``allow_tf32`` flags are cleared), so every method does the
same IEEE FP32 arithmetic on CUDA cores.  Times are CUDA-event times of the
device work (``cupyx.profiler.benchmark``) after ``--warmup`` untimed calls;
each figure is the median of ``--repeats`` calls.  Inputs already live on the
GPU: no host-device copies are timed (the LeNet-5 epoch copies nothing either:
the whole training set is moved to the GPU first).

What it measures
----------------
conv     forward, dgrad and wgrad of the LeNet-5 layers (batch 128) and of
         3×3 ResNet stages (64×56², 128×28², 256×14², 512×7²; batch 32 and
         128), for: ``direct-v1``, ``direct-v2`` (forward only), ``igemm-v3``
         (:mod:`nnbook.kernels.conv2d`), ``im2col+cublas``
         (:mod:`nnbook.kernels.im2col`), ``cudnn`` (:mod:`nnbook.kernels.cudnn`),
         ``torch`` (PyTorch with cuDNN) and ``torch-nocudnn`` (PyTorch's own
         CUDA kernels) where PyTorch with CUDA is installed.
gemm     our SGEMM versions (:mod:`nnbook.kernels.matmul`) against cuBLAS.
epoch    one LeNet-5 training epoch (60,000 MNIST images, batch 128, SGD) with
         our kernels, with cuDNN convolutions, and in PyTorch.
check    every conv method on the same layer with batch 2 against the float64
         NumPy reference (relative error ‖out − ref‖ / ‖ref‖).

Results file (``nnbook/results/cudnn.json``), schema ``"nnbook.cudnn/1"``
-------------------------------------------------------------------------
::

    {
      "schema": "nnbook.cudnn/1",
      "date": "2026-11-30T12:00:00+00:00",       # UTC, ISO 8601
      "command": "python -m nnbook.bench cudnn",
      "git_commit": str|null, "git_dirty": bool|null,   # null outside a git checkout
      "blas": [{"internal_api", "version", "architecture", "threading_layer",
                "num_threads", "filepath"}] | "unknown (threadpoolctl not installed)",
      "env": {"device": str, "compute_capability": "9.0", "sm_count": int,
              "driver": str, "cuda_runtime": str, "cudnn": str|null,
              "cudnn_frontend": str|null, "cupy": str, "numba_cuda": str,
              "torch": str|null, "nnbook": str, "tf32": false, "simulated": bool,
              "peak_fp32_gflops": float|null, "peak_bandwidth_gbs": float|null},
      "settings": {"repeats": int, "warmup": int, "quick": bool},
      "conv": [{"layer": str, "N","C","H","W","K","R","S","stride","padding": int,
                "op": "forward"|"dgrad"|"wgrad", "method": str,
                "seconds": float, "gflops": float}],
      "check": [{"layer": str, "op": str, "method": str, "rel_error": float}],
      "gemm": [{"M","N","K": int, "method": str, "seconds": float, "gflops": float,
                "rel_error": float}],
      "epoch": [{"model": "lenet5", "method": str, "seconds": float, "images": int,
                 "batch_size": int, "data": "mnist"|"random", "loss": float}],
      "skipped": [{"what": str, "why": str}]
    }

:func:`load_results` reads the file (``None`` if it does not exist) and
:func:`validate` checks a dict against this schema; :mod:`nnbook.bench.report`
renders it.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

SCHEMA = "nnbook.cudnn/1"
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "results" / "cudnn.json"
OPS = ("forward", "dgrad", "wgrad")
CONV_METHODS = ("direct-v1", "direct-v2", "igemm-v3", "im2col+cublas", "cudnn", "torch", "torch-nocudnn")
OWN_CONV = ("direct-v1", "direct-v2", "igemm-v3", "im2col+cublas")
GEMM_METHODS = ("sgemm-v1", "sgemm-v2", "sgemm-v3", "sgemm-v4", "sgemm-v5", "cublas")
EPOCH_METHODS = ("own-igemm", "own-im2col", "cudnn", "torch")

__all__ = ["SCHEMA", "DEFAULT_PATH", "layers", "load_results", "validate", "main", "run",
           "lenet_init", "lenet_step", "reference_ops", "kernel_ops"]


# ----------------------------------------------------------------------------- layer set


def layers(quick=False):
    """The benchmarked layers: LeNet-5 (batch 128) and 3×3 ResNet stages (batch 32 and 128)."""
    out = [dict(layer="lenet-conv1-b128", N=128, C=1, H=28, W=28, K=6, R=5, S=5, stride=1, padding=2),
           dict(layer="lenet-conv2-b128", N=128, C=6, H=14, W=14, K=16, R=5, S=5, stride=1, padding=0)]
    for batch in ((32,) if quick else (32, 128)):
        for ch, hw in ((64, 56), (128, 28), (256, 14), (512, 7)):
            out.append(dict(layer=f"resnet-{ch}x{hw}-b{batch}", N=batch, C=ch, H=hw, W=hw, K=ch,
                            R=3, S=3, stride=1, padding=1))
    return out


# ----------------------------------------------------------------------------- schema

_ENV_KEYS = {"device": str, "compute_capability": str, "driver": str, "cuda_runtime": str,
             "cupy": str, "numba_cuda": str, "nnbook": str, "tf32": bool, "simulated": bool}
_ENV_OPTIONAL = ("cudnn", "cudnn_frontend", "torch", "peak_fp32_gflops", "peak_bandwidth_gbs", "sm_count")
_LAYER_INTS = ("N", "C", "H", "W", "K", "R", "S", "stride", "padding")


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def validate(results):
    """Check ``results`` against the schema above; return it, or raise ValueError listing every problem."""
    errs = []
    if not isinstance(results, dict):
        raise ValueError(f"results: expected a dict, got {type(results).__name__}")
    if results.get("schema") != SCHEMA:
        errs.append(f"schema: expected {SCHEMA!r}, got {results.get('schema')!r}")
    for key in ("date", "command"):
        if not isinstance(results.get(key), str) or not results.get(key):
            errs.append(f"{key}: expected a non-empty string, got {results.get(key)!r}")
    if isinstance(results.get("date"), str):
        try:
            _dt.datetime.fromisoformat(results["date"])
        except ValueError:
            errs.append(f"date: expected ISO 8601, got {results['date']!r}")
    env = results.get("env")
    if not isinstance(env, dict):
        errs.append("env: expected a dict")
    else:
        for k, t in _ENV_KEYS.items():
            if not isinstance(env.get(k), t):
                errs.append(f"env.{k}: expected {t.__name__}, got {env.get(k)!r}")
        if env.get("tf32") is True:
            errs.append("env.tf32: results must be measured with TF32 off")
        for k in _ENV_OPTIONAL:
            if k in env and env[k] is not None and not isinstance(env[k], (str, int, float)):
                errs.append(f"env.{k}: expected a string, a number or null, got {env[k]!r}")
    st = results.get("settings")
    if not isinstance(st, dict) or not all(isinstance(st.get(k), int) and st.get(k) >= 1
                                           for k in ("repeats", "warmup")):
        errs.append(f"settings: expected repeats and warmup as positive ints, got {st!r}")
    for section in ("conv", "check", "gemm", "epoch", "skipped"):
        if not isinstance(results.get(section), list):
            errs.append(f"{section}: expected a list, got {type(results.get(section)).__name__}")
    if errs:
        raise ValueError("invalid cudnn results:\n  " + "\n  ".join(errs))

    def rows(section, check_row):
        for i, r in enumerate(results[section]):
            if not isinstance(r, dict):
                errs.append(f"{section}[{i}]: expected a dict")
                continue
            for msg in check_row(r):
                errs.append(f"{section}[{i}] {msg}")

    def one_of(r, k, options):
        if r.get(k) not in options:
            yield f"{k}: expected one of {options}, got {r.get(k)!r}"

    def timing(r):
        for k in ("seconds", "gflops"):
            if not (_num(r.get(k)) and r[k] > 0):
                yield f"{k}: expected a positive number, got {r.get(k)!r}"

    def rel_error(r):
        if not (_num(r.get("rel_error")) and r["rel_error"] >= 0):
            yield f"rel_error: expected a non-negative number, got {r.get('rel_error')!r}"

    def conv_row(r):
        if not isinstance(r.get("layer"), str):
            yield f"layer: expected a string, got {r.get('layer')!r}"
        for k in _LAYER_INTS:
            if not (isinstance(r.get(k), int) and not isinstance(r.get(k), bool) and r[k] >= (0 if k == "padding" else 1)):
                yield f"{k}: expected a positive int, got {r.get(k)!r}"
        yield from one_of(r, "op", OPS)
        yield from one_of(r, "method", CONV_METHODS)
        yield from timing(r)

    def check_row(r):
        yield from one_of(r, "op", OPS)
        yield from one_of(r, "method", CONV_METHODS)
        if not isinstance(r.get("layer"), str):
            yield "layer: expected a string"
        yield from rel_error(r)

    def gemm_row(r):
        for k in ("M", "N", "K"):
            if not (isinstance(r.get(k), int) and r[k] >= 1):
                yield f"{k}: expected a positive int, got {r.get(k)!r}"
        yield from one_of(r, "method", GEMM_METHODS)
        yield from timing(r)
        yield from rel_error(r)

    def epoch_row(r):
        yield from one_of(r, "method", EPOCH_METHODS)
        if r.get("model") != "lenet5":
            yield f"model: expected 'lenet5', got {r.get('model')!r}"
        if not (_num(r.get("seconds")) and r["seconds"] > 0):
            yield f"seconds: expected a positive number, got {r.get('seconds')!r}"
        for k in ("images", "batch_size"):
            if not (isinstance(r.get(k), int) and r[k] >= 1):
                yield f"{k}: expected a positive int, got {r.get(k)!r}"
        if r.get("data") not in ("mnist", "random"):
            yield f"data: expected 'mnist' or 'random', got {r.get('data')!r}"
        if not _num(r.get("loss")):
            yield f"loss: expected a finite number, got {r.get('loss')!r}"

    def skipped_row(r):
        if not (isinstance(r.get("what"), str) and isinstance(r.get("why"), str)):
            yield "expected {'what': str, 'why': str}"

    rows("conv", conv_row)
    rows("check", check_row)
    rows("gemm", gemm_row)
    rows("epoch", epoch_row)
    rows("skipped", skipped_row)
    if errs:
        raise ValueError("invalid cudnn results:\n  " + "\n  ".join(errs))
    return results


def load_results(path=None):
    """The recorded results (validated), or ``None`` if the file does not exist."""
    p = Path(path) if path is not None else DEFAULT_PATH
    if not p.exists():
        return None
    with open(p) as f:
        return validate(json.load(f))


# ----------------------------------------------------------------------------- LeNet-5 training step


def lenet_init(rng, dtype=np.float32):
    """LeNet-5 for 28×28 MNIST: conv 6@5×5 pad 2, ReLU, max-pool 2; conv 16@5×5, ReLU, max-pool 2;
    dense 400-120-84-10 with ReLU.  He-normal weights, zero biases (host NumPy arrays)."""
    def he(shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)
    return {"W1": he((6, 1, 5, 5), 25), "b1": np.zeros(6, dtype),
            "W2": he((16, 6, 5, 5), 150), "b2": np.zeros(16, dtype),
            "W3": he((400, 120), 400), "b3": np.zeros(120, dtype),
            "W4": he((120, 84), 120), "b4": np.zeros(84, dtype),
            "W5": he((84, 10), 84), "b5": np.zeros(10, dtype)}


class _Ops:
    def __init__(self, xp, conv_forward, conv_dgrad, conv_wgrad, pool_forward, pool_backward):
        self.xp, self.conv_forward, self.conv_dgrad, self.conv_wgrad = xp, conv_forward, conv_dgrad, conv_wgrad
        self.pool_forward, self.pool_backward = pool_forward, pool_backward


def reference_ops():
    """NumPy reference operations (any float dtype): what the kernels are checked against."""
    from ..kernels import conv2d as C  # noqa: PLC0415
    from ..kernels import pool as P  # noqa: PLC0415
    return _Ops(np, lambda x, w, b, s, p: C.conv2d_forward_ref(x, w, b, s, p),
                C.conv2d_dgrad_ref, C.conv2d_wgrad_ref,
                lambda x: P.maxpool_forward_ref(x, 2),
                lambda dy, idx, shape: P.maxpool_backward_ref(dy, idx, shape))


def kernel_ops(method):
    """Operations for ``method`` in {"own-igemm", "own-im2col", "cudnn"} on device arrays.

    Pooling always uses our kernels (:mod:`nnbook.kernels.pool`); the dense
    layers use the array library's matmul (cuBLAS) in every method.
    """
    from ..kernels import _common  # noqa: PLC0415
    from ..kernels import conv2d as C  # noqa: PLC0415
    from ..kernels import im2col as I  # noqa: PLC0415
    from ..kernels import pool as P  # noqa: PLC0415
    xp = _common.xp()
    pf = lambda x: P.maxpool_forward(x, 2)  # noqa: E731
    pb = lambda dy, idx, shape: P.maxpool_backward(dy, idx, shape, 2)  # noqa: E731
    if method == "own-igemm":
        return _Ops(xp, lambda x, w, b, s, p: C.conv2d_forward(x, w, b, s, p, 3),
                    lambda dy, w, xs, s, p: C.conv2d_dgrad(dy, w, xs, s, p, 3),
                    lambda x, dy, ws, s, p: C.conv2d_wgrad(x, dy, ws, s, p, 3), pf, pb)
    if method == "own-im2col":
        return _Ops(xp, I.conv2d_forward, I.conv2d_dgrad, I.conv2d_wgrad, pf, pb)
    if method == "cudnn":
        from ..kernels import cudnn as D  # noqa: PLC0415

        def fwd(x, w, b, s, p):
            y = D.conv2d_forward(x, w, s, p)
            y += b.reshape(1, -1, 1, 1)
            return y
        return _Ops(xp, fwd, D.conv2d_dgrad, D.conv2d_wgrad, pf, pb)
    raise ValueError(f"method: expected own-igemm, own-im2col or cudnn, got {method!r}")


def lenet_step(params, x, y, ops, lr=0.05):
    """One SGD step of LeNet-5 on a batch, in place on ``params``; returns the mean loss
    (a 0-d array of ``ops.xp``: converting it to a Python float would wait for the GPU).

    ``x`` (N, 1, 28, 28), ``y`` (N,) int labels, arrays of ``ops.xp``.
    """
    xp = ops.xp
    P = params
    N = x.shape[0]
    a1 = ops.conv_forward(x, P["W1"], P["b1"], 1, 2)              # (N, 6, 28, 28)
    r1 = xp.maximum(a1, 0)
    p1, i1 = ops.pool_forward(r1)                                 # (N, 6, 14, 14)
    a2 = ops.conv_forward(p1, P["W2"], P["b2"], 1, 0)             # (N, 16, 10, 10)
    r2 = xp.maximum(a2, 0)
    p2, i2 = ops.pool_forward(r2)                                 # (N, 16, 5, 5)
    f = p2.reshape(N, 400)
    a3 = f @ P["W3"] + P["b3"]
    h3 = xp.maximum(a3, 0)
    a4 = h3 @ P["W4"] + P["b4"]
    h4 = xp.maximum(a4, 0)
    z = h4 @ P["W5"] + P["b5"]
    z = z - z.max(axis=1, keepdims=True)
    logp = z - xp.log(xp.exp(z).sum(axis=1, keepdims=True))
    rows = xp.arange(N)
    loss = -logp[rows, y].mean()
    dz = xp.exp(logp)
    dz[rows, y] -= 1
    dz /= N
    g = {"W5": h4.T @ dz, "b5": dz.sum(0)}
    d4 = (dz @ P["W5"].T) * (a4 > 0)
    g["W4"], g["b4"] = h3.T @ d4, d4.sum(0)
    d3 = (d4 @ P["W4"].T) * (a3 > 0)
    g["W3"], g["b3"] = f.T @ d3, d3.sum(0)
    dp2 = (d3 @ P["W3"].T).reshape(p2.shape)
    da2 = ops.pool_backward(dp2, i2, r2.shape) * (a2 > 0)
    g["W2"] = ops.conv_wgrad(p1, da2, P["W2"].shape, 1, 0)
    g["b2"] = da2.sum(axis=(0, 2, 3))
    dp1 = ops.conv_dgrad(da2, P["W2"], p1.shape, 1, 0)
    da1 = ops.pool_backward(dp1, i1, r1.shape) * (a1 > 0)
    g["W1"] = ops.conv_wgrad(x, da1, P["W1"].shape, 1, 2)
    g["b1"] = da1.sum(axis=(0, 2, 3))
    for k in P:
        P[k] -= (lr * g[k]).astype(P[k].dtype)
    return loss


# ----------------------------------------------------------------------------- environment


def _versions():
    env = {"cudnn": None, "cudnn_frontend": None, "torch": None}
    import cupy  # noqa: PLC0415
    rt = cupy.cuda.runtime
    props = rt.getDeviceProperties(rt.getDevice())
    name = props.get("name", b"?")
    env["device"] = name.decode() if isinstance(name, bytes) else str(name)
    env["compute_capability"] = f"{props.get('major', '?')}.{props.get('minor', '?')}"
    env["sm_count"] = int(props.get("multiProcessorCount", 0)) or None
    env["driver"] = str(rt.driverGetVersion())
    env["cuda_runtime"] = str(rt.runtimeGetVersion())
    env["cupy"] = cupy.__version__
    try:
        import numba_cuda  # noqa: PLC0415
        env["numba_cuda"] = getattr(numba_cuda, "__version__", "?")
    except ImportError:
        env["numba_cuda"] = "?"
    from ..kernels import cudnn as D  # noqa: PLC0415
    be, fe = D.version()
    env["cudnn"] = None if be is None else str(be)
    env["cudnn_frontend"] = None if fe is None else str(fe)
    try:
        import torch  # noqa: PLC0415
        env["torch"] = torch.__version__
    except ImportError:
        pass
    # FP32 peak: SMs × FP32 lanes per SM × 2 FLOPs × clock; bandwidth: 2 × memory clock × bus width
    lanes = {(7, 0): 64, (7, 5): 64, (8, 0): 64}.get((props.get("major"), props.get("minor")), 128)
    clock = props.get("clockRate")          # kHz (absent from some CUDA 13 builds)
    env["peak_fp32_gflops"] = (env["sm_count"] * lanes * 2 * clock * 1e3 / 1e9
                               if clock and env["sm_count"] else None)
    mclock, bus = props.get("memoryClockRate"), props.get("memoryBusWidth")
    env["peak_bandwidth_gbs"] = 2 * mclock * 1e3 * bus / 8 / 1e9 if mclock and bus else None
    return env


def _sim_env():
    import nnbook  # noqa: PLC0415
    try:
        import numba_cuda  # noqa: PLC0415
        nc = getattr(numba_cuda, "__version__", "?")
    except ImportError:
        nc = "?"
    return {"device": "numba CUDA simulator (CPU)", "compute_capability": "sim", "driver": "none",
            "cuda_runtime": "none", "cudnn": None, "cudnn_frontend": None, "cupy": "none",
            "numba_cuda": nc, "torch": None, "nnbook": nnbook.__version__, "tf32": False,
            "simulated": True, "peak_fp32_gflops": None, "peak_bandwidth_gbs": None, "sm_count": None}


# ----------------------------------------------------------------------------- measurements


def _conv_runner(method, op, L, arrays):
    """A zero-argument callable running ``method``'s ``op`` on ``arrays``, or raise LookupError(why)."""
    from ..kernels import conv2d as C  # noqa: PLC0415
    from ..kernels import im2col as I  # noqa: PLC0415
    x, w, dy = arrays
    s, p = L["stride"], L["padding"]
    xs, ws = x.shape, w.shape
    if method in ("direct-v1", "direct-v2", "igemm-v3"):
        v = int(method[-1])
        if op == "forward":
            return lambda: C.conv2d_forward(x, w, None, s, p, v)
        if v == 2:
            raise LookupError("direct-v2 exists for the forward pass only")
        if op == "dgrad":
            return lambda: C.conv2d_dgrad(dy, w, xs, s, p, v)
        return lambda: C.conv2d_wgrad(x, dy, ws, s, p, v)
    if method == "im2col+cublas":
        return {"forward": lambda: I.conv2d_forward(x, w, None, s, p),
                "dgrad": lambda: I.conv2d_dgrad(dy, w, xs, s, p),
                "wgrad": lambda: I.conv2d_wgrad(x, dy, ws, s, p)}[op]
    if method == "cudnn":
        from ..kernels import cudnn as D  # noqa: PLC0415
        if not D.available():
            raise LookupError("the cuDNN frontend (module 'cudnn') is not installed")
        conv = D.CudnnConv(xs, ws, s, p)
        return {"forward": lambda: conv.forward(x, w), "dgrad": lambda: conv.dgrad(dy, w),
                "wgrad": lambda: conv.wgrad(x, dy)}[op]
    if method in ("torch", "torch-nocudnn"):
        try:
            import torch  # noqa: PLC0415
        except ImportError:
            raise LookupError("PyTorch is not installed") from None
        if not torch.cuda.is_available():
            raise LookupError("PyTorch has no CUDA support here")
        tx, tw, tdy = (torch.as_tensor(a, device="cuda") for a in (x, w, dy))   # zero-copy (CUDA array interface)
        F = torch.nn.functional
        grad = torch.nn.grad
        enabled = method == "torch"

        def run(fn):
            def go():
                with torch.backends.cudnn.flags(enabled=enabled, benchmark=False, allow_tf32=False):
                    return fn()
            return go
        return {"forward": run(lambda: F.conv2d(tx, tw, None, s, p)),
                "dgrad": run(lambda: grad.conv2d_input(tuple(xs), tw, tdy, s, p)),
                "wgrad": run(lambda: grad.conv2d_weight(tx, tuple(ws), tdy, s, p))}[op]
    raise LookupError(f"unknown method {method!r}")


def _to_host(a):
    if hasattr(a, "detach"):          # torch tensor
        return a.detach().cpu().numpy()
    from ..kernels._common import to_host  # noqa: PLC0415
    return to_host(a)


def run_conv(layer_list, methods, repeats, warmup, results, log=print):
    from ..kernels import conv2d as C  # noqa: PLC0415
    from ..kernels._common import rel_error, sync, time_kernel, to_device  # noqa: PLC0415
    rng = np.random.default_rng(0)
    for L in layer_list:
        xs = (L["N"], L["C"], L["H"], L["W"])
        ws = (L["K"], L["C"], L["R"], L["S"])
        ys = C.conv_output_shape(xs, ws, L["stride"], L["padding"])
        flops = C.conv2d_flops(xs, ws, L["stride"], L["padding"])
        big = tuple(to_device(rng.uniform(-1, 1, sh).astype(np.float32)) for sh in (xs, ws, ys))
        small_x, small_dy = (rng.uniform(-1, 1, (2, *sh[1:])) for sh in (xs, ys))   # float64, batch 2
        small_w = rng.uniform(-1, 1, ws)
        refs = {"forward": C.conv2d_forward_ref(small_x, small_w, None, L["stride"], L["padding"]),
                "dgrad": C.conv2d_dgrad_ref(small_dy, small_w, small_x.shape, L["stride"], L["padding"]),
                "wgrad": C.conv2d_wgrad_ref(small_x, small_dy, ws, L["stride"], L["padding"])}
        small = tuple(to_device(a.astype(np.float32)) for a in (small_x, small_w, small_dy))
        for op in OPS:
            for m in methods:
                try:
                    fn = _conv_runner(m, op, L, big)
                    check = _conv_runner(m, op, {**L, "N": 2}, small)
                except LookupError as e:
                    if not any(s["what"] == f"{m} {op}" for s in results["skipped"]):
                        results["skipped"].append({"what": f"{m} {op}", "why": str(e)})
                    continue
                try:
                    t = time_kernel(fn, n_warmup=warmup, n_repeat=repeats)
                    out = check()
                    sync()
                    err = rel_error(_to_host(out), refs[op])
                except Exception as e:  # noqa: BLE001 - record and go on
                    results["skipped"].append({"what": f"{m} {op} {L['layer']}", "why": f"{type(e).__name__}: {e}"})
                    continue
                results["conv"].append({**L, "op": op, "method": m, "seconds": t, "gflops": flops / t / 1e9})
                results["check"].append({"layer": L["layer"], "op": op, "method": m, "rel_error": err})
                log(f"{L['layer']:18s} {op:7s} {m:14s} {t * 1e3:9.3f} ms {flops / t / 1e9:9.1f} GFLOP/s  err {err:.1e}")


def run_gemm(sizes, repeats, warmup, results, log=print):
    from ..kernels import matmul as MM  # noqa: PLC0415
    from ..kernels._common import rel_error, time_kernel, to_device, xp  # noqa: PLC0415
    rng = np.random.default_rng(1)
    for n in sizes:
        A = rng.uniform(-1, 1, (n, n)).astype(np.float32)
        B = rng.uniform(-1, 1, (n, n)).astype(np.float32)
        rows = min(n, 64)
        ref = A[:rows].astype(np.float64) @ B.astype(np.float64)
        dA, dB = to_device(A), to_device(B)
        C = xp().empty((n, n), np.float32)
        for v in MM.VERSIONS:
            name = "cublas" if v == 0 else f"sgemm-v{v}"
            try:
                t = time_kernel(lambda v=v: MM.matmul(dA, dB, out=C, version=v), n_warmup=warmup, n_repeat=repeats)
                MM.matmul(dA, dB, out=C, version=v)
                err = rel_error(_to_host(C)[:rows], ref)
            except Exception as e:  # noqa: BLE001
                results["skipped"].append({"what": f"{name} {n}", "why": f"{type(e).__name__}: {e}"})
                continue
            g = 2 * n ** 3 / t / 1e9
            results["gemm"].append({"M": n, "N": n, "K": n, "method": name, "seconds": t, "gflops": g,
                                    "rel_error": err})
            log(f"gemm {n:5d} {name:9s} {t * 1e3:9.3f} ms {g:9.1f} GFLOP/s  err {err:.1e}")


def _mnist(limit):
    try:
        import nnbook as nb  # noqa: PLC0415
        (X, y), _ = nb.data.load_mnist()
        X = (X[:limit].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
        return X, y[:limit].astype(np.int64), "mnist"
    except Exception:  # noqa: BLE001 - offline machine: random images time the same
        rng = np.random.default_rng(0)
        return (rng.uniform(0, 1, (limit, 1, 28, 28)).astype(np.float32),
                rng.integers(0, 10, limit), "random")


def run_epoch(methods, images, batch_size, repeats, results, log=print):
    from ..kernels._common import sync, to_device, xp  # noqa: PLC0415
    X, y, data = _mnist(images)
    dX = to_device(X)
    dy = xp().asarray(y)
    order = np.random.default_rng(0).permutation(len(X))
    batches = [xp().asarray(order[i:i + batch_size]) for i in range(0, len(X), batch_size)]
    for m in methods:
        try:
            if m == "torch":
                epoch = _torch_epoch(dX, dy, batches)
            else:
                ops = kernel_ops(m)
                params = {k: to_device(v) for k, v in lenet_init(np.random.default_rng(0)).items()}

                def epoch(ops=ops, params=params):
                    loss = None
                    for b in batches:
                        loss = lenet_step(params, dX[b], dy[b], ops)
                    return float(loss)
            epoch()       # warm-up: compiles kernels, builds cuDNN plans
            ts, loss = [], float("nan")
            for _ in range(repeats):
                sync()
                t = time.perf_counter()
                loss = epoch()
                sync()
                ts.append(time.perf_counter() - t)
        except LookupError as e:
            results["skipped"].append({"what": f"epoch {m}", "why": str(e)})
            continue
        except Exception as e:  # noqa: BLE001
            results["skipped"].append({"what": f"epoch {m}", "why": f"{type(e).__name__}: {e}"})
            continue
        t = float(np.median(ts))
        results["epoch"].append({"model": "lenet5", "method": m, "seconds": t, "images": len(X),
                                 "batch_size": batch_size, "data": data, "loss": float(loss)})
        log(f"epoch lenet5 {m:11s} {t:8.3f} s  (last batch loss {loss:.3f})")


def _torch_epoch(dX, dy, batches):
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        raise LookupError("PyTorch is not installed") from None
    if not torch.cuda.is_available():
        raise LookupError("PyTorch has no CUDA support here")
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                          nn.Linear(84, 10)).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    lossf = nn.CrossEntropyLoss()
    X = torch.as_tensor(dX, device="cuda")
    Y = torch.as_tensor(dy, device="cuda")
    tb = [torch.as_tensor(b, device="cuda") for b in batches]

    def epoch():
        loss = None
        for b in tb:
            opt.zero_grad(set_to_none=True)
            loss = lossf(model(X[b]), Y[b])
            loss.backward()
            opt.step()
        return float(loss)
    return epoch


# ----------------------------------------------------------------------------- driver


def run(*, quick=False, repeats=20, warmup=3, layer_list=None, methods=CONV_METHODS,
        gemm_sizes=None, epoch_methods=EPOCH_METHODS, epoch_images=60000, batch_size=128,
        epoch_repeats=3, command=None, log=print):
    """Run the suite and return the results dict (does not write it)."""
    from ..kernels import on_simulator  # noqa: PLC0415
    from ._util import stamp  # noqa: PLC0415
    # stamp: date, command, git commit of the checkout, BLAS library and kernel
    results = {"schema": SCHEMA, **stamp(command or "python -m nnbook.bench cudnn"),
               "env": None, "settings": {"repeats": int(repeats), "warmup": int(warmup), "quick": bool(quick)},
               "conv": [], "check": [], "gemm": [], "epoch": [], "skipped": []}
    if on_simulator():
        results["env"] = _sim_env()
    else:
        import nnbook  # noqa: PLC0415
        results["env"] = {**_versions(), "nnbook": nnbook.__version__, "tf32": False, "simulated": False}
    run_conv(layers(quick) if layer_list is None else layer_list, methods, repeats, warmup, results, log)
    sizes = gemm_sizes if gemm_sizes is not None else ((512, 1024, 2048) if quick else (256, 512, 1024, 2048, 4096))
    run_gemm(sizes, repeats, warmup, results, log)
    if epoch_methods:
        run_epoch(epoch_methods, epoch_images, batch_size, epoch_repeats, results, log)
    return validate(results)


def main(argv=()):
    p = argparse.ArgumentParser(prog="python -m nnbook.bench cudnn", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="batch 32 only, fewer GEMM sizes, 1 epoch repeat")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--epoch-repeats", type=int, default=3)
    p.add_argument("--no-epoch", action="store_true", help="skip the LeNet-5 training epochs")
    p.add_argument("--out", default=None, help=f"results file (default {DEFAULT_PATH})")
    args = p.parse_args(list(argv))
    os.environ.setdefault("NVIDIA_TF32_OVERRIDE", "0")      # before CUDA initialises: no TF32 anywhere
    from ._util import gpu_refusal  # noqa: PLC0415
    why = gpu_refusal("nnbook.bench cudnn")
    if why:
        print(why, file=sys.stderr)
        return 2
    if os.environ.get("NVIDIA_TF32_OVERRIDE") != "0":
        print("error: NVIDIA_TF32_OVERRIDE must be 0 (TF32 off) for these comparisons", file=sys.stderr)
        return 2
    res = run(quick=args.quick, repeats=args.repeats, warmup=args.warmup,
              epoch_methods=() if args.no_epoch else EPOCH_METHODS,
              epoch_repeats=1 if args.quick else args.epoch_repeats,
              command="python -m nnbook.bench cudnn " + " ".join(argv))
    out = Path(args.out) if args.out else DEFAULT_PATH
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    print(f"wrote {out}")
    return 0
