"""Training loop: :func:`~nnbook.fit` and :func:`~nnbook.evaluate`.

``fit`` draws shuffled mini-batches and runs one training step per batch —
forward, loss, backward, optimizer update — through :mod:`nnbook.engine`, which
runs the layers it recognises faster and every other layer as written.
``fit(..., engine=False)`` runs the reference layers only (what the engine is
tested against).
"""
from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np

from ._checks import all_finite, check_array, check_choice, check_int, describe
from .backend import asarray, get_rng, get_xp
from .losses import Loss
from .models import Sequential, all_layers
from .norm import _BatchNorm
from .optim import Optimizer

__all__ = ["fit", "evaluate", "History", "accuracy", "iterate_minibatches"]


class History(dict):
    """Per-epoch metrics: ``hist["loss"]``, ``hist["acc"]``, ``hist["val_loss"]``,
    ``hist["val_acc"]`` (lists, one entry per epoch; accuracy is None for losses
    that are not classification losses).  ``loss`` and ``acc`` are averages over
    the batches of the epoch, each measured before that batch's update (the weights
    change during the epoch); ``val_*`` are measured at the end of the epoch."""

    def __getattr__(self, k):
        try:
            return self[k]
        except KeyError as e:
            raise AttributeError(k) from e

    def __repr__(self):
        last = {k: (round(v[-1], 4) if isinstance(v[-1], float) else v[-1])
                for k, v in self.items() if v}
        return f"History(epochs={len(self.get('loss', []))}, last={last})"


def accuracy(y_true, y_pred):
    """Fraction of predicted labels equal to the true ones (scikit-learn's argument
    order).  Either may be labels (N,) or one-hot/score rows (N, K)."""
    if y_true.ndim == 2:
        y_true = y_true.argmax(axis=1)
    if y_pred.ndim == 2:
        y_pred = y_pred.argmax(axis=1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_pred: expected {y_true.shape[0]} labels to match y_true, "
                         f"got {describe(y_pred)}")
    return float((y_pred == y_true).mean())


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


@contextlib.contextmanager
def _modes_kept(model, training):
    """Set ``model`` to training/eval mode for the body, then give every layer back
    the mode it had."""
    layers = all_layers(model)
    modes = [(l, l.training) for l in layers]
    model.train(training)
    try:
        yield
    finally:
        for l, m in modes:
            l.training = m


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
    try:
        model.check_input(X)
    except (TypeError, ValueError) as e:
        raise type(e)(str(e).replace("x:", f"{name[0]}:", 1)) from None
    return X, y


def _check_targets(loss, model, X, y, name):
    """Run the loss's own checks on the whole target array once, up front."""
    # an eval-mode probe, so BatchNorm statistics are not nudged by the check
    with _modes_kept(model, False):
        out = model.forward(X[:1])
    # a stand-in for the outputs of the whole set: a zero-stride view, no memory
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


def evaluate(model, loss, X, y, batch_size=1024, engine=True):
    """Mean loss and accuracy (None if the loss has no ``predict``) of ``model`` on
    (X, y), in evaluation mode; every sample counts once, whatever the batch size.
    A :class:`~nnbook.Sequential` runs through the training engine's forward pass as
    in :meth:`~nnbook.Sequential.predict` (``engine=False``: the layers' own)."""
    if not isinstance(loss, Loss):
        raise TypeError(f"loss: expected an nnbook loss, got {type(loss).__name__}")
    batch_size = check_int("batch_size", batch_size, minimum=1)
    X, y = _prepare(model, X, y, ("X", "y"))
    y = _check_targets(loss, model, X, y, "y")
    return _evaluate(model, loss, X, y, batch_size, engine)


def _evaluate(model, loss, X, y, batch_size, engine=True):
    n = X.shape[0]
    tot, correct = 0.0, 0
    with _modes_kept(model, False):
        run = model.batch_forward(X, engine) if isinstance(model, Sequential) \
            else model.forward
        for i in range(0, n, batch_size):
            xb, yb = X[i:i + batch_size], y[i:i + batch_size]
            out = run(xb)
            tot += loss._forward(out, yb) * xb.shape[0]     # a mean over this batch
            if loss.predict is not None:
                correct += _n_correct(loss, out, yb)
    return tot / n, (correct / n if loss.predict is not None else None)


def _check_batchnorm_batches(model, n, batch_size, drop_last):
    last = _n_used(n, batch_size, drop_last) % batch_size
    if last == 1 and any(isinstance(l, _BatchNorm) for l in all_layers(model)):
        raise ValueError(f"batch_size: with {n} samples and batch_size={batch_size} the last "
                         f"batch of every epoch holds one sample, which batch normalisation "
                         f"cannot normalise in training mode; pass drop_last=True or another "
                         f"batch_size")


