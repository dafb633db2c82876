"""LeNet-5 training on MNIST: nnbook (NumPy) against PyTorch CPU in the same command.

``python -m nnbook bench lenet5 [--rounds 5] [--threads 2] [--images 10000] [--out FILE]``

Trains LeNet-5 (:func:`nnbook.LeNet5`: conv 5x5x6 pad 2, ReLU, max-pool 2,
conv 5x5x16, ReLU, max-pool 2, dense 400-120-84-10; plain SGD lr 0.05,
batch 128, float32) for one pass over ``--images`` MNIST training images with
nnbook, and the same model (same initial weights, same batch order, same
thread count) with PyTorch, alternating A B A B with a pause before each
timed call.  Reports each time and the median of the per-round ratios
nnbook / PyTorch (below 1 means nnbook is faster).

It also reports what the first pass costs: in a fresh process whose numba cache
is empty, the seconds spent compiling the engine's CPU kernels (``compile_s``)
and the whole first pass including them (``first_pass_s``); in this process,
where the kernels come from numba's disk cache, the first pass
(``first_pass_cached_s``) and the cache load (``cache_load_s``).
``--no-cold`` skips the fresh process.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from ._util import (
    conv_times,
    cpu_bench_args,
    import_torch,
    machine,
    median,
    mnist_digits,
    paired_rounds,
    stamp,
    torch_sgd_epoch,
    write_json,
)

_COLD = """
import json, sys, time
from nnbook.bench._util import limit_threads, mnist_digits
limit_threads(int(sys.argv[2]))
import nnbook as nb
from nnbook.engine import cpu_kernels
nb.use("numpy")
X, y = mnist_digits(int(sys.argv[1]))
nb.seed(0)
model = nb.LeNet5(dtype="float32")
opt = nb.SGD(model.parameters(), lr=0.05)
t = time.perf_counter()
nb.fit(model, nb.SoftmaxCrossEntropy(), opt, X, y, epochs=1, batch_size=128, progress=False)
print(json.dumps({"first_pass_s": time.perf_counter() - t,
                  "compile_s": cpu_kernels.compile_seconds(),
                  "kernels": cpu_kernels.available()}))
"""


LAYERS = {"conv1": ((128, 1, 28, 28), (6, 1, 5, 5), (2, 2), True),
          "conv2": ((128, 6, 14, 14), (16, 6, 5, 5), (0, 0), False)}


def layer_times(reps=15):
    """Seconds per batch of LeNet-5's two convolution + pool + ReLU stages, forward
    and backward, on the compiled kernel and on BLAS (see
    :func:`nnbook.bench._util.conv_times`), with the arithmetic each executes and the
    useful arithmetic (GFLOP per batch)."""
    from nnbook.engine import cpu_kernels  # noqa: PLC0415
    res = {}
    for name, (xs, ws, pad, first) in LAYERS.items():
        N, C, H, Wd = xs
        F, _, kh, kw = ws
        Hp, Wp = H + 2 * pad[0], Wd + 2 * pad[1]
        Ho, Wo = Hp - kh + 1, Wp - kw + 1
        passes = 2 if first else 3                  # forward, dW (, dx)
        useful = 2 * N * F * C * kh * kw * Ho * Wo
        Ws = cpu_kernels.row_stride(Wp, Ho)
        # row lowering: (N*Ho, kh*C*Wp + 1) @ (kh*C*Wp + 1, F*Wo) per product
        banded = 2 * N * Ho * (kh * C * Wp + 1) * F * Wo
        # compiled: the output and the weight gradient on the Ho x Ws grid, the input
        # gradient on the Hp x Ws grid
        grid = useful * Ws // Wo
        direct = 2 * grid + (0 if first else 2 * N * C * F * kh * kw * Hp * Ws)
        res[name] = {"gflop_useful": passes * useful / 1e9,
                     "gflop_numpy": passes * banded / 1e9, "gflop_kernel": direct / 1e9,
                     **conv_times(xs, ws, padding=pad, first=first, pool=True, reps=reps)}
    return res


def cold_first_pass(images, threads):
    """``{"first_pass_s", "compile_s", "kernels"}`` of a first pass in a fresh Python
    process with an empty numba cache (None if that process fails)."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        r = subprocess.run([sys.executable, "-c", _COLD, str(images), str(threads)],
                           capture_output=True, text=True, env=env, check=False)
    if r.returncode != 0:
        print(f"warning: cold first pass failed: {r.stderr.strip()[-500:]}")
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def torch_lenet5(model):
    """The PyTorch twin of an nnbook LeNet-5 (no batch norm), with the same weights."""
    import torch  # noqa: PLC0415
    nn = torch.nn
    tm = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                       nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                       nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                       nn.Linear(84, 10))
    if model[0].params["W"].dtype == "float64":
        tm = tm.double()
    with torch.no_grad():
        for ti, ni in ((0, 0), (3, 3)):
            tm[ti].weight.copy_(torch.from_numpy(model[ni].params["W"].copy()))
            tm[ti].bias.copy_(torch.from_numpy(model[ni].params["b"].copy()))
        for ti, ni in ((7, 7), (9, 9), (11, 11)):
            tm[ti].weight.copy_(torch.from_numpy(model[ni].params["W"].T.copy()))
            tm[ti].bias.copy_(torch.from_numpy(model[ni].params["b"].copy()))
    return tm


