"""The experiment of the source thesis (§6): its networks (:func:`build_mlp`,
:func:`build_lenet5`), gradient training (:func:`run_gradient`) and
metaheuristic training (:func:`run_metaheuristic`) with the same protocol,
and the test metrics of a trained network (:func:`task_metrics`)."""
from __future__ import annotations

import math
import time

import numpy as np

from .. import init as _init
from .._checks import check_choice
from ..backend import asarray, get_xp, to_numpy
from ..conv import Conv2D
from ..layers import Dense
from ..losses import MSE, SoftmaxCrossEntropy
from ..models import Sequential, all_layers
from .evolution import shade
from .memetic import shade_gd, shade_ils, shade_ils_gd
from .metrics import accuracy, balanced_accuracy, mse, r2_score
from .population import _BN, calibrate_batchnorm, get_flat, param_count, set_flat
from .problems import NetProblem, make_optimizer


# ---------------------------------------------------------------------------------------
# the experiment of the source thesis (§6), at a scale that runs on a laptop
# ---------------------------------------------------------------------------------------
MLP_HIDDEN = {1: [64], 2: [64, 64], 5: [64, 128, 256, 128, 64],
              11: [32, 64, 128, 256, 512, 1024, 512, 256, 128, 64, 32]}
"""Hidden-layer widths of the thesis's MLPs (§6.1), by number of hidden layers."""

THESIS_PARAM_COUNTS = {1: 2238, 2: 6462, 5: 85310, 11: 1403838}
"""Parameter counts the thesis reports (FastAI tabular models on the 30 breast-cancer
features: BatchNorm on the inputs and after every bias-free hidden Linear, 2 outputs)."""


def fastai_tabular_param_count(n_in, hidden, n_out):
    """Parameters of a FastAI tabular MLP: BatchNorm1d(n_in), then per hidden
    width h a bias-free Linear and BatchNorm1d(h), then Linear(h_last, n_out)."""
    total, prev = 2 * n_in, n_in
    for h in hidden:
        total += prev * h + 2 * h
        prev = h
    return total + prev * n_out + n_out


def build_mlp(n_in, hidden, n_out, seed):
    """A ReLU MLP with Glorot-uniform weights and zero biases (as the thesis, §6.3)."""
    from ..backend import seed as _seed  # noqa: PLC0415
    from ..models import mlp  # noqa: PLC0415
    _seed(seed)
    return mlp([n_in] + list(hidden) + [n_out], activation="relu", init="glorot")


LENET5 = "lenet5"
"""Pass as ``hidden`` to :func:`run_gradient` / :func:`run_metaheuristic` for LeNet-5."""


def build_lenet5(seed, batch_norm=True, num_classes=10):
    """LeNet-5 as in the thesis's Table 2 (ReLU, max-pooling, BatchNorm after every
    convolution and hidden dense layer; :func:`nnbook.LeNet5`) for 28x28
    inputs padded to 32x32 by the first convolution, with Glorot-uniform weights
    (fan_in = in_channels*kh*kw, fan_out = out_channels*kh*kw for a convolution)
    and zero biases, as the thesis initialises its models (§6.3)."""
    from ..backend import get_rng  # noqa: PLC0415
    from ..backend import seed as _seed  # noqa: PLC0415
    from ..lenet import LeNet5  # noqa: PLC0415
    _seed(seed)
    model = LeNet5(batch_norm=batch_norm, num_classes=num_classes)
    glorot_weights(model.layers, get_rng())
    return model


def glorot_weights(layers, rng):
    """Give every Conv2D and Dense among ``layers`` Glorot-uniform weights, in place
    (fan_in = in_channels*kh*kw, fan_out = out_channels*kh*kw for a convolution),
    drawn from ``rng`` in the order of ``layers``."""
    for l in layers:
        if isinstance(l, Conv2D):
            k = int(np.prod(l.kernel_size))
            fans = (l.in_channels * k, l.out_channels * k)
        elif isinstance(l, Dense):
            fans = (l.in_features, l.out_features)
        else:
            continue
        W = l.params["W"]
        l.params["W"] = asarray(np.asarray(_init.glorot(W.shape, *fans, rng), dtype=W.dtype))
        l.init = "glorot"


def build_net(data, hidden, seed):
    """The network for ``data``: LeNet-5 when ``hidden == LENET5`` (image data),
    else a ReLU MLP with the hidden widths ``hidden`` (:func:`build_mlp`)."""
    if isinstance(hidden, str):
        check_choice("hidden", hidden, (LENET5,))
        if data["X_train"].ndim != 4:
            raise ValueError("data: LeNet-5 needs images (N, 1, 28, 28); load them with "
                             "load_dataset('mnist', images=True)")
        return build_lenet5(seed, num_classes=data["n_out"])
    return build_mlp(data["X_train"].shape[1], hidden, data["n_out"], seed)


