"""Learning-rate schedules, the learning-rate range test and gradient clipping.

Schedules act on an nnbook optimizer's ``lr`` with PyTorch's conventions
(``torch.optim.lr_scheduler``): building a schedule records the optimizer's
current ``lr`` as the base rate and sets the rate of step 0; call
``sched.step()`` once after each ``opt.step()`` (per batch for
:class:`OneCycleLR`, per batch or per epoch for the others)::

    opt = nb.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = OneCycleLR(opt, max_lr=0.1, total_steps=epochs * batches_per_epoch)
    for ...:
        ...; opt.step(); opt.zero_grad(); sched.step()

``get_lr()`` is the rate in force now; ``lr_at(t)`` the closed-form rate of
step ``t`` without touching the optimizer (for plots).

=============================  ==================================================
schedule                       rate at step t (η0 = the optimizer's lr at build)
=============================  ==================================================
:class:`StepLR`                η0 · γ^⌊t / step_size⌋
:class:`ExponentialLR`         η0 · γ^t
:class:`InverseTimeLR`         η0 / (1 + k t)
:class:`CosineAnnealingLR`     η_min + (η0 − η_min)(1 + cos(π t / T_max)) / 2
:class:`OneCycleLR`            warm-up to max_lr then anneal to max_lr/(div·final_div)
=============================  ==================================================

:func:`lr_finder` runs Smith's learning-rate range test; :func:`clip_grad_norm`
and :func:`clip_grad_value` have the semantics of ``torch.nn.utils``.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from ._checks import check_choice, check_int, check_positive
from .backend import get_rng, get_xp
from .layers import Param
from .optim import SGD, Optimizer

__all__ = ["LRScheduler", "StepLR", "ExponentialLR", "InverseTimeLR", "CosineAnnealingLR",
           "OneCycleLR", "lr_finder", "LRFinderResult",
           "clip_grad_norm", "clip_grad_value"]


# ----------------------------------------------------------------------------------------
# schedules
# ----------------------------------------------------------------------------------------
class LRScheduler:
    """Base class: subclasses implement ``lr_at(t)`` (the rate of step ``t``).

    ``last_epoch`` counts the calls to :meth:`step` (0 right after building,
    as in PyTorch, whose constructor performs the first step itself).
    """

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer: expected an nnbook optimizer (e.g. nb.SGD(...)), "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.last_epoch = -1
        self.step()

    def lr_at(self, t):  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self):
        """Advance one step and write the new rate into ``optimizer.lr``."""
        self.last_epoch += 1
        lr = float(self.lr_at(self.last_epoch))
        self.optimizer.lr = lr
        self._last_lr = lr
        return lr

    def get_lr(self):
        """The rate the schedule set at the current step."""
        return self._last_lr

    def get_last_lr(self):
        """PyTorch's spelling: a one-element list ``[get_lr()]``."""
        return [self._last_lr]

    def trace(self, n):
        """The rates of steps ``0 .. n-1`` as a NumPy array (the optimizer is untouched)."""
        n = check_int("n", n, minimum=1)
        return np.array([self.lr_at(t) for t in range(n)])

    def __repr__(self):
        keys = [k for k in ("base_lr", "step_size", "gamma", "k", "T_max", "eta_min",
                            "max_lr", "total_steps", "pct_start", "anneal_strategy")
                if hasattr(self, k)]
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in keys)
        return f"{type(self).__name__}({args}, last_epoch={self.last_epoch})"