def main(argv=()):
    argv = list(argv)
    cold = "--no-cold" not in argv
    argv = [a for a in argv if a != "--no-cold"]
    args = cpu_bench_args("python -m nnbook bench lenet5", __doc__, "--images", 10000,
                          "training images per pass", argv)

    import nnbook as nb  # noqa: PLC0415
    from nnbook.engine import cpu_kernels  # noqa: PLC0415
    from nnbook.lenet import LeNet5  # noqa: PLC0415
    torch = import_torch(args.threads)
    if torch is None:
        return 2
    first = cold_first_pass(args.images, args.threads) if cold else None
    nb.use("numpy")
    X, y = mnist_digits(args.images)
    n, bs, lr = len(X), 128, 0.05

    nb.seed(0)
    model = LeNet5(dtype="float32")
    loss = nb.SoftmaxCrossEntropy()
    opt = nb.SGD(model.parameters(), lr=lr)
    tm = torch_lenet5(model)
    topt = torch.optim.SGD(tm.parameters(), lr=lr)
    tloss = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def run_nnbook():
        nb.fit(model, loss, opt, X, y, epochs=1, batch_size=bs, progress=False)

    def run_torch():
        torch_sgd_epoch(tm, topt, tloss, Xt, yt, bs)

    t = time.perf_counter()
    run_nnbook()                      # kernels from numba's cache, buffers allocated
    first_cached = time.perf_counter() - t
    layers = layer_times()
    times, rel = paired_rounds({"nnbook": run_nnbook, "pytorch": run_torch}, args.rounds,
                               peer="pytorch")
    t_nb, t_pt, ratios = times["nnbook"], times["pytorch"], rel["nnbook"]
    res = {"benchmark": "lenet5_pass", "model": "LeNet-5 (ReLU, max-pool), SGD lr 0.05",
           "batch_size": bs, "images": n, "threads": args.threads, "dtype": "float32",
           "nnbook_s": t_nb, "pytorch_s": t_pt, "ratios": ratios,
           "median_nnbook_s": median(t_nb), "median_pytorch_s": median(t_pt),
           "median_ratio": median(ratios), "compiled_kernels": cpu_kernels.available(),
           "compile_s": first and first["compile_s"],
           "first_pass_s": first and first["first_pass_s"],
           "first_pass_cached_s": first_cached, "cache_load_s": cpu_kernels.compile_seconds(),
           "layers": layers, "torch": torch.__version__, **machine(), **stamp()}
    print(f"machine: {res['cpu']} ({res['cpu_count']} CPUs), numpy {res['numpy']}, "
          f"torch {res['torch']}, {args.threads} threads")
    print(f"median: nnbook {res['median_nnbook_s']:.3f} s, PyTorch {res['median_pytorch_s']:.3f} s, "
          f"median paired ratio {res['median_ratio']:.3f} (target <= 1.0)")
    if first:
        print(f"first pass in a fresh process: {first['first_pass_s']:.2f} s, of which "
              f"{first['compile_s']:.2f} s compiling the CPU kernels")
    for name, e in layers.items():
        print(f"{name}: " + ", ".join(
            f"{k} {1e3 * e[k]['forward_s']:.2f} + {1e3 * e[k]['backward_s']:.2f} ms"
            for k in ("kernel", "numpy") if k in e) + " per batch (forward + backward)")
    print(f"first pass here (kernels from numba's cache, {res['cache_load_s']:.2f} s to "
          f"load): {first_cached:.2f} s")
    if args.out:
        write_json(args.out, res)
    return 0
