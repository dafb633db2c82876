"""The datasets of the source thesis's experiment, prepared as it does (§6.2)."""
from __future__ import annotations

import numpy as np

from .._checks import check_choice, check_int


def _split(n, rng, fractions=(0.7, 0.1, 0.2)):
    idx = rng.permutation(n)
    a = int(round(fractions[0] * n))
    b = a + int(round(fractions[1] * n))
    return idx[:a], idx[a:b], idx[b:]


def load_dataset(name, seed=42, corr_min=None, corr_max=0.9, z_max=3.0, mnist_train=10000,
                 mnist_test=5000, images=False):
    """A dataset prepared as in the thesis (§6.2), as a dict of float32 arrays.

    ``"breast_cancer"`` (classification, scikit-learn's copy of the Wisconsin
    set) and ``"diabetes"`` (regression, scikit-learn's, standing in for Boston
    housing, which scikit-learn no longer ships): split 70/10/20 with ``seed``;
    on the training part, drop features with ``|corr(feature, target)|`` <
    ``corr_min`` (0.1 for breast cancer, 0.05 for diabetes), drop the second of
    every pair with ``|corr|`` > ``corr_max``, drop training rows with a ``|z-score|``
    above ``z_max``, and standardise with the training mean and deviation
    (the regression target too).  ``"mnist"``: ``mnist_train`` training images
    from MNIST's training set, ``mnist_test`` from its test set split 50/50
    into validation and test; pixels scaled to [0, 1] and flattened, or kept
    as (N, 1, 28, 28) images with ``images=True`` (for LeNet-5; the same
    examples for a given seed).
    Keys: X_train, y_train, X_val, y_val, X_test, y_test, task ("classification"
    or "regression"), n_out, features (the kept column indices).
    """
    check_choice("name", name, ("breast_cancer", "diabetes", "mnist"))
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    if name == "mnist":
        from .. import data  # noqa: PLC0415
        (Xtr, ytr), (Xte, yte) = data.load_mnist()
        i = rng.choice(len(Xtr), size=mnist_train, replace=False)
        j = rng.choice(len(Xte), size=mnist_test, replace=False)
        half = mnist_test // 2
        if images:
            f = lambda X: data.scale(X).astype(np.float32)[:, None]  # noqa: E731
        else:
            f = lambda X: data.scale(data.flatten(X)).astype(np.float32)  # noqa: E731
        return {"X_train": f(Xtr[i]), "y_train": ytr[i].astype(np.int64),
                "X_val": f(Xte[j[:half]]), "y_val": yte[j[:half]].astype(np.int64),
                "X_test": f(Xte[j[half:]]), "y_test": yte[j[half:]].astype(np.int64),
                "task": "classification", "n_out": 10, "features": None}
    from sklearn import datasets  # noqa: PLC0415
    if name == "breast_cancer":
        X, y = datasets.load_breast_cancer(return_X_y=True)
        task, thr = "classification", 0.1 if corr_min is None else corr_min
    else:
        X, y = datasets.load_diabetes(return_X_y=True, scaled=False)
        task, thr = "regression", 0.05 if corr_min is None else corr_min
    tr, va, te = _split(len(X), rng)
    Xtr, ytr = X[tr], y[tr].astype(np.float64)
    c = np.array([abs(np.corrcoef(Xtr[:, k], ytr)[0, 1]) for k in range(X.shape[1])])
    keep = [k for k in range(X.shape[1]) if c[k] >= thr]
    C = np.abs(np.corrcoef(Xtr[:, keep], rowvar=False))
    kept = []
    for a, k in enumerate(keep):
        if all(C[a, keep.index(q)] <= corr_max for q in kept):
            kept.append(k)
    Xtr = Xtr[:, kept]
    mu, sd = Xtr.mean(0), Xtr.std(0)
    inlier = (np.abs((Xtr - mu) / sd) <= z_max).all(axis=1)
    Xtr, ytr = Xtr[inlier], ytr[inlier]
    mu, sd = Xtr.mean(0), Xtr.std(0)
    out = {"task": task, "features": kept}
    std = lambda A: ((A[:, kept] - mu) / sd).astype(np.float32)  # noqa: E731
    out["X_train"] = ((Xtr - mu) / sd).astype(np.float32)
    out["X_val"], out["X_test"] = std(X[va]), std(X[te])
    if task == "classification":
        out["y_train"] = ytr.astype(np.int64)
        out["y_val"], out["y_test"] = y[va].astype(np.int64), y[te].astype(np.int64)
        out["n_out"] = 2
    else:
        ym, ys = ytr.mean(), ytr.std()
        out["y_train"] = ((ytr - ym) / ys).astype(np.float32)[:, None]
        out["y_val"] = ((y[va] - ym) / ys).astype(np.float32)[:, None]
        out["y_test"] = ((y[te] - ym) / ys).astype(np.float32)[:, None]
        out["n_out"] = 1
    return out