def _has_batchnorm(model):
    return isinstance(model, Sequential) and any(type(l) in _BN for l in model.layers)


def _predict(model, X):
    """Outputs in evaluation mode (BatchNorm with its running statistics); the
    model's mode is restored afterwards."""
    was = model.training
    model.eval()
    try:
        return model.predict(X)
    finally:
        model.train(was)


def _task_loss(task):
    return SoftmaxCrossEntropy() if task == "classification" else MSE()


def task_metrics(model, data, split="test"):
    """Accuracy and balanced accuracy (classification) or MSE and R² (regression)."""
    X, y = asarray(data[f"X_{split}"]), data[f"y_{split}"]
    out = to_numpy(_predict(model, X))
    if data["task"] == "classification":
        pred = out.argmax(axis=1)
        return {"accuracy": accuracy(y, pred), "balanced_accuracy": balanced_accuracy(y, pred)}
    return {"mse": mse(y, out), "r2": r2_score(y, out)}


def _val_loss(model, loss, data):
    X, y = asarray(data["X_val"]), asarray(data["y_val"])
    return float(loss.forward(_predict(model, X), y))


def run_gradient(data, hidden, optimizer, seed=42, epochs=20, batch_size=32, lr=None,
                 one_cycle=True):
    """Train an MLP (``hidden``: its hidden widths) or LeNet-5 (``hidden=LENET5``)
    with an nnbook optimizer as the thesis does (§6.4): the
    maximum rate from the learning-rate range test (fastai's "valley" point)
    unless ``lr`` is given, the one-cycle policy, ``epochs`` epochs, and the
    weights of the epoch with the lowest validation loss kept (BatchNorm
    layers validate and test with their running statistics).  Returns a dict
    with the per-epoch curves, the test metrics and the time."""
    from ..schedules import OneCycleLR, lr_finder  # noqa: PLC0415
    from ..backend import seed as _seed  # noqa: PLC0415
    loss = _task_loss(data["task"])
    t0 = time.perf_counter()
    if lr is None:
        _seed(seed + 1)
        res = lr_finder(lambda: build_net(data, hidden, seed), loss,
                        data["X_train"], data["y_train"],
                        optimizer=lambda p, lr: make_optimizer(optimizer, p, lr),
                        start_lr=1e-6, end_lr=10.0, num_iter=100, batch_size=batch_size)
        lr = float(res.valley_lr)
    model = build_net(data, hidden, seed)
    model.train()
    _seed(seed)
    X, y = asarray(data["X_train"]), asarray(data["y_train"])
    opt = make_optimizer(optimizer, model.parameters(), lr)
    opt.zero_grad()                        # backward adds: start from zero gradients
    n = X.shape[0]
    steps = -(-n // batch_size)
    sched = OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps) if one_cycle else None
    rng = np.random.default_rng(seed)
    xp = get_xp()
    curve_train, curve_val = [], []
    best = (math.inf, None)
    for _ in range(epochs):
        order = rng.permutation(n)
        tot = 0.0
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            if xp is not np:
                idx = xp.asarray(idx)
            tot += loss._forward(model.forward(X[idx]), y[idx]) * len(idx)
            model.backward(loss._backward())
            opt.step()
            opt.zero_grad()
            if sched is not None:
                sched.step()
        curve_train.append(tot / n)
        vl = _val_loss(model, loss, data)
        curve_val.append(vl)
        if vl < best[0]:
            best = (vl, get_flat(model), _buffers(model))
    if best[1] is not None:
        set_flat(model, best[1])
        _set_buffers(model, best[2])
    return {"method": {"nag": "NAG", "rmsprop": "RMSProp", "adam": "Adam", "sgd": "SGD"}[optimizer],
            "train_loss": curve_train, "val_loss": curve_val, "lr": lr,
            "best_val_loss": best[0], "test": task_metrics(model, data),
            "seconds": time.perf_counter() - t0, "evals": epochs, "params": param_count(model)}


def _batchnorms(model):
    """Every BatchNorm layer of ``model``, inside residual blocks and nested
    Sequentials too, in a fixed order."""
    return [l for l in all_layers(model) if type(l) in _BN]


def _buffers(model):
    """Copies of the BatchNorm running statistics (an empty list without BatchNorm)."""
    return [{k: v.copy() for k, v in l.buffers.items()} for l in _batchnorms(model)]


