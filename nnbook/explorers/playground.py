"""The network playground: train a small MLP on a 2-D toy set, see its decision boundary.

:func:`playground_figure` is the callback (tests call it once with non-default
values); :func:`network_playground` wires it to widgets.
"""
from __future__ import annotations

import numpy as np

from .. import data as _data
from ..backend import seed as _seed
from ..backend import to_numpy
from ..layers import Dense, ReLU, Sigmoid, Tanh
from ..losses import SoftmaxCrossEntropy
from ..models import Sequential
from ..optim import SGD, Adam
from ..train import fit

__all__ = ["playground_figure", "network_playground", "decision_grid"]

_DATASETS = {"spirals": _data.spirals, "moons": _data.moons, "xor": _data.xor,
             "blobs": _data.blobs, "circles": _data.circles}
_ACTS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}


def decision_grid(model, X, steps=120, pad=0.3):
    """Predicted class on a grid covering X: returns (xx, yy, labels)."""
    X = to_numpy(X)
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], steps), np.linspace(lo[1], hi[1], steps))
    grid = np.c_[xx.ravel(), yy.ravel()].astype(model[0].params["W"].dtype)
    return xx, yy, to_numpy(model.forward(grid).argmax(axis=1)).reshape(xx.shape)


def playground_figure(dataset="spirals", layers=2, width=16, activation="relu", lr=0.1,
                      epochs=60, optimizer="adam", seed=0, n=300, fig=None):
    """Train a small MLP on a 2-D toy set and draw its decision boundary and loss curve.

    Returns ``(fig, history)``.  Raises ValueError for unknown names.
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415
    if dataset not in _DATASETS:
        raise ValueError(f"dataset: expected one of {tuple(_DATASETS)}, got {dataset!r}")
    if activation not in _ACTS:
        raise ValueError(f"activation: expected one of {tuple(_ACTS)}, got {activation!r}")
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer: expected 'sgd' or 'adam', got {optimizer!r}")
    X, y = _DATASETS[dataset](n, seed=seed)
    k = int(y.max()) + 1
    _seed(seed)
    mods, d = [], 2
    for _ in range(int(layers)):
        mods += [Dense(d, int(width)), _ACTS[activation]()]
        d = int(width)
    model = Sequential(*mods, Dense(d, k, init="glorot"))
    opt = (Adam if optimizer == "adam" else SGD)(model.parameters(), lr=lr)
    hist = fit(model, SoftmaxCrossEntropy(), opt, X, y, epochs=int(epochs), batch_size=32,
               progress=False)
    if fig is None:
        fig = plt.figure(figsize=(9, 3.6))
    fig.clf()
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 1]})
    xx, yy, zz = decision_grid(model, X)
    ax1.contourf(xx, yy, zz, levels=np.arange(k + 1) - 0.5, cmap="Pastel1", alpha=0.9)
    ax1.scatter(X[:, 0], X[:, 1], c=y, cmap="Set1", s=10, edgecolors="k", linewidths=0.2)
    ax1.set_title(f"{dataset}: {layers}×{width} {activation}, acc {hist['acc'][-1]:.2f}")
    ax1.set_xticks([])
    ax1.set_yticks([])
    ax2.plot(hist["loss"])
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("training loss")
    ax2.set_yscale("log")
    fig.tight_layout()
    return fig, hist


def network_playground():
    """A widget panel: dataset, depth, width, activation, optimizer, learning rate."""
    import ipywidgets as W  # noqa: PLC0415
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from IPython.display import display  # noqa: PLC0415

    out = W.Output()
    controls = dict(
        dataset=W.Dropdown(options=list(_DATASETS), value="spirals", description="data"),
        layers=W.IntSlider(value=2, min=1, max=4, description="hidden layers"),
        width=W.IntSlider(value=16, min=2, max=64, step=2, description="width"),
        activation=W.Dropdown(options=list(_ACTS), value="relu", description="activation"),
        optimizer=W.Dropdown(options=["adam", "sgd"], value="adam", description="optimizer"),
        lr=W.FloatLogSlider(value=0.05, base=10, min=-3, max=0, description="learning rate"),
        epochs=W.IntSlider(value=60, min=5, max=200, step=5, description="epochs"),
    )
    button = W.Button(description="train", button_style="primary")

    def on_click(_=None):
        with out:
            out.clear_output(wait=True)
            fig, _h = playground_figure(**{k: c.value for k, c in controls.items()})
            plt.show()

    button.on_click(on_click)
    box = W.VBox([W.HBox([W.VBox(list(controls.values())[:4]),
                          W.VBox(list(controls.values())[4:] + [button])]), out])
    display(box)
    on_click()
    return box
