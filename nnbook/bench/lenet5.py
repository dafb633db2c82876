"""LeNet-5 training on MNIST: nnbook (NumPy) against PyTorch CPU in the same command.

``python -m nnbook bench lenet5 [--rounds 5] [--threads 2] [--images 10000] [--out FILE]``

Trains LeNet-5 (:func:`nnbook.LeNet5`: conv 5x5x6 pad 2, ReLU, max-pool 2,
conv 5x5x16, ReLU, max-pool 2, dense 400-120-84-10; plain SGD lr 0.05,
batch 128, float32) for one pass over ``--images`` MNIST training images with
nnbook, and the same model (same initial weights, same batch order, same
thread count) with PyTorch, alternating A B A B with a pause before each
timed call.  Reports each time and the median of the per-round ratios
nnbook / PyTorch (below 1 means nnbook is faster).
"""
from __future__ import annotations

from ._util import (cpu_bench_args, import_torch, machine, median, mnist_digits,
                    paired_rounds, stamp, torch_sgd_epoch, write_json)


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
    args = cpu_bench_args("python -m nnbook bench lenet5", __doc__, "--images", 10000,
                          "training images per pass", argv)

    import nnbook as nb  # noqa: PLC0415
    from nnbook.lenet import LeNet5  # noqa: PLC0415
    torch = import_torch(args.threads)
    if torch is None:
        return 2
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

    times, rel = paired_rounds({"nnbook": run_nnbook, "pytorch": run_torch}, args.rounds,
                               peer="pytorch")
    t_nb, t_pt, ratios = times["nnbook"], times["pytorch"], rel["nnbook"]
    res = {"benchmark": "lenet5_pass", "model": "LeNet-5 (ReLU, max-pool), SGD lr 0.05",
           "batch_size": bs, "images": n, "threads": args.threads, "dtype": "float32",
           "nnbook_s": t_nb, "pytorch_s": t_pt, "ratios": ratios,
           "median_nnbook_s": median(t_nb), "median_pytorch_s": median(t_pt),
           "median_ratio": median(ratios), "torch": torch.__version__, **machine(), **stamp()}
    print(f"machine: {res['cpu']} ({res['cpu_count']} CPUs), numpy {res['numpy']}, "
          f"torch {res['torch']}, {args.threads} threads")
    print(f"median: nnbook {res['median_nnbook_s']:.3f} s, PyTorch {res['median_pytorch_s']:.3f} s, "
          f"median paired ratio {res['median_ratio']:.3f} (target <= 1.0)")
    if args.out:
        write_json(args.out, res)
    return 0
