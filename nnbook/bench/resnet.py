"""ResNet-15 training on MNIST-sized input: nnbook (NumPy) against PyTorch CPU in the
same command.

``python -m nnbook bench resnet [--rounds 5] [--threads 2] [--images 1024] [--out FILE]``

Trains the second thesis's ResNet-15 (:func:`nnbook.models.ResNet15` with
``input_size=28``: a 7x7 stem with batch norm, ReLU and max-pool, four bottleneck
blocks at 64/128/256/512 channels, global average pool, BatchNorm1d, dropout 0.5 and
one dense layer; 513,034 parameters; plain SGD lr 0.05, batch 128, float32) for one
pass over ``--images`` MNIST training images (28x28) with nnbook, and the same model
built from ``torch.nn`` with the same initial weights, the same batch order and the
same thread count, alternating A B A B with a pause before each timed call.  Before
timing, the two models are checked to compute the same outputs and gradients on one
batch.  Reports each time and the median of the per-round ratios nnbook / PyTorch
(below 1 means nnbook is faster).

It also times every convolution larger than 1x1 (``layers``), forward and backward
for one batch, on the engine's compiled kernels and on BLAS, and says which one the
engine runs (see :func:`nnbook.bench._util.conv_times`).
"""
from __future__ import annotations

import os

from ._util import (conv_times, cpu_bench_args, import_torch, machine, median, mnist_digits,
                    paired_rounds, stamp, torch_sgd_epoch, write_json)


def _copy_conv_bn(conv, bn, tconv, tbn, torch):
    tconv.weight.copy_(torch.from_numpy(conv.params["W"].copy()))
    tbn.weight.copy_(torch.from_numpy(bn.params["gamma"].copy()))
    tbn.bias.copy_(torch.from_numpy(bn.params["beta"].copy()))
    tbn.running_mean.copy_(torch.from_numpy(bn.buffers["running_mean"].copy()))
    tbn.running_var.copy_(torch.from_numpy(bn.buffers["running_var"].copy()))


def torch_resnet(model):
    """The ``torch.nn`` twin of an nnbook :func:`~nnbook.models.ResNet` (bottleneck or
    basic blocks), with the same weights and batch-norm statistics.  Children are
    numbered like the nnbook model's, so ``tm[i]`` is the twin of ``model[i]``."""
    import torch  # noqa: PLC0415

    from ..conv import Conv2D  # noqa: PLC0415
    from ..layers import Dense, Dropout, ReLU  # noqa: PLC0415
    from ..norm import BatchNorm1d, BatchNorm2d  # noqa: PLC0415
    from ..pool import GlobalAvgPool2D, MaxPool2D  # noqa: PLC0415
    from ..residual import _Residual  # noqa: PLC0415
    nn = torch.nn

    def conv(c):
        return nn.Conv2d(c.in_channels, c.out_channels, c.kernel_size, stride=c.stride,
                         padding=c.padding, bias=c.use_bias)

    def bn2(b):
        return nn.BatchNorm2d(b.num_features, eps=b.eps, momentum=b.momentum)

    class Block(nn.Module):
        def __init__(self, block):
            super().__init__()
            mods = []
            for l in block.main:
                mods.append(conv(l) if isinstance(l, Conv2D) else
                            bn2(l) if isinstance(l, BatchNorm2d) else nn.ReLU())
            self.main = nn.Sequential(*mods)
            self.shortcut = (nn.Sequential(conv(block.shortcut[0]), bn2(block.shortcut[1]))
                             if block.shortcut else nn.Identity())

        def forward(self, x):
            return torch.relu(self.main(x) + self.shortcut(x))

    mods = []
    for l in model:
        if isinstance(l, Conv2D):
            mods.append(conv(l))
        elif isinstance(l, BatchNorm2d):
            mods.append(bn2(l))
        elif isinstance(l, BatchNorm1d):
            mods.append(nn.BatchNorm1d(l.num_features, eps=l.eps, momentum=l.momentum))
        elif isinstance(l, ReLU):
            mods.append(nn.ReLU())
        elif isinstance(l, MaxPool2D):
            mods.append(nn.MaxPool2d(l.kernel_size, l.stride))
        elif isinstance(l, _Residual):
            mods.append(Block(l))
        elif isinstance(l, GlobalAvgPool2D):
            mods.append(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))
        elif isinstance(l, Dropout):
            mods.append(nn.Dropout(l.p))
        elif isinstance(l, Dense):
            mods.append(nn.Linear(l.in_features, l.out_features, bias=l.use_bias))
        else:
            raise TypeError(f"torch_resnet: no PyTorch twin for {type(l).__name__}")
    tm = nn.Sequential(*mods)
    if model.dtype == "float64":
        tm = tm.double()
    with torch.no_grad():
        for l, t in zip(model, tm):
            if isinstance(l, (Conv2D,)):
                t.weight.copy_(torch.from_numpy(l.params["W"].copy()))
                if l.use_bias:
                    t.bias.copy_(torch.from_numpy(l.params["b"].copy()))
            elif isinstance(l, (BatchNorm1d, BatchNorm2d)):
                t.weight.copy_(torch.from_numpy(l.params["gamma"].copy()))
                t.bias.copy_(torch.from_numpy(l.params["beta"].copy()))
                t.running_mean.copy_(torch.from_numpy(l.buffers["running_mean"].copy()))
                t.running_var.copy_(torch.from_numpy(l.buffers["running_var"].copy()))
            elif isinstance(l, Dense):
                t.weight.copy_(torch.from_numpy(l.params["W"].T.copy()))
                if l.use_bias:
                    t.bias.copy_(torch.from_numpy(l.params["b"].copy()))
            elif isinstance(l, _Residual):
                pairs = [(c, tc) for c, tc in zip(l.main, t.main)]
                if l.shortcut:
                    pairs += list(zip(l.shortcut, t.shortcut))
                for i in range(0, len(pairs) - 1):
                    (c, tc), (b, tb) = pairs[i], pairs[i + 1]
                    if isinstance(c, Conv2D) and isinstance(b, BatchNorm2d):
                        _copy_conv_bn(c, b, tc, tb, torch)
    return tm


