"""MLP epoch on MNIST: both tiers of nnbook (NumPy) against PyTorch CPU in one command.

``python -m nnbook bench mlp [--rounds 5] [--threads 2] [--out FILE]``

Trains the 784-256-128-10 ReLU MLP (He init, plain SGD lr 0.1, batch 128,
float32) for one epoch over the 60,000 MNIST training images with nnbook,
and the same model, batch order and threads with PyTorch, alternating
A B A B; reports each time, and the median of the per-round ratios
nnbook / PyTorch (below 1 means nnbook is faster).  Two nnbook contenders:
``nb.fit`` (the training engine) and a plain loop over the public API of the
reference layers (``model.forward``, ``loss.forward``,
``model.backward(..., need_input_grad=False)``,
``opt.step``, ``opt.zero_grad``), the loop a student writes.

A third contender, :func:`handwritten_epoch`, is the same training written as one
flat NumPy loop with every trick nnbook uses (persistent buffers, in-place ReLU,
the softmax worked class-major, the learning rate folded into the loss
gradient, the SGD step fused into the weight-gradient GEMM, the bias added
inside the forward GEMM) and no framework around it: the distance between it
and nnbook is the price of nnbook's layers, checks and bookkeeping, and its
ratio to PyTorch is what plain NumPy can reach on the machine.
"""
from __future__ import annotations

from ._util import (cpu_bench_args, import_torch, machine, median, paired_rounds, stamp,
                    torch_sgd_epoch, write_json)


def handwritten_epoch(X, y, params, lr, bs, rng):
    """One epoch of the 784-256-128-10 ReLU MLP as a single NumPy loop (full batches
    only).  ``params``: [W1, b1, W2, b2, W3, b3] (float32, updated in place)."""
    import numpy as np  # noqa: PLC0415

    from ..engine import _blas  # noqa: PLC0415
    W1, b1, W2, b2, W3, b3 = params
    n = len(X)
    f32 = np.float32
    xb = np.empty((bs, W1.shape[0]), f32)
    h1, h2 = np.empty((bs, W1.shape[1]), f32), np.empty((bs, W2.shape[1]), f32)
    o = np.empty((bs, W3.shape[1]), f32)
    m1, m2 = np.empty(h1.shape, f32), np.empty(h2.shape, f32)      # 0/1 ReLU masks as floats
    d1, d2 = np.empty(h1.shape, f32), np.empty(h2.shape, f32)
    rows = np.arange(bs)
    scale = f32(lr / bs)

    memos = {id(W): (_blas.GemmMemo(), _blas.GemmMemo()) for W in (W1, W2, W3)}

    def affine(x, W, b, h):   # h = x @ W + b: the product added onto the bias when possible
        np.copyto(h, b)
        if not _blas.gemm_acc(x, W, h, memo=memos[id(W)][0]):
            np.matmul(x, W, out=h)
            h += b

    def step_w(W, x, d):      # W -= x^T d (fused in the GEMM when possible)
        if not _blas.gemm_tn_update(W, x, d, memos[id(W)][1]):
            W -= x.T @ d

    perm = rng.permutation(n)
    for i in range(0, n - n % bs, bs):
        idx = perm[i:i + bs]
        np.take(X, idx, axis=0, out=xb, mode="clip")       # no bounds-check temporary
        yb = y[idx]
        affine(xb, W1, b1, h1)
        np.greater(h1, 0, out=m1, casting="unsafe"); h1 *= m1            # noqa: E702
        affine(h1, W2, b2, h2)
        np.greater(h2, 0, out=m2, casting="unsafe"); h2 *= m2            # noqa: E702
        affine(h2, W3, b3, o)
        et = o.T.copy()                             # class-major softmax, as nnbook's
        et -= et.max(axis=0)
        np.exp(et, out=et)
        et /= et.sum(axis=0)
        at = np.multiply(yb, bs, dtype=np.intp)
        at += rows
        et.reshape(-1)[at] -= 1
        e = np.multiply(et.T, scale, order="C")     # dE/dlogits, times lr
        np.matmul(e, W3.T, out=d2); step_w(W3, h2, e); b3 -= e.sum(axis=0)   # noqa: E702
        d2 *= m2
        np.matmul(d2, W2.T, out=d1); step_w(W2, h1, d2); b2 -= d2.sum(axis=0)  # noqa: E702
        d1 *= m1
        step_w(W1, xb, d1); b1 -= d1.sum(axis=0)                         # noqa: E702


def main(argv=()):
    args = cpu_bench_args("python -m nnbook bench mlp", __doc__, "--limit", 60000,
                          "training images per epoch", argv)
    import numpy as np  # noqa: PLC0415

    import nnbook as nb  # noqa: PLC0415
    torch = import_torch(args.threads)
    if torch is None:
        return 2
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
        torch_sgd_epoch(tm, topt, tloss, Xt, yt, bs)

    nb.seed(0)
    ref_model = nb.mlp(sizes)                  # the same initial weights as ``model``
    ref_loss = nb.SoftmaxCrossEntropy()
    ref_opt = nb.SGD(ref_model.parameters(), lr=0.1)
    ref_rng = np.random.default_rng(1)

    def run_reference():
        for idx in nb.train.iterate_minibatches(n, bs, rng=ref_rng):
            out = ref_model.forward(X[idx])
            ref_loss.forward(out, y[idx])
            ref_model.backward(ref_loss.backward(), need_input_grad=False)
            ref_opt.step()
            ref_opt.zero_grad()

    hw_params = [a.copy() for l in (model[0], model[2], model[4])
                 for a in (l.params["W"], l.params["b"])]
    hw_rng = np.random.default_rng(0)

    def run_handwritten():
        handwritten_epoch(X, y, hw_params, 0.1, bs, hw_rng)

    times, rel = paired_rounds({"nnbook": run_nnbook, "pytorch": run_torch,
                                "reference-loop": run_reference,
                                "hand-written": run_handwritten}, args.rounds, peer="pytorch")
    t_nb, t_pt, t_hw = times["nnbook"], times["pytorch"], times["hand-written"]
    ratios, hw_ratios = rel["nnbook"], rel["hand-written"]
    t_ref, ref_ratios = times["reference-loop"], rel["reference-loop"]
    res = {"benchmark": "mlp_epoch", "model": "784-256-128-10 ReLU, SGD lr 0.1", "batch_size": bs,
           "images": n, "threads": args.threads, "nnbook_s": t_nb, "pytorch_s": t_pt,
           "ratios": ratios, "median_nnbook_s": median(t_nb), "median_pytorch_s": median(t_pt),
           "median_ratio": median(ratios), "handwritten_s": t_hw,
           "handwritten_ratios": hw_ratios, "median_handwritten_s": median(t_hw),
           "median_handwritten_ratio": median(hw_ratios), "reference_loop_s": t_ref,
           "reference_loop_ratios": ref_ratios, "median_reference_loop_s": median(t_ref),
           "median_reference_loop_ratio": median(ref_ratios), "torch": torch.__version__, **machine(), **stamp()}
    print(f"median: nb.fit {res['median_nnbook_s']:.3f} s, PyTorch {res['median_pytorch_s']:.3f} s, "
          f"median paired ratio {res['median_ratio']:.3f} (goal <= 0.75); reference-layer loop "
          f"{res['median_reference_loop_s']:.3f} s, ratio {res['median_reference_loop_ratio']:.3f} "
          f"(goal <= 1.0); hand-written NumPy {res['median_handwritten_s']:.3f} s, ratio "
          f"{res['median_handwritten_ratio']:.3f}")
    if args.out:
        write_json(args.out, res)
    return 0
