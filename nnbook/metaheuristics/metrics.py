"""Test metrics of the experiment (NumPy, on the host)."""
from __future__ import annotations

import numpy as np

from ..backend import to_numpy


# ---------------------------------------------------------------------------------------
# metrics (NumPy, host)
# ---------------------------------------------------------------------------------------
def accuracy(y_true, y_pred):
    y_true, y_pred = np.asarray(to_numpy(y_true)), np.asarray(to_numpy(y_pred))
    return float((y_true == y_pred).mean())


def balanced_accuracy(y_true, y_pred):
    """Mean over the classes present in y_true of the recall of each class."""
    y_true, y_pred = np.asarray(to_numpy(y_true)), np.asarray(to_numpy(y_pred))
    return float(np.mean([(y_pred[y_true == c] == c).mean() for c in np.unique(y_true)]))


def mse(y_true, y_pred):
    d = np.asarray(to_numpy(y_pred), dtype=np.float64) - np.asarray(to_numpy(y_true), np.float64)
    return float((d * d).mean())


def r2_score(y_true, y_pred):
    """1 - SS_res / SS_tot: the fraction of the target's variance explained."""
    yt = np.asarray(to_numpy(y_true), dtype=np.float64).ravel()
    yp = np.asarray(to_numpy(y_pred), dtype=np.float64).ravel()
    return float(1 - ((yt - yp) ** 2).sum() / ((yt - yt.mean()) ** 2).sum())
