"""Figures for :mod:`nnbook.schedules`: the learning-rate range test."""
from __future__ import annotations

import numpy as np

from ..schedules import LRFinderResult

__all__ = ["plot_lr_finder"]


def plot_lr_finder(result, ax=None, show_raw=True):
    """Plot an :class:`~nnbook.schedules.LRFinderResult`: loss against lr (log axis), the suggestion marked."""
    import matplotlib.pyplot as plt  # noqa: PLC0415
    if not isinstance(result, LRFinderResult):
        raise TypeError(f"result: expected the LRFinderResult of lr_finder(...), got "
                        f"{type(result).__name__}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    if show_raw:
        ax.plot(result.lrs, result.raw_losses, color="0.75", lw=0.8, label="batch loss")
    ax.plot(result.lrs, result.losses, lw=2, label="smoothed loss")
    ax.axvline(result.min_loss_lr, color="0.4", ls=":", label=f"min loss: {result.min_loss_lr:.2g}")
    ax.axvline(result.suggested_lr, color="C3", ls="--",
               label=f"suggested (min/10): {result.suggested_lr:.2g}")
    ax.axvline(result.steepest_lr, color="C1", ls="-.",
               label=f"steepest descent: {result.steepest_lr:.2g}")
    ax.axvline(result.valley_lr, color="C2", ls=(0, (1, 3)),
               label=f"valley: {result.valley_lr:.2g}")
    ax.set_xscale("log")
    finite = result.losses[np.isfinite(result.losses)]
    if finite.size:
        top = min(float(finite.max()), 2.5 * float(finite[0]))
        ax.set_ylim(0.9 * float(finite.min()), max(top, float(finite.min()) * 1.1))
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    return ax
