"""A picture of an :mod:`nnbook.autodiff` computation graph (matplotlib, no graphviz)."""
from __future__ import annotations

import numpy as np

from ..autodiff import PRIMITIVES, adjoints, graph

__all__ = ["draw_graph"]


def draw_graph(out, ax=None, show_values=True, show_grads=False, hide_constants=False,
               figsize=(7, 3.5)):
    """Draw the DAG of ``out`` with matplotlib (no graphviz needed).

    Nodes sit in columns by depth (longest path from an input); inputs on the
    left, the output on the right.  ``show_values``: print the value of
    one-element nodes; ``show_grads``: run a reverse sweep (:func:`nnbook.autodiff.adjoints`)
    and print each one-element node's adjoint ∂o/∂node; ``hide_constants``:
    leave out unnamed constant leaves.  Colours: inputs blue, constants grey,
    operations orange.  Returns the axes.
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415
    nodes = graph(out)
    adj = adjoints(out) if show_grads else {}
    if hide_constants:
        keep = [n for n in nodes if not (n["leaf"] and not n["requires_grad"]
                                         and n["tensor"].name is None)]
    else:
        keep = nodes
    kept = {n["id"] for n in keep}
    depth = {}
    for n in nodes:
        ps = [p for p in n["parents"] if p in kept]
        depth[n["id"]] = 0 if not ps else 1 + max(depth[p] for p in ps)
    cols = {}
    for n in keep:
        cols.setdefault(depth[n["id"]], []).append(n["id"])
    label = {n["id"]: n["label"] for n in nodes}
    parents = {n["id"]: [p for p in n["parents"] if p in kept] for n in nodes}
    pos = {}
    for d in sorted(cols):
        ids = cols[d]
        if d == 0:          # inputs in the order of their labels, first on top
            ids = sorted(ids, key=lambda i: label[i])
        else:               # others near the mean height of their parents
            ids = sorted(ids, key=lambda i: -np.mean([pos[p][1] for p in parents[i]]))
        # a zig-zag for lone nodes keeps long edges from running through boxes
        shift = 0.0 if len(ids) > 1 else (0.45 if d % 2 else -0.45)
        for k, i in enumerate(ids):
            pos[i] = (1.6 * d, (len(ids) - 1) / 2 - k + shift)
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    boxes = {}
    for n in keep:
        x, y = pos[n["id"]]
        t = n["tensor"]
        text = n["label"]
        if t.name and t.op:
            text += f"\n{PRIMITIVES[t.op].symbol}"
        if show_values and n["value"] is not None and not (n["leaf"] and not t.name):
            text += f"\n= {n['value']:.4g}"
        if show_grads and id(t) in adj and adj[id(t)].size == 1:
            text += f"\n∂o = {float(adj[id(t)].item()):.4g}"
        color = "#cfe3f7" if n["leaf"] and n["requires_grad"] else (
            "#eeeeee" if n["leaf"] else "#fde2c4")
        boxes[n["id"]] = ax.text(x, y, text, ha="center", va="center", fontsize=8, zorder=3,
                                 bbox=dict(boxstyle="round,pad=0.4", fc=color, ec="0.4"))
    for n in keep:
        for p in parents[n["id"]]:
            (x0, y0), (x1, y1) = pos[p], pos[n["id"]]
            rad = 0.0 if x1 - x0 <= 1.6 else 0.2
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                        arrowprops=dict(arrowstyle="-|>", color="0.45", lw=1,
                                        shrinkA=1, shrinkB=1,
                                        patchA=boxes[p].get_bbox_patch(),
                                        patchB=boxes[n["id"]].get_bbox_patch(),
                                        connectionstyle=f"arc3,rad={rad}"))
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
    ax.set_ylim(min(ys) - 1.0, max(ys) + 1.0)
    ax.axis("off")
    return ax