def max_difference(model, tm, x, y, torch):
    """The largest relative differences between ``model`` and its twin ``tm`` on one
    training step's forward (logits) and backward (every weight gradient), with
    dropout switched off on both sides; both models' modes and weights are left as
    they were (the batch-norm running statistics move by one step)."""
    import numpy as np  # noqa: PLC0415

    from ..gradcheck import rel_error  # noqa: PLC0415
    from ..layers import Dropout  # noqa: PLC0415
    from ..losses import SoftmaxCrossEntropy  # noqa: PLC0415
    drops = [l for l in model if isinstance(l, Dropout)]
    ps = [l.p for l in drops]
    for l in drops:
        l.p = 0.0
    tdrops = [m for m in tm if isinstance(m, torch.nn.Dropout)]
    for m in tdrops:
        m.p = 0.0
    try:
        loss = SoftmaxCrossEntropy()
        model.zero_grad()
        out = model.forward(x)
        loss.forward(out, y)
        model.backward(loss.backward())
        tm.zero_grad()
        tout = tm(torch.from_numpy(x))
        torch.nn.functional.cross_entropy(tout, torch.from_numpy(y)).backward()
        ours = [p.grad for p in model.parameters()]
        theirs = []
        for p in tm.parameters():
            g = p.grad.numpy()
            theirs.append(g.T if g.ndim == 2 else g)
        grads = max(rel_error(a, np.asarray(b)) for a, b in zip(ours, theirs))
        model.zero_grad()
        return rel_error(out, tout.detach().numpy()), grads
    finally:
        for l, p in zip(drops, ps):
            l.p = p
        for m, p in zip(tdrops, ps):
            m.p = p


def conv_layers(model, x):
    """``{name: (x_shape, W_shape, stride, padding, first)}`` of every convolution of
    ``model`` larger than 1x1 (the 1x1 ones are a single matrix product in the
    engine), from one evaluation-mode forward pass of ``x``."""
    from nnbook.conv import Conv2D  # noqa: PLC0415
    from nnbook.models import all_layers  # noqa: PLC0415
    seen, saved = {}, []
    convs = [l for l in all_layers(model) if type(l) is Conv2D and l.kernel_size != (1, 1)]
    for k, l in enumerate(convs):
        def fwd(a, l=l, k=k, f=l.forward):
            C, F = l.params["W"].shape[1], l.params["W"].shape[0]
            kh, kw = l.kernel_size
            name = f"{kh}x{kw}/{l.stride[0]} {C}->{F} @{a.shape[2]}x{a.shape[3]}"
            seen.setdefault(name, (tuple(a.shape), tuple(l.params["W"].shape), l.stride,
                                   l.padding, l is model.layers[0]))
            return f(a)
        saved.append(l)
        l.forward = fwd
    was = model.training
    model.eval()
    try:
        model.forward(x)
    finally:
        model.train(was)
        for l in saved:
            del l.forward
    return seen


def main(argv=()):
    args = cpu_bench_args("python -m nnbook bench resnet", __doc__, "--images", 1024,
                          "training images per pass", argv)

    import nnbook as nb  # noqa: PLC0415
    from nnbook.engine import cpu_kernels  # noqa: PLC0415
    from nnbook.models import ResNet15  # noqa: PLC0415
    torch = import_torch(args.threads)
    if torch is None:
        return 2
    nb.use("numpy")
    X, y = mnist_digits(args.images)
    n, bs, lr = len(X), 128, 0.05

    nb.seed(0)
    model = ResNet15(input_size=28, dtype="float32")
    tm = torch_resnet(model)
    out_err, grad_err = max_difference(model, tm, X[:bs], y[:bs], torch)
    print(f"same model: logits differ by {out_err:.1e}, gradients by {grad_err:.1e} "
          f"(relative, float32)")
    if not (out_err < 1e-4 and grad_err < 1e-3):
        print("error: the PyTorch twin does not compute the same function; nothing timed")
        return 1
    loss = nb.SoftmaxCrossEntropy()
    opt = nb.SGD(model.parameters(), lr=lr)
    topt = torch.optim.SGD(tm.parameters(), lr=lr)
    tloss = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def run_nnbook():
        nb.fit(model, loss, opt, X, y, epochs=1, batch_size=bs, progress=False)

    def run_torch():
        tm.train()
        torch_sgd_epoch(tm, topt, tloss, Xt, yt, bs)

    layers = {name: conv_times(*geom) for name, geom in conv_layers(model, X[:bs]).items()}
    load_before = os.getloadavg()[0]
    times, rel = paired_rounds({"nnbook": run_nnbook, "pytorch": run_torch}, args.rounds,
                               peer="pytorch")
    load_after = os.getloadavg()[0]
    t_nb, t_pt, ratios = times["nnbook"], times["pytorch"], rel["nnbook"]
    res = {"benchmark": "resnet15_pass",
           "model": "ResNet-15 (thesis Table 3, bottleneck blocks), 28x28 input, SGD lr 0.05",
           "parameters": model.num_parameters(), "input": [1, 28, 28],
           "batch_size": bs, "images": n, "threads": args.threads, "dtype": "float32",
           "twin_logits_rel_error": out_err, "twin_grads_rel_error": grad_err,
           "nnbook_s": t_nb, "pytorch_s": t_pt, "ratios": ratios,
           "median_nnbook_s": median(t_nb), "median_pytorch_s": median(t_pt),
           "median_ratio": median(ratios), "load_average_1min": [load_before, load_after],
           "layers": layers, "compiled_kernels": cpu_kernels.available(),
           "torch": torch.__version__, **machine(), **stamp()}
    print(f"machine: {res['cpu']} ({res['cpu_count']} CPUs), numpy {res['numpy']}, "
          f"torch {res['torch']}, {args.threads} threads")
    print(f"load average (1 min) {load_before:.2f} before, {load_after:.2f} after")
    print(f"median: nnbook {res['median_nnbook_s']:.3f} s, PyTorch "
          f"{res['median_pytorch_s']:.3f} s, median paired ratio {res['median_ratio']:.3f} "
          f"(goal <= 1.5)")
    print("convolutions larger than 1x1, per batch of 128, forward + backward (fastest "
          "of 15): compiled kernel vs BLAS, and what the engine runs")
    for name, e in layers.items():
        print(f"  {name:22s} " + ", ".join(
            f"{k} {1e3 * e[k]['forward_s']:.2f} + {1e3 * e[k]['backward_s']:.2f} ms"
            for k in ("kernel", "numpy") if k in e) + f"  -> {e['engine']}")
    if args.out:
        write_json(args.out, res)
    return 0