class StepLR(LRScheduler):
    """Multiply the rate by ``gamma`` every ``step_size`` steps: η0·γ^⌊t/step_size⌋."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        self.step_size = check_int("step_size", step_size, minimum=1)
        self.gamma = check_positive("gamma", gamma)
        super().__init__(optimizer)

    def lr_at(self, t):
        return self.base_lr * self.gamma ** (t // self.step_size)


class ExponentialLR(LRScheduler):
    """Multiply the rate by ``gamma`` at every step: η0·γ^t."""

    def __init__(self, optimizer, gamma):
        self.gamma = check_positive("gamma", gamma)
        super().__init__(optimizer)

    def lr_at(self, t):
        return self.base_lr * self.gamma ** t


class InverseTimeLR(LRScheduler):
    """Inverse-time decay η0 / (1 + k t): Σ η_t = ∞ and Σ η_t² < ∞ (Robbins–Monro)."""

    def __init__(self, optimizer, k):
        self.k = check_positive("k", k)
        super().__init__(optimizer)

    def lr_at(self, t):
        return self.base_lr / (1.0 + self.k * t)


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from η0 down to ``eta_min`` over ``T_max`` steps.

    η_t = η_min + (η0 − η_min)(1 + cos(π t / T_max)) / 2.  Past ``T_max`` the
    cosine goes on (the rate climbs back), as PyTorch's does.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0):
        self.T_max = check_int("T_max", T_max, minimum=1)
        self.eta_min = check_positive("eta_min", eta_min, allow_zero=True)
        super().__init__(optimizer)

    def lr_at(self, t):
        return self.eta_min + (self.base_lr - self.eta_min) * (
            1.0 + math.cos(math.pi * t / self.T_max)) / 2.0


def _anneal_cos(start, end, pct):
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1.0)


def _anneal_linear(start, end, pct):
    return (end - start) * pct + start


class OneCycleLR(LRScheduler):
    """Smith's one-cycle policy with ``torch.optim.lr_scheduler.OneCycleLR``'s rules.

    The rate starts at ``max_lr / div_factor``, rises to ``max_lr`` over the
    first ``pct_start`` of ``total_steps`` and then falls to
    ``max_lr / (div_factor * final_div_factor)`` (cosine by default,
    ``anneal_strategy="linear"`` for straight lines).  ``three_phase=True``
    comes back down to the initial rate symmetrically before the final
    annihilation.  With ``cycle_momentum`` (default) the momentum (SGD,
    RMSprop) or β1 (Adam, AdamW) moves the opposite way, between
    ``max_momentum`` and ``base_momentum``.  Give ``total_steps`` or both
    ``epochs`` and ``steps_per_epoch``; stepping past ``total_steps`` raises.
    The optimizer's own ``lr`` at build time is ignored, as in PyTorch.
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True,
                 base_momentum=0.85, max_momentum=0.95, div_factor=25.0,
                 final_div_factor=1e4, three_phase=False):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer: expected an nnbook optimizer (e.g. nb.SGD(...)), "
                            f"got {type(optimizer).__name__}")
        self.max_lr = check_positive("max_lr", max_lr)
        if total_steps is not None:
            self.total_steps = check_int("total_steps", total_steps, minimum=1)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (check_int("epochs", epochs, minimum=1)
                                * check_int("steps_per_epoch", steps_per_epoch, minimum=1))
        else:
            raise ValueError("total_steps: give total_steps, or both epochs and steps_per_epoch "
                             f"(got total_steps={total_steps!r}, epochs={epochs!r}, "
                             f"steps_per_epoch={steps_per_epoch!r})")
        pct_start = check_positive("pct_start", pct_start)
        if not 0 < pct_start < 1:
            raise ValueError(f"pct_start: expected a number in (0, 1), got {pct_start}")
        self.pct_start = pct_start
        self.anneal_strategy = check_choice("anneal_strategy", anneal_strategy, ("cos", "linear"))
        self._anneal = _anneal_cos if anneal_strategy == "cos" else _anneal_linear
        self.div_factor = check_positive("div_factor", div_factor)
        self.final_div_factor = check_positive("final_div_factor", final_div_factor)
        self.three_phase = bool(three_phase)
        self.initial_lr = self.max_lr / self.div_factor
        self.min_lr = self.initial_lr / self.final_div_factor
        T = float(self.total_steps)
        if self.three_phase:
            self._phases = [
                (float(pct_start * T) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (float(2 * pct_start * T) - 2, "max_lr", "initial_lr", "base_momentum",
                 "max_momentum"),
                (T - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            self._phases = [
                (float(pct_start * T) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (T - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        self.cycle_momentum = bool(cycle_momentum)
        if self.cycle_momentum:
            if hasattr(optimizer, "betas"):
                self._mom_attr = "betas"
            elif hasattr(optimizer, "momentum"):
                self._mom_attr = "momentum"
            else:
                raise ValueError(f"optimizer: {type(optimizer).__name__} has no momentum or "
                                 f"betas to cycle; pass cycle_momentum=False")
            self.base_momentum = check_positive("base_momentum", base_momentum, allow_zero=True)
            self.max_momentum = check_positive("max_momentum", max_momentum, allow_zero=True)
            if not self.base_momentum <= self.max_momentum < 1:
                raise ValueError(f"base_momentum, max_momentum: expected 0 <= base_momentum <= "
                                 f"max_momentum < 1, got {base_momentum}, {max_momentum}")
        else:
            self.base_momentum = float(base_momentum)
            self.max_momentum = float(max_momentum)
        self.base_lr = self.initial_lr
        self.optimizer = optimizer
        self.last_epoch = -1
        self.step()

    def _phase_values(self, t):
        if t > self.total_steps:
            raise ValueError(f"step: tried to step {t} times; the schedule has total_steps="
                             f"{self.total_steps} (build it with more steps)")
        start = 0.0
        for i, (end, lr0, lr1, m0, m1) in enumerate(self._phases):
            if t <= end or i == len(self._phases) - 1:
                pct = (t - start) / (end - start)
                lr = self._anneal(getattr(self, lr0), getattr(self, lr1), pct)
                mom = self._anneal(getattr(self, m0), getattr(self, m1), pct)
                return lr, mom
            start = end
        raise AssertionError("unreachable")  # pragma: no cover

    def lr_at(self, t):
        return self._phase_values(t)[0]

    def momentum_at(self, t):
        """The momentum (or β1) of step ``t`` when cycling momentum."""
        return self._phase_values(t)[1]

    def step(self):
        self.last_epoch += 1
        lr, mom = self._phase_values(self.last_epoch)
        self.optimizer.lr = lr
        self._last_lr = lr
        if self.cycle_momentum:
            if self._mom_attr == "betas":
                self.optimizer.betas = (mom,) + tuple(self.optimizer.betas[1:])
            else:
                self.optimizer.momentum = mom
        return lr

    def trace(self, n=None):
        """Rates of steps ``0 .. n-1`` (default: the whole cycle, ``total_steps`` values)."""
        n = self.total_steps if n is None else check_int("n", n, minimum=1)
        return np.array([self.lr_at(t) for t in range(n)])


# ----------------------------------------------------------------------------------------
# learning-rate range test
# ----------------------------------------------------------------------------------------
@dataclasses.dataclass
class LRFinderResult:
    """What :func:`lr_finder` measured.  Unpacks as ``lrs, losses, suggested_lr``.

    ``lrs``: the rate of each mini-batch step; ``losses``: the bias-corrected
    exponentially smoothed loss; ``raw_losses``: the unsmoothed batch losses;
    ``min_loss_lr``: the rate of the lowest smoothed loss;
    ``suggested_lr``: a tenth of it, the classic rule of thumb (a rate safely
    below the point where the loss turns up); ``steepest_lr``: where the
    smoothed loss falls fastest against log lr; ``valley_lr``: two fifths of
    the way along the longest stretch over which the smoothed loss keeps
    falling (fastai's "valley" rule, usually more conservative);
    ``diverged``: whether the test stopped early because the loss blew up.
    """

    lrs: np.ndarray
    losses: np.ndarray
    raw_losses: np.ndarray
    suggested_lr: float
    min_loss_lr: float
    steepest_lr: float
    valley_lr: float
    diverged: bool

    def __iter__(self):
        return iter((self.lrs, self.losses, self.suggested_lr))


def lr_finder(model_factory, loss, X, y, optimizer=None, start_lr=1e-7, end_lr=10.0,
              num_iter=100, batch_size=64, smooth=0.98, diverge_factor=4.0, skip_start=5):
    """Smith's learning-rate range test.

    A fresh model from ``model_factory()`` is trained on mini-batches of
    ``(X, y)`` while the rate grows geometrically from ``start_lr`` to
    ``end_lr`` over ``num_iter`` steps.  The batch losses are smoothed with an
    exponential moving average (factor ``smooth``, bias-corrected); the test
    stops once the smoothed loss exceeds ``diverge_factor`` times its best
    value (or becomes NaN/inf).  ``optimizer(params, lr)`` builds the
    optimizer (default: SGD with momentum 0.9).  The first ``skip_start``
    points are ignored by the suggestions.  Returns :class:`LRFinderResult`;
    ``suggested_lr`` is a tenth of the rate at the smoothed loss's minimum.
    """
    from .losses import Loss  # noqa: PLC0415
    from .train import _check_targets, _prepare  # noqa: PLC0415
    if not callable(model_factory):
        raise TypeError(f"model_factory: expected a function returning a new model, got "
                        f"{type(model_factory).__name__}")
    if not isinstance(loss, Loss):
        raise TypeError(f"loss: expected an nnbook loss (e.g. nb.SoftmaxCrossEntropy()), "
                        f"got {type(loss).__name__}")
    start_lr = check_positive("start_lr", start_lr)
    end_lr = check_positive("end_lr", end_lr)
    if end_lr <= start_lr:
        raise ValueError(f"end_lr: expected a rate above start_lr={start_lr}, got {end_lr}")
    num_iter = check_int("num_iter", num_iter, minimum=2)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    smooth = float(smooth)
    if not 0 <= smooth < 1:
        raise ValueError(f"smooth: expected a number in [0, 1), got {smooth}")
    diverge_factor = check_positive("diverge_factor", diverge_factor)
    if diverge_factor <= 1:
        raise ValueError(f"diverge_factor: expected a number > 1, got {diverge_factor}")
    skip_start = check_int("skip_start", skip_start, minimum=0)
    if optimizer is None:
        def optimizer(params, lr):
            return SGD(params, lr=lr, momentum=0.9)
    model = model_factory()
    X, y = _prepare(model, X, y, ("X", "y"))
    y = _check_targets(loss, model, X, y, "y")
    opt = optimizer(model.parameters(), lr=start_lr)
    if not isinstance(opt, Optimizer):
        raise TypeError(f"optimizer: expected a function returning an nnbook optimizer, got "
                        f"one returning {type(opt).__name__}")
    mult = (end_lr / start_lr) ** (1.0 / (num_iter - 1))
    n = X.shape[0]
    rng = get_rng()
    xp = get_xp()
    order = rng.permutation(n)
    pos = 0
    lrs, smoothed, raw = [], [], []
    avg, best, diverged = 0.0, math.inf, False
    model.train()
    lr = start_lr
    for i in range(num_iter):
        if pos + batch_size > n:
            order, pos = rng.permutation(n), 0
        idx = order[pos:pos + batch_size]
        pos += batch_size
        if xp is not np:
            idx = xp.asarray(idx)
        opt.lr = lr
        out = model.forward(X[idx])
        value = loss._forward(out, y[idx])
        model.backward(loss._backward())
        opt.step()
        opt.zero_grad()
        avg = smooth * avg + (1 - smooth) * value
        s = avg / (1 - smooth ** (i + 1))
        lrs.append(lr)
        raw.append(value)
        smoothed.append(s)
        if not math.isfinite(s) or s > diverge_factor * best:
            diverged = True
            break
        best = min(best, s)
        lr *= mult
    lrs, smoothed, raw = np.array(lrs), np.array(smoothed), np.array(raw)
    ok = np.isfinite(smoothed)
    lo = min(skip_start, max(0, int(ok.sum()) - 2))
    l_ok, s_ok = lrs[ok][lo:], smoothed[ok][lo:]
    if len(l_ok) >= 2:
        slope = np.gradient(s_ok, np.log(l_ok))
        steepest = float(l_ok[int(np.argmin(slope))])
        valley = float(l_ok[_valley(s_ok)])
    else:
        steepest = valley = float(lrs[0])
    min_loss_lr = float(l_ok[int(np.argmin(s_ok))]) if len(l_ok) else float(lrs[0])
    return LRFinderResult(lrs, smoothed, raw, min_loss_lr / 10, min_loss_lr, steepest, valley,
                          diverged)


def _valley(losses):
    """Index two fifths of the way along the longest decreasing subsequence of ``losses``."""
    n = len(losses)
    lds = [1] * n
    start = end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
        if lds[end] < lds[i]:
            end = i
            start = end - lds[end]
    third = (end - start) / 3
    return min(n - 1, max(0, start + int(third) + int(third / 2)))


# ----------------------------------------------------------------------------------------
# gradient clipping
# ----------------------------------------------------------------------------------------
def _as_params(params):
    if hasattr(params, "parameters") and callable(params.parameters):
        params = params.parameters()
    elif isinstance(params, Param):
        params = [params]
    params = list(params)
    for i, p in enumerate(params):
        if not isinstance(p, Param):
            raise TypeError(f"params[{i}]: expected an nnbook Param (from model.parameters()), "
                            f"got {type(p).__name__}")
    return params


def _scale_grad(p, factor):
    g = p.grad
    try:
        g *= factor
    except ValueError:          # a read-only zero view left by zero_grad
        p.layer.grads[p.name] = g * factor


def clip_grad_norm(params, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Rescale the gradients so that their joint norm is at most ``max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``: the total norm is the
    ``norm_type``-norm of all gradients concatenated (``float("inf")``: the
    largest absolute entry); every gradient is multiplied in place by
    ``min(1, max_norm / (total + 1e-6))``.  Returns the total norm *before*
    clipping (``max_norm=float("inf")`` only measures it).  ``params``: a list of Params or a model.
    """
    params = _as_params(params)
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float, np.integer,
                                                               np.floating)):
        raise TypeError(f"max_norm: expected a number, got {type(max_norm).__name__}")
    max_norm = float(max_norm)
    if not max_norm > 0:            # inf is allowed (measure without clipping); NaN is not
        raise ValueError(f"max_norm: expected a number > 0 (inf allowed), got {max_norm}")
    if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float)):
        raise TypeError(f"norm_type: expected a number, got {type(norm_type).__name__}")
    norm_type = float(norm_type)
    if not (norm_type > 0):
        raise ValueError(f"norm_type: expected a positive number or inf, got {norm_type}")
    if not params:
        return 0.0
    xp = get_xp()
    if math.isinf(norm_type):
        total = max(float(xp.abs(p.grad).max()) for p in params)
    else:
        norms = [float(xp.sum(xp.abs(p.grad.astype(np.float64)) ** norm_type)) ** (1 / norm_type)
                 if norm_type != 2 else float(xp.sqrt(xp.sum(p.grad.astype(np.float64) ** 2)))
                 for p in params]
        total = float(np.sum(np.array(norms) ** norm_type) ** (1 / norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"params: the total gradient {norm_type}-norm is {total}; "
                           f"pass error_if_nonfinite=False to clip anyway")
    coef = min(max_norm / (total + 1e-6), 1.0)
    if coef < 1.0 or not math.isfinite(total):
        for p in params:
            _scale_grad(p, coef)
    return total


def clip_grad_value(params, clip_value):
    """Clamp every gradient entry into ``[-clip_value, clip_value]`` in place
    (``torch.nn.utils.clip_grad_value_``)."""
    params = _as_params(params)
    clip_value = check_positive("clip_value", clip_value)
    xp = get_xp()
    for p in params:
        g = p.grad
        try:
            xp.clip(g, -clip_value, clip_value, out=g)
        except ValueError:
            p.layer.grads[p.name] = xp.clip(g, -clip_value, clip_value)
