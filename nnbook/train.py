"""Training loop: :func:`fit` and :func:`evaluate`."""
from __future__ import annotations

import numpy as np

from ._checks import all_finite, check_array, check_int, describe
from .backend import asarray, get_rng, get_xp
from .layers import Dense
from .losses import Loss
from .optim import SGD

__all__ = ["fit", "evaluate", "History", "accuracy", "iterate_minibatches"]


class History(dict):
    """Per-epoch metrics: ``hist["loss"]``, ``hist["acc"]``, ``hist["val_loss"]``,
    ``hist["val_acc"]`` (lists, one entry per epoch; accuracy is None for losses
    that are not classification losses)."""

    def __getattr__(self, k):
        try:
            return self[k]
        except KeyError as e:
            raise AttributeError(k) from e

    def __repr__(self):
        last = {k: (round(v[-1], 4) if isinstance(v[-1], float) else v[-1])
                for k, v in self.items() if v}
        return f"History(epochs={len(self.get('loss', []))}, last={last})"


def accuracy(pred_labels, y):
    """Fraction of predictions equal to y (labels (N,) or one-hot rows (N, K))."""
    if y.ndim == 2 and pred_labels.ndim == 1:
        y = y.argmax(axis=1)
    return float((pred_labels == y).mean())


def iterate_minibatches(n, batch_size, shuffle=True, rng=None, drop_last=False):
    """Yield index arrays covering range(n) in batches (the last may be smaller,
    or is left out with ``drop_last=True`` when ``n`` is not a multiple)."""
    idx = (rng or get_rng()).permutation(n) if shuffle else np.arange(n)
    for i in range(0, _n_used(n, batch_size, drop_last), batch_size):
        yield idx[i:i + batch_size]


def _n_used(n, batch_size, drop_last):
    """How many of n samples an epoch visits (all but a smaller final batch with
    ``drop_last``; all of them when there is not even one full batch)."""
    return n - n % batch_size if drop_last and n >= batch_size else n


def _prepare(model, X, y, name):
    X = asarray(X)
    y = asarray(y)
    check_array(name[0], X, floating=False, finite=False)
    if X.dtype.kind not in "fiub":
        raise TypeError(f"{name[0]}: expected numeric data, got dtype {X.dtype}")
    dtype = getattr(model, "dtype", None) or X.dtype
    if X.dtype != dtype:
        X = X.astype(dtype)          # a converted copy; the caller's array is untouched
    if X.dtype.kind == "f" and not all_finite(X):
        raise ValueError(f"{name[0]}: expected finite values, got NaN/inf in {describe(X)}")
    check_array(name[1], y)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"{name[1]}: expected {X.shape[0]} targets to match {name[0]} "
                         f"{describe(X)}, got {describe(y)}")
    model._check_input(X[:1])
    return X, y


def _check_targets(loss, model, X, y, name):
    """Run the loss's own checks on the whole target array once, up front."""
    # an eval-mode probe, so BatchNorm statistics are not nudged by the check
    was_training = model.training
    model.eval()
    try:
        out = model._forward(X[:1])
    finally:
        model.train(was_training)
    # a stand-in for the logits of the whole set: a zero-stride view, no memory
    xp = get_xp()
    full = xp.broadcast_to(xp.zeros((), dtype=out.dtype), (y.shape[0],) + tuple(out.shape[1:]))
    try:
        return loss.check(full, y)
    except (TypeError, ValueError) as e:
        raise type(e)(str(e).replace("y:", f"{name}:", 1)) from None


def _n_correct(loss, out, y):
    pred = loss.predict(out)
    if pred.ndim == 1 and y.ndim == 2:
        y = y.argmax(axis=1)
    return int(get_xp().count_nonzero(pred == y))


def evaluate(model, loss, X, y, batch_size=1024):
    """Mean loss and accuracy (None if the loss has no ``predict``) of ``model`` on (X, y)."""
    if not isinstance(loss, Loss):
        raise TypeError(f"loss: expected an nnbook loss, got {type(loss).__name__}")
    X, y = _prepare(model, X, y, ("X", "y"))
    y = _check_targets(loss, model, X, y, "y")
    return _evaluate(model, loss, X, y, batch_size)


def _evaluate(model, loss, X, y, batch_size):
    n = X.shape[0]
    tot, correct = 0.0, 0.0
    was_training = model.training
    model.eval()
    for i in range(0, n, batch_size):
        xb, yb = X[i:i + batch_size], y[i:i + batch_size]
        out = model._forward(xb)
        tot += loss._forward(out, yb) * xb.shape[0]
        if loss.predict is not None:
            correct += _n_correct(loss, out, yb)
    model.train(was_training)
    return tot / n, (correct / n if loss.predict is not None else None)