def _set_buffers(model, saved):
    for l, b in zip(_batchnorms(model), saved):
        l.buffers.update(b)


MH_METHODS = ("SHADE", "SHADE-ILS", "SHADE+GD", "SHADE-ILS+GD")


def run_metaheuristic(data, hidden, method, max_evals, seed=42, popsize=20, checkpoints=20,
                      evals_ls=100, gd_optimizer="adam", gd_batch_size=32, progress=False):
    """Train an MLP (``hidden``: its hidden widths) or LeNet-5 (``hidden=LENET5``)
    with SHADE, SHADE-ILS or a hybrid on the full training loss.

    All methods start from the same population for a given seed (row 0: the
    weights gradient descent starts from; rows 1.. drawn with the layers'
    initialisers from ``np.random.default_rng([seed, 1])``, a stream
    independent of the one that built row 0, so all rows are distinct).
    With BatchNorm, the training loss normalises with the statistics of the
    whole training set (:class:`~nnbook.metaheuristics.NetProblem`), and a point is validated and tested after
    :func:`~nnbook.metaheuristics.calibrate_batchnorm` on the training set, so that evaluation mode
    computes the same function (one extra pass, not counted as an FE).

    As in the thesis (§6.5), the best individual is checked on the validation
    set at ``checkpoints`` evenly spaced moments (the "epochs" of a
    metaheuristic) and the one with the lowest validation loss is tested.
    SHADE-ILS variants alternate SHADE phases and local searches so that the
    hybrids run about ``checkpoints`` gradient epochs in all; L-BFGS-B gets
    ``evals_ls`` FEs per application.
    """
    check_choice("method", method, MH_METHODS)
    loss = _task_loss(data["task"])
    model = build_net(data, hidden, seed)
    prob = NetProblem(model, loss, data["X_train"], data["y_train"])
    # Rows 1.. come from their own stream: build_net seeded nnbook's generator
    # with ``seed`` itself, so default_rng(seed) would redraw row 0's weights
    # (row 1 = row 0 for an MLP).  default_rng([seed, 1]) is independent of it.
    init_pop = prob.init_population(popsize, np.random.default_rng([seed, 1]))
    scratch = build_net(data, hidden, seed)
    bn = _has_batchnorm(scratch)

    def load(x):
        set_flat(scratch, x)
        if bn:
            calibrate_batchnorm(scratch, prob.X)
    marks = list(np.linspace(max_evals / checkpoints, max_evals, checkpoints))
    state = {"best": (math.inf, None), "curve": [], "curve_nfev": []}

    def cb(nfev, x, fx):
        vl = None
        while marks and nfev >= marks[0] - 1e-9:
            marks.pop(0)
            if vl is None:                 # several marks passed at once: one check
                load(x)
                vl = _val_loss(scratch, loss, data)
            state["curve"].append(fx)
            state["curve_nfev"].append(nfev)
            state.setdefault("val_curve", []).append(vl)
            if vl < state["best"][0]:
                state["best"] = (vl, np.array(x))
        return False

    t0 = time.perf_counter()
    evals_de = max(popsize, (max_evals - popsize) // checkpoints - 2)
    kw = dict(max_evals=max_evals, init_pop=init_pop, seed=seed, callback=cb, progress=progress)
    if method == "SHADE":
        res = shade(prob, popsize=popsize, **kw)
    elif method == "SHADE-ILS":
        res = shade_ils(prob, popsize=popsize, evals_de=evals_de, evals_ls=evals_ls, **kw)
    elif method == "SHADE+GD":
        res = shade_gd(prob, popsize=popsize, evals_de=evals_de, optimizer=gd_optimizer,
                       batch_size=gd_batch_size, **kw)
    else:
        res = shade_ils_gd(prob, popsize=popsize, evals_de=evals_de, evals_ls=evals_ls,
                           optimizer=gd_optimizer, batch_size=gd_batch_size, **kw)
    cb(max_evals, res.x, res.fun)
    load(state["best"][1] if state["best"][1] is not None else res.x)
    return {"method": method, "train_loss": state["curve"], "train_nfev": state["curve_nfev"],
            "val_loss": state.get("val_curve", []), "best_val_loss": state["best"][0],
            "final_train_loss": res.fun, "test": task_metrics(scratch, data),
            "seconds": time.perf_counter() - t0, "evals": res.nfev, "params": prob.dim,
            "popsize": popsize, "info": {k: v for k, v in res.info.items()
                                         if k in ("restarts", "ls_usage")}}