def fit(model, loss, opt, X, y, epochs=5, batch_size=128, val=None, shuffle=True,
        progress=True, callbacks=(), drop_last=False, nonfinite="raise", engine=True,
        comm=None):
    """Train ``model`` with mini-batches and return a :class:`History`.

    Data are moved to the active backend once and cast to the model's dtype
    (copies; your arrays are never modified).  Batches are drawn in an order
    shuffled by nnbook's seeded generator, so the same seed gives the same
    history (on the same machine and BLAS library).  ``progress``: a tqdm bar (a
    widget in notebooks, text in terminals); ``False`` for silence.
    ``callbacks``: functions ``cb(epoch, history)`` called after each epoch; every
    callback is called, and training stops after the epoch if any returned True.
    ``drop_last``: leave out the final, smaller batch of each epoch.
    ``nonfinite``: "raise" (default) stops with a FloatingPointError naming the
    epoch and batch where the loss became NaN or infinite; "warn" warns once and
    goes on.  ``engine=False`` runs the reference layers only (slower; the engine
    is tested equal to it).  The model is in training mode during ``fit``; every
    layer gets back the mode it had when ``fit`` returns.
    ``comm``: a communicator of :mod:`nnbook.distributed` (``dist.init()`` under
    ``mpiexec``) for data-parallel training: every process calls ``fit`` with the
    same arguments and trains on its share of each batch of ``batch_size``; the
    weights and history are those of one process on the whole batch, up to
    rounding.  Only rank 0 shows the progress bar.
    """
    if not isinstance(drop_last, bool):
        raise TypeError(f"drop_last: expected True or False, got {drop_last!r}")
    if not isinstance(loss, Loss):
        raise TypeError(f"loss: expected an nnbook loss (e.g. nb.SoftmaxCrossEntropy()), "
                        f"got {type(loss).__name__}")
    if not isinstance(opt, Optimizer):
        raise TypeError(f"opt: expected an nnbook optimizer (e.g. nb.SGD(model.parameters(), "
                        f"lr=0.1)), got {type(opt).__name__}")
    check_choice("nonfinite", nonfinite, ("raise", "warn"))
    epochs = check_int("epochs", epochs, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    X, y = _prepare(model, X, y, ("X", "y"))
    y = _check_targets(loss, model, X, y, "y")
    if val is not None:
        if not (isinstance(val, (tuple, list)) and len(val) == 2):
            raise TypeError(f"val: expected a tuple (X_val, y_val), got {type(val).__name__}")
        Xv, yv = _prepare(model, val[0], val[1], ("val[0]", "val[1]"))
        yv = _check_targets(loss, model, Xv, yv, "val[1]")
    n = X.shape[0]
    _check_batchnorm_batches(model, n, batch_size, drop_last)
    if hasattr(model, "check_unique"):
        model.check_unique()          # the layer list may have changed since construction
    hist = History(loss=[], acc=[], val_loss=[], val_acc=[])
    used = _n_used(n, batch_size, drop_last)
    n_batches = -(-used // batch_size)
    bar = None
    if progress and (comm is None or comm.rank == 0):
        from tqdm.auto import tqdm  # noqa: PLC0415
        bar = tqdm(total=epochs * n_batches, unit="batch", desc="fit", leave=True)
    has_acc = loss.predict is not None
    warned = False
    with _modes_kept(model, True):
        if comm is None:
            from .engine import compile_step  # noqa: PLC0415 (loads numba: on first use)
            step = compile_step(model, loss, opt, engine=engine)
        else:                         # this rank's share of each batch, gradients averaged
            from .distributed import DataParallelStep  # noqa: PLC0415
            step = DataParallelStep(model, loss, opt, comm, engine=engine)
        try:
            for epoch in range(epochs):
                tot, correct = 0.0, 0
                for b, idx in enumerate(iterate_minibatches(n, batch_size, shuffle,
                                                            drop_last=drop_last)):
                    value, c = step(step.gather(X, idx), y[idx])
                    if not math.isfinite(value):
                        msg = (f"fit: the loss became {value} at epoch {epoch + 1}, batch "
                               f"{b + 1} of {n_batches} (learning rate too large? inputs "
                               f"not scaled?)")
                        if nonfinite == "raise":
                            raise FloatingPointError(msg + "; pass nonfinite='warn' to go on")
                        if not warned:
                            warnings.warn(msg, RuntimeWarning, stacklevel=2)
                            warned = True
                    tot += value * len(idx)
                    correct += c
                    if bar is not None:
                        bar.update(1)
                hist["loss"].append(tot / used)
                hist["acc"].append(correct / used if has_acc else None)
                if val is not None:
                    vl, va = _evaluate(model, loss, Xv, yv, 1024, engine)
                    hist["val_loss"].append(vl)
                    hist["val_acc"].append(va)
                if bar is not None:
                    post = {"loss": f"{hist['loss'][-1]:.4f}"}
                    if has_acc:
                        post["acc"] = f"{hist['acc'][-1]:.4f}"
                    if val is not None and has_acc:
                        post["val_acc"] = f"{hist['val_acc'][-1]:.4f}"
                    bar.set_postfix(post)
                stops = [bool(cb(epoch, hist)) for cb in callbacks]
                if any(stops):
                    break
        finally:
            step.close()
            if bar is not None:
                bar.close()
    if val is None:
        del hist["val_loss"], hist["val_acc"]
    return hist
