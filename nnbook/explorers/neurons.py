"""A picture of a fully connected network with the labels of :mod:`nnbook.neurons`."""
from __future__ import annotations

import numpy as np

__all__ = ["draw_network"]


def draw_network(sizes, ax=None, layer_names=None, highlight=None):
    """Draw a fully connected network with the thesis's labels n^l_j.

    ``sizes``: neurons per layer, e.g. ``[2, 3, 3]`` for §3.1.2's network.
    ``layer_names``: captions under each layer (default input, h1, ..., softmax).
    ``highlight``: optional ``(layer, j)``: the weights leaving neuron j of that layer
    towards the next layer and the weights entering it are drawn in colour (the
    'paths' of thesis Figs. 3.5, 3.8).  Returns the matplotlib Axes.
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415

    if (not isinstance(sizes, (list, tuple)) or len(sizes) < 2
            or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1
                   for s in sizes)):
        raise ValueError(f"sizes: expected a list of at least 2 positive ints, got {sizes!r}")
    L = len(sizes)
    if layer_names is None:
        layer_names = ["input"] + [f"h{i}" for i in range(1, L - 1)] + ["softmax"]
    if len(layer_names) != L:
        raise ValueError(f"layer_names: expected {L} names, got {len(layer_names)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(1.8 * L + 1, 0.9 * max(sizes) + 1.2))
    top = max(sizes)
    pos = [[(l, (sizes[l] - 1) / 2 - j) for j in range(sizes[l])] for l in range(L)]
    for l in range(L - 1):
        for j, (x0, y0) in enumerate(pos[l]):
            for k, (x1, y1) in enumerate(pos[l + 1]):
                hot = highlight is not None and (
                    (highlight[0] == l and highlight[1] == j)
                    or (highlight[0] == l + 1 and highlight[1] == k))
                ax.plot([x0, x1], [y0, y1], color="C3" if hot else "0.7",
                        lw=2 if hot else 0.8, zorder=1)
    for l in range(L):
        for j, (x, y) in enumerate(pos[l]):
            ax.add_patch(plt.Circle((x, y), 0.22, facecolor="white", edgecolor="C0", lw=1.5,
                                    zorder=2))
            label = f"$n^{{{l}}}_{{{j}}}$" if l < L - 1 else f"$O_{{{j}}}$"
            ax.text(x, y, label, ha="center", va="center", fontsize=9, zorder=3)
        ax.text(l, -(top - 1) / 2 - 0.75, layer_names[l], ha="center", va="top", fontsize=10)
    ax.set_xlim(-0.5, L - 0.5)
    ax.set_ylim(-(top - 1) / 2 - 1.1, (top - 1) / 2 + 0.5)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax
