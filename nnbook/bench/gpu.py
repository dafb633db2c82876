"""GPU benchmark of the dense-network kernels: ``python -m nnbook.bench gpu [--quick]``.

Needs a working CUDA GPU with CuPy and numba-cuda; without one it prints one line
and exits with status 2 (nothing is written).  On a GPU it

1. checks every SGEMM version once (1000×777×513, ragged) and times versions
   1-5 and cuBLAS (``cupy.matmul``, "version 0") on square sizes 256 ... 8192,
   in FP32 with TF32 **off** (``CUPY_TF32=0`` is set before CuPy is imported;
   CuPy's default is also off);
2. times the fused kernels (bias + activation forward/backward, softmax +
   cross-entropy, SGD) in GB/s;
3. times host↔device copies (pageable and pinned) of a batch and of the whole
   MNIST-sized training set;
4. times one training step of the 784-256-128-10 MLP at batch 128 on the own
   kernels, on CuPy/cuBLAS, and on PyTorch CUDA when ``torch.cuda`` works, each
   with the batch already on the device and with its host→device copy; and a
   full epoch (60 000 samples, synthetic data of MNIST's shape) on the GPU
   engines and on the CPU (NumPy) for the speed-up.

Kernel times are medians of CUDA-event times (``cupyx.profiler.benchmark``)
after warm-up; training steps are host wall-clock over synchronised loops of
steps (they include Python and launch overheads, as training does; every step
reads its loss back to the host, as :func:`nnbook.fit` does).

Results go to ``nnbook/results/gpu_dense.json`` (``--out`` to change), schema 1::

    {
      "schema": 1,
      "date": ISO-8601 UTC, "command": str, "git_commit": str|null, "git_dirty": bool|null,
      "blas": [...] (host BLAS; nnbook.bench._util.stamp), "tf32": false, "notes": [str],
      "device": {"name", "compute_capability", "sm_count", "memory_gib",
                 "driver_version", "cuda_runtime", "cupy", "numba", "numba_cuda",
                 "torch" (or null)},
      "machine": {...host description (nnbook.bench._util.machine)...},
      "sgemm_check": [{"version", "shape": [M, N, K], "rel_error"}],
      "sgemm": [{"version", "M", "N", "K", "seconds", "gflops", "config"}],
      "fused": [{"kernel", "version", "shape", "seconds", "gbps", ...}],
      "transfers": [{"what", "direction": "h2d"|"d2h", "pinned", "bytes",
                     "seconds", "gbps"}],
      "train_step": [{"engine": "kernels"|"cupy"|"torch", "batch", "sizes",
                      "with_transfer", "seconds"}],
      "epoch": {"samples", "batch", "cpu_seconds", "gpu_seconds": {engine: s}}
    }

All times are medians in seconds.  :func:`load_results` reads the file (None if
it does not exist), so the book can show recorded numbers on machines without a GPU.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

RESULTS_PATH = Path(__file__).resolve().parents[1] / "results" / "gpu_dense.json"
SIZES = (256, 512, 1024, 2048, 4096, 8192)
MLP_SIZES = (784, 256, 128, 10)

__all__ = ["main", "load_results", "RESULTS_PATH"]


def load_results(path=None):
    """The recorded GPU results as a dict, or None when no run has been recorded."""
    p = Path(path) if path is not None else RESULTS_PATH
    if not p.exists():
        return None
    with open(p) as f:
        return json.load(f)


def _median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def _device_info(cp):
    import numba  # noqa: PLC0415
    rt = cp.cuda.runtime
    props = rt.getDeviceProperties(cp.cuda.Device().id)
    name = props["name"]
    name = name.decode() if isinstance(name, bytes) else str(name)
    try:
        import numba_cuda  # noqa: PLC0415
        nc = numba_cuda.__version__
    except Exception:  # noqa: BLE001
        nc = None
    torch_v = None
    try:
        import torch  # noqa: PLC0415
        torch_v = torch.__version__
    except Exception:  # noqa: BLE001
        pass
    return {"name": name, "compute_capability": f"{props['major']}.{props['minor']}",
            "sm_count": props["multiProcessorCount"],
            "memory_gib": round(props["totalGlobalMem"] / 2**30, 1),
            "driver_version": rt.driverGetVersion(), "cuda_runtime": rt.runtimeGetVersion(),
            "cupy": cp.__version__, "numba": numba.__version__, "numba_cuda": nc,
            "torch": torch_v}


def _sgemm(sizes, log):
    from nnbook.kernels import matmul  # noqa: PLC0415
    checks, rows = [], []
    for v in matmul.VERSIONS:
        err = matmul.check(v, 1000, 777, 513)
        checks.append({"version": v, "shape": [1000, 777, 513], "rel_error": err})
    for n in sizes:
        for v in matmul.VERSIONS:
            # the naive versions need seconds per call at 8192: fewer repeats
            reps = 3 if (v in (1, 2) and n >= 4096) else 20
            r = matmul.benchmark(v, n, n, n, n_repeat=reps)
            rows.append(r)
            log(f"sgemm v{v} {n:5d}: {r['seconds'] * 1e3:9.3f} ms {r['gflops']:9.1f} GFLOP/s")
    return checks, rows


def _fused(quick, log):
    from nnbook.kernels import bias_act, sgd, softmax_xent  # noqa: PLC0415
    rows = []
    shapes = [(128, 256), (4096, 4096)] if not quick else [(128, 256), (2048, 2048)]
    for v in bias_act.VERSIONS:
        bias_act.check(v, 1000, 777, "sigmoid")
        for M, N in shapes:
            for d in ("forward", "backward"):
                r = bias_act.benchmark(v, M, N, "relu", d)
                rows.append({"kernel": f"bias_act_{d}", "version": v, "shape": [M, N],
                             "seconds": r["seconds"], "gbps": r["gbps"]})
                log(f"bias_act {d:8s} v{v} {M}x{N}: {r['gbps']:8.1f} GB/s")
    for v in softmax_xent.VERSIONS:
        softmax_xent.check(v, 1000, 10)
        for N, K in ((128, 10), (65536, 10), (4096, 50257)):
            r = softmax_xent.benchmark(v, N, K)
            rows.append({"kernel": "softmax_xent", "version": v, "shape": [N, K],
                         "seconds": r["seconds"], "gbps": r["gbps"]})
            log(f"softmax_xent v{v} {N}x{K}: {r['gbps']:8.1f} GB/s")
    n_mlp = sum(a * b + b for a, b in zip(MLP_SIZES[:-1], MLP_SIZES[1:]))
    for v in sgd.VERSIONS:
        sgd.check(v, 100_003, momentum=0.9)
        for n in (n_mlp, 1 << 24):
            for mom in (0.0, 0.9):
                r = sgd.benchmark(v, n, momentum=mom)
                rows.append({"kernel": "sgd", "version": v, "shape": [n], "momentum": mom,
                             "seconds": r["seconds"], "gbps": r["gbps"]})
                log(f"sgd v{v} n={n} mom={mom}: {r['gbps']:8.1f} GB/s")
    return rows


def _transfers(cp, log):
    import numpy as np  # noqa: PLC0415
    rows = []
    for what, shape in (("batch 128x784", (128, 784)), ("train set 60000x784", (60000, 784))):
        h = np.random.default_rng(0).random(shape, dtype=np.float32)
        for pinned in (False, True):
            if pinned:
                mem = cp.cuda.alloc_pinned_memory(h.nbytes)
                hp = np.frombuffer(mem, np.float32, h.size).reshape(shape)
                hp[...] = h
                src = hp
            else:
                src = h
            d = cp.empty(shape, np.float32)
            for direction in ("h2d", "d2h"):
                ts = []
                for _ in range(10):
                    cp.cuda.Device().synchronize()
                    t = time.perf_counter()
                    if direction == "h2d":
                        d.set(src)
                    else:
                        d.get(out=src)
                    cp.cuda.Device().synchronize()
                    ts.append(time.perf_counter() - t)
                t = _median(ts[2:])
                rows.append({"what": what, "direction": direction, "pinned": pinned,
                             "bytes": h.nbytes, "seconds": t, "gbps": h.nbytes / t / 1e9})
                log(f"{direction} {what} pinned={pinned}: {t * 1e3:8.3f} ms "
                    f"{h.nbytes / t / 1e9:6.2f} GB/s")
    return rows


def _nb_step(engine, lr=0.05):
    import nnbook as nb  # noqa: PLC0415
    from nnbook.kernels import dense as kd  # noqa: PLC0415
    nb.seed(0)
    eng = "kernels" if engine == "kernels" else "xp"
    model = kd.mlp(MLP_SIZES, engine=eng)
    loss = kd.make_loss(eng)
    opt = kd.make_sgd(eng, model.parameters(), lr=lr)
    # the training step nb.fit runs (its engine, for the cuBLAS version; the kernel
    # layers run as written); it returns the loss as a float, which syncs, as fit does
    return nb.engine.compile_step(model, loss, opt)


def _torch_step(lr=0.05):
    import torch  # noqa: PLC0415
    if not torch.cuda.is_available():
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    layers = []
    for i, (a, b) in enumerate(zip(MLP_SIZES[:-1], MLP_SIZES[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(MLP_SIZES) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    lossf = torch.nn.CrossEntropyLoss()

    def step(xb, yb):
        opt.zero_grad(set_to_none=True)
        loss = lossf(model(xb), yb)
        loss.backward()
        opt.step()
        loss.item()
    return step, torch


def _time_loop(fn, sync, n_steps=50, rounds=7):
    for _ in range(5):
        fn()
    sync()
    ts = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(n_steps):
            fn()
        sync()
        ts.append((time.perf_counter() - t) / n_steps)
    return _median(ts)


def _training(cp, log, quick):
    import numpy as np  # noqa: PLC0415

    import nnbook as nb  # noqa: PLC0415
    rng = np.random.default_rng(0)
    B = 128
    n_samples = 60000 if not quick else 12800
    Xh = rng.random((n_samples, MLP_SIZES[0]), dtype=np.float32)
    yh = rng.integers(0, MLP_SIZES[-1], n_samples)
    rows, epoch = [], {"samples": n_samples, "batch": B, "gpu_seconds": {}}
    sync = cp.cuda.Device().synchronize
    nb.use("cupy")
    Xd, yd = cp.asarray(Xh), cp.asarray(yh)
    xb_h, yb_h = Xh[:B].copy(), yh[:B].copy()
    for engine in ("kernels", "cupy"):
        step = _nb_step(engine)
        t0 = _time_loop(lambda: step(Xd[:B], yd[:B]), sync)
        t1 = _time_loop(lambda: step(cp.asarray(xb_h), cp.asarray(yb_h)), sync)
        rows += [{"engine": engine, "batch": B, "sizes": list(MLP_SIZES),
                  "with_transfer": False, "seconds": t0},
                 {"engine": engine, "batch": B, "sizes": list(MLP_SIZES),
                  "with_transfer": True, "seconds": t1}]
        log(f"train step {engine:8s}: {t0 * 1e3:7.3f} ms on device, {t1 * 1e3:7.3f} ms with copy")

        def epoch_run():
            for i in range(0, n_samples - B + 1, B):
                step(Xd[i:i + B], yd[i:i + B])
        epoch["gpu_seconds"][engine] = _time_loop(epoch_run, sync, n_steps=1, rounds=3)
    ts = _torch_step()
    if ts is not None:
        tstep, torch = ts
        Xt = torch.from_numpy(Xh).cuda()
        yt = torch.from_numpy(yh).cuda()
        tsync = torch.cuda.synchronize
        t0 = _time_loop(lambda: tstep(Xt[:B], yt[:B]), tsync)
        t1 = _time_loop(lambda: tstep(torch.from_numpy(xb_h).cuda(), torch.from_numpy(yb_h).cuda()),
                        tsync)
        rows += [{"engine": "torch", "batch": B, "sizes": list(MLP_SIZES),
                  "with_transfer": False, "seconds": t0},
                 {"engine": "torch", "batch": B, "sizes": list(MLP_SIZES),
                  "with_transfer": True, "seconds": t1}]
        log(f"train step torch   : {t0 * 1e3:7.3f} ms on device, {t1 * 1e3:7.3f} ms with copy")

        def tepoch():
            for i in range(0, n_samples - B + 1, B):
                tstep(Xt[i:i + B], yt[i:i + B])
        epoch["gpu_seconds"]["torch"] = _time_loop(tepoch, tsync, n_steps=1, rounds=3)
    # the CPU epoch, for the speed-up
    nb.use("numpy")
    step = _nb_step("cupy")   # the "xp" engine, now on NumPy
    t = time.perf_counter()
    for i in range(0, n_samples - B + 1, B):
        step(Xh[i:i + B], yh[i:i + B])
    epoch["cpu_seconds"] = time.perf_counter() - t
    log(f"epoch: cpu {epoch['cpu_seconds']:.2f} s, gpu {epoch['gpu_seconds']}")
    return rows, epoch


def main(argv=None) -> int:
    import argparse  # noqa: PLC0415
    ap = argparse.ArgumentParser(prog="python -m nnbook.bench gpu",
                                 description="Dense-network CUDA kernels vs cuBLAS/CuPy/PyTorch.")
    ap.add_argument("--quick", action="store_true", help="sizes up to 2048, a shorter epoch")
    ap.add_argument("--out", default=str(RESULTS_PATH), help="JSON output path")
    args = ap.parse_args(list(argv) if argv is not None else None)

    notes = []
    if "cupy" in sys.modules and os.environ.get("CUPY_TF32", "0") != "0":
        notes.append("CuPy was imported before the benchmark with CUPY_TF32 set: TF32 may be on")
    os.environ["CUPY_TF32"] = "0"        # plain FP32 GEMMs: compare like with like
    from ._util import gpu_refusal  # noqa: PLC0415
    why = gpu_refusal("nnbook.bench gpu")
    if why:
        print(why, file=sys.stderr)
        return 2
    import cupy as cp  # noqa: PLC0415

    from ._util import machine, stamp  # noqa: PLC0415

    def log(msg):
        print(msg, flush=True)

    res = {"schema": 1, **stamp(), "tf32": False, "notes": notes,
           "device": _device_info(cp), "machine": machine()}
    log(f"device: {res['device']['name']} (driver {res['device']['driver_version']}, "
        f"runtime {res['device']['cuda_runtime']})")
    sizes = [s for s in SIZES if s <= 2048] if args.quick else list(SIZES)
    res["sgemm_check"], res["sgemm"] = _sgemm(sizes, log)
    res["fused"] = _fused(args.quick, log)
    res["transfers"] = _transfers(cp, log)
    res["train_step"], res["epoch"] = _training(cp, log, args.quick)
    if args.quick:
        res["notes"].append("--quick: SGEMM sizes up to 2048, a 12 800-sample epoch")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