def fit(model, loss, opt, X, y, epochs=5, batch_size=128, val=None, shuffle=True,
        progress=True, callbacks=(), drop_last=False):
    """Train ``model`` with mini-batches and return a :class:`History`.

    Data are moved to the active backend once and cast to the model's dtype
    (copies; your arrays are never modified).  Batches are drawn in an order
    shuffled by nnbook's seeded generator, so the same seed gives the same
    history bit for bit.  ``progress``: a tqdm bar (a widget in notebooks,
    text in terminals); ``False`` for silence.  ``callbacks``: functions
    ``cb(epoch, history)`` called after each epoch (return True to stop).
    ``drop_last``: leave out the final, smaller batch of each epoch (a batch of a
    few samples has a noisy gradient; at a large learning rate one such step can
    undo an epoch's progress).  Training metrics are averages over the samples
    the epoch used.
    """
    if not isinstance(drop_last, bool):
        raise TypeError(f"drop_last: expected True or False, got {drop_last!r}")
    if not isinstance(loss, Loss):
        raise TypeError(f"loss: expected an nnbook loss (e.g. nb.SoftmaxCrossEntropy()), "
                        f"got {type(loss).__name__}")
    epochs = check_int("epochs", epochs, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    X, y = _prepare(model, X, y, ("X", "y"))
    y = _check_targets(loss, model, X, y, "y")
    if val is not None:
        if not (isinstance(val, (tuple, list)) and len(val) == 2):
            raise TypeError(f"val: expected a tuple (X_val, y_val), got {type(val).__name__}")
        Xv, yv = _prepare(model, val[0], val[1], ("val[0]", "val[1]"))
        yv = _check_targets(loss, model, Xv, yv, "val[1]")
    hist = History(loss=[], acc=[], val_loss=[], val_acc=[])
    n = X.shape[0]
    used = _n_used(n, batch_size, drop_last)
    nb = -(-used // batch_size)
    bar = None
    if progress:
        from tqdm.auto import tqdm  # noqa: PLC0415
        bar = tqdm(total=epochs * nb, unit="batch", desc="fit", leave=True)
    has_acc = loss.predict is not None
    model.train()
    reuse = hasattr(model, "_set_reuse")
    if reuse:
        model._set_reuse(True)
    xp = get_xp()
    xbuf = None
    prescale = isinstance(opt, SGD) and opt._plain and type(opt)._update is SGD._update
    # plain SGD: Dense layers (used once, both parameters optimized) take the step
    # inside their backward pass, fused into the weight-gradient GEMM
    fused = []
    if prescale and hasattr(model, "layers"):
        owned = {(id(p.layer), p.name) for p in opt.params}
        ids = [id(l) for l in model.layers]
        fused = [l for l in model.layers if type(l) is Dense and ids.count(id(l)) == 1
                 and all((id(l), k) in owned for k in l.params)]
    fused_ids = {id(l) for l in fused}
    rest = [p for p in opt.params if id(p.layer) not in fused_ids]
    need_zero = not fused or bool(rest)   # fused layers never write their gradients
    # gradients left over from a manual backward would otherwise be added to the first step
    if hasattr(model, "zero_grad"):
        model.zero_grad()
    opt.zero_grad()
    try:
        for l in fused:
            l._sgd_step = True
        for epoch in range(epochs):
            tot, correct = 0.0, 0.0
            for idx in iterate_minibatches(n, batch_size, shuffle, drop_last=drop_last):
                if xp is not np:
                    idx = asarray(idx)
                if reuse and len(idx) == batch_size:
                    if xbuf is None:
                        xbuf = xp.empty((batch_size,) + X.shape[1:], dtype=X.dtype)
                    if xp is np:
                        # mode="clip" (the indices are a permutation, never out of range):
                        # with the default "raise", NumPy gathers into a temporary and copies
                        xb = np.take(X, idx, axis=0, out=xbuf, mode="clip")
                    else:
                        xb = xp.take(X, idx, axis=0, out=xbuf)
                else:
                    xb = X[idx]
                yb = y[idx]
                out = model._forward(xb)
                tot += loss._forward(out, yb) * len(idx)
                if has_acc:
                    correct += _n_correct(loss, out, yb)
                if prescale:
                    # plain SGD: scale the loss gradient by lr once, so every
                    # gradient comes out pre-multiplied and the step is p -= g
                    model._backward(loss._backward(opt.lr), need_dx=False)
                    opt._step_prescaled(rest)
                else:
                    model._backward(loss._backward(), need_dx=False)
                    opt.step()
                if need_zero:
                    opt.zero_grad()
                if bar is not None:
                    bar.update(1)
            hist["loss"].append(tot / used)
            hist["acc"].append(correct / used if has_acc else None)
            if val is not None:
                vl, va = _evaluate(model, loss, Xv, yv, 1024)
                hist["val_loss"].append(vl)
                hist["val_acc"].append(va)
            if bar is not None:
                post = {"loss": f"{hist['loss'][-1]:.4f}"}
                if has_acc:
                    post["acc"] = f"{hist['acc'][-1]:.4f}"
                if val is not None and has_acc:
                    post["val_acc"] = f"{hist['val_acc'][-1]:.4f}"
                bar.set_postfix(post)
            if any(cb(epoch, hist) for cb in callbacks):
                break
    finally:
        for l in fused:
            l._sgd_step = False
        if reuse:
            model._set_reuse(False)
        if bar is not None:
            bar.close()
    if val is None:
        del hist["val_loss"], hist["val_acc"]
    return hist
