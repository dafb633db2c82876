"""MLP epoch on MNIST: nnbook (NumPy) against PyTorch CPU in the same command.

``python -m nnbook bench mlp [--rounds 5] [--threads 2] [--out FILE]``

Trains the 784-256-128-10 ReLU MLP (He init, plain SGD lr 0.1, batch 128,
float32) for one epoch over the 60,000 MNIST training images with nnbook,
and the same model, batch order and threads with PyTorch, alternating
A B A B; reports each time, and the median of the per-round ratios
nnbook / PyTorch (below 1 means nnbook is faster).
"""
from __future__ import annotations

import argparse

from ._util import limit_threads, machine, median, stamp, timed, write_json


def main(argv=()):
    p = argparse.ArgumentParser(prog="python -m nnbook bench mlp", description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, default=60000, help="training images per epoch")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    limit_threads(args.threads)
    import numpy as np  # noqa: PLC0415

    import nnbook as nb  # noqa: PLC0415
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        print("error: PyTorch is not installed; this benchmark compares against it "
              "(pip install torch==2.13.0)")
        return 2
    torch.set_num_threads(args.threads)
    nb.use("numpy")
    (X, y), _ = nb.data.load_mnist()
    X = nb.data.scale(nb.data.flatten(X))[:args.limit]
    y = y[:args.limit]
    n, bs = len(X), 128
    sizes = [784, 256, 128, 10]

    nb.seed(0)
    model = nb.mlp(sizes)
    loss = nb.SoftmaxCrossEntropy()
    opt = nb.SGD(model.parameters(), lr=0.1)

    tm = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                             torch.nn.ReLU(), torch.nn.Linear(128, 10))
    with torch.no_grad():  # same initial weights (torch stores W transposed)
        for tl, nl in zip([tm[0], tm[2], tm[4]], [model[0], model[2], model[4]]):
            tl.weight.copy_(torch.from_numpy(nl.params["W"].T.copy()))
            tl.bias.copy_(torch.from_numpy(nl.params["b"].copy()))
    topt = torch.optim.SGD(tm.parameters(), lr=0.1)
    tloss = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def run_nnbook():
        nb.fit(model, loss, opt, X, y, epochs=1, batch_size=bs, progress=False)

    def run_torch():
        perm = torch.from_numpy(np.random.default_rng(0).permutation(n))
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            topt.zero_grad()
            out = tloss(tm(Xt[idx]), yt[idx])
            out.backward()
            topt.step()

    run_nnbook(); run_torch()  # warm-up (first-touch memory, thread pools)
    t_nb, t_pt, ratios = [], [], []
    for r in range(args.rounds):
        a = timed(run_nnbook)
        b = timed(run_torch)
        t_nb.append(a); t_pt.append(b); ratios.append(a / b)
        print(f"round {r + 1}: nnbook {a:.3f} s  pytorch {b:.3f} s  ratio {a / b:.3f}")
    res = {"benchmark": "mlp_epoch", "model": "784-256-128-10 ReLU, SGD lr 0.1", "batch_size": bs,
           "images": n, "threads": args.threads, "nnbook_s": t_nb, "pytorch_s": t_pt,
           "ratios": ratios, "median_nnbook_s": median(t_nb), "median_pytorch_s": median(t_pt),
           "median_ratio": median(ratios), "torch": torch.__version__, **machine(), **stamp()}
    print(f"median: nnbook {res['median_nnbook_s']:.3f} s, PyTorch {res['median_pytorch_s']:.3f} s, "
          f"median paired ratio {res['median_ratio']:.3f} (target <= 0.75)")
    if args.out:
        write_json(args.out, res)
    return 0
