"""Optimizers with PyTorch's update rules and defaults, so that results are
comparable step by step with ``torch.optim``.

``opt = SGD(model.parameters(), lr=0.1)``; after ``model.backward(...)`` call
``opt.step()`` then ``opt.zero_grad()``.  Each optimizer keeps its state per
parameter; ``lr`` may be changed between steps (schedules do).

Also plain gradient descent on a function, ``gd_trace``, and the convergence bounds
the book checks it against: ``linear_rate_bound`` (strongly convex) and
``nonconvex_rate_bound`` (L-smooth, not convex).
"""
from __future__ import annotations

import math

from ._checks import check_positive
from .backend import get_xp
from .layers import Param

__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "Adagrad", "OPTIMIZERS"]


class Optimizer:
    """Base class: holds the parameters (``model.parameters()``), the learning rate
    ``lr`` and per-parameter state; ``step()`` applies the update to every parameter
    from its gradient, ``zero_grad()`` resets the gradients."""

    def __init__(self, params, lr):
        params = list(params)
        if not params:
            raise ValueError("params: expected at least one parameter, got an empty list")
        for i, p in enumerate(params):
            if not isinstance(p, Param):
                raise TypeError(f"params[{i}]: expected an nnbook Param (from "
                                f"model.parameters()), got {type(p).__name__}")
        self.params = params
        self.lr = check_positive("lr", lr)
        self.state = [dict() for _ in params]
        self.t = 0

    def zero_grad(self):
        seen = set()
        for p in self.params:
            if id(p.layer) not in seen:
                seen.add(id(p.layer))
                p.layer.zero_grad()

    def step(self):
        self.t += 1
        for p, st in zip(self.params, self.state):
            self._update(p, p.grad, st)

    def _update(self, p, g, st):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self):
        keys = [k for k in ("lr", "momentum", "betas", "alpha", "eps", "weight_decay",
                            "nesterov") if hasattr(self, k)]
        return f"{type(self).__name__}({', '.join(f'{k}={getattr(self, k)!r}' for k in keys)})"


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    PyTorch's rule: g = grad + wd·p; b = μ·b + (1 - τ)·g (b = g at the first
    step); g = g + μ·b if nesterov else b; p = p - lr·g.
    """

    def __init__(self, params, lr=0.001, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        super().__init__(params, lr)
        self.momentum = check_positive("momentum", momentum, allow_zero=True)
        self.dampening = check_positive("dampening", dampening, allow_zero=True)
        self.weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError("nesterov: requires momentum > 0 and dampening = 0")

    @property
    def _plain(self):
        """Plain SGD (no momentum, no weight decay): its step is p -= lr * g."""
        return not self.momentum and not self.weight_decay

    def _step_prescaled(self, params=None):
        """Step when the gradients were computed already multiplied by lr
        (training loops scale the loss gradient once: one pass per parameter).
        ``params``: the subset to step (default all; layers that took their step
        inside their backward pass are left out by the caller)."""
        self.t += 1
        for p in self.params if params is None else params:
            p.value -= p.grad

    def _update(self, p, g, st):
        w = p.value
        if self.weight_decay:
            g = g + self.weight_decay * w
        if self.momentum:
            b = st.get("buf")
            if b is None:
                b = st["buf"] = g.copy()
            else:
                b *= self.momentum
                b += (1 - self.dampening) * g
            g = g + self.momentum * b if self.nesterov else b
        _axpy(-self.lr, g, w, st)


def _axpy(a, x, y, st):
    """y += a * x in place through a temporary kept in the optimizer state
    (fresh memory per step is slow on first touch).  SciPy's BLAS axpy would be
    faster in isolation, but its second OpenBLAS thread pool fights NumPy's for
    the cores: measured 6x slower end to end."""
    tmp = st.get("tmp")
    if tmp is None or tmp.shape != y.shape or tmp.dtype != y.dtype or type(tmp) is not type(y):
        tmp = st["tmp"] = get_xp().empty_like(y)
    get_xp().multiply(x, a, out=tmp)
    y += tmp


class RMSprop(Optimizer):
    """PyTorch's RMSprop: v = α v + (1-α) g²; p -= lr · g / (sqrt(v) + ε)."""

    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False):
        super().__init__(params, lr)
        self.alpha = check_positive("alpha", alpha)
        self.eps = check_positive("eps", eps)
        self.weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)
        self.momentum = check_positive("momentum", momentum, allow_zero=True)
        self.centered = bool(centered)

    def _update(self, p, g, st):
        xp = get_xp()
        w = p.value
        if self.weight_decay:
            g = g + self.weight_decay * w
        v = st.setdefault("square_avg", xp.zeros_like(w))
        v *= self.alpha
        v += (1 - self.alpha) * g * g
        if self.centered:
            m = st.setdefault("grad_avg", xp.zeros_like(w))
            m *= self.alpha
            m += (1 - self.alpha) * g
            avg = xp.sqrt(v - m * m) + self.eps
        else:
            avg = xp.sqrt(v) + self.eps
        if self.momentum:
            b = st.setdefault("buf", xp.zeros_like(w))
            b *= self.momentum
            b += g / avg
            w -= self.lr * b
        else:
            w -= self.lr * g / avg


class Adam(Optimizer):
    """PyTorch's Adam (bias-corrected first and second moments)."""

    decoupled = False

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"betas: expected two numbers in [0, 1), got {betas!r}")
        self.betas = (float(b1), float(b2))
        self.eps = check_positive("eps", eps)
        self.weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)

    def _update(self, p, g, st):
        xp = get_xp()
        w = p.value
        b1, b2 = self.betas
        if self.weight_decay:
            if self.decoupled:
                w *= 1 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * w
        m = st.setdefault("exp_avg", xp.zeros_like(w))
        v = st.setdefault("exp_avg_sq", xp.zeros_like(w))
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        bc1 = 1 - b1 ** self.t
        bc2 = 1 - b2 ** self.t
        denom = xp.sqrt(v) / math.sqrt(bc2) + self.eps
        w -= (self.lr / bc1) * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (PyTorch default weight_decay=0.01)."""

    decoupled = True

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr, betas, eps, weight_decay)


class Adagrad(Optimizer):
    """PyTorch's Adagrad (lr_decay = 0): s += g²; p -= lr · g / (sqrt(s) + ε)."""

    def __init__(self, params, lr=0.01, eps=1e-10, weight_decay=0.0):
        super().__init__(params, lr)
        self.eps = check_positive("eps", eps)
        self.weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)

    def _update(self, p, g, st):
        xp = get_xp()
        w = p.value
        if self.weight_decay:
            g = g + self.weight_decay * w
        s = st.setdefault("sum", xp.zeros_like(w))
        s += g * g
        w -= self.lr * g / (xp.sqrt(s) + self.eps)


OPTIMIZERS = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW, "adagrad": Adagrad}


# ----------------------------------------------------------------------------------------
# gradient descent's convergence rates (the chapter "Gradient descent and its convergence")
# ----------------------------------------------------------------------------------------
def gd_trace(f, grad, x0, lr, steps):
    """Run ``steps`` steps of plain gradient descent ``x <- x - lr * grad(x)`` from ``x0``.

    Returns ``(x, fs, grad_sq)``: the last iterate, the values ``f(x_0), ..., f(x_K)``
    (``K + 1`` of them) and the squared gradient norms ``||grad f(x_k)||^2`` for
    ``k = 0, ..., K - 1`` (the gradients the steps used).  ``x0`` is not modified.
    """
    if not callable(f) or not callable(grad):
        raise TypeError(f"f, grad: expected two functions, got {type(f).__name__} and "
                        f"{type(grad).__name__}")
    check_positive("lr", lr)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps: expected an integer >= 0, got {steps!r}")
    xp = get_xp()
    x = xp.array(x0, dtype=float, copy=True)
    fs, grad_sq = [float(f(x))], []
    for _ in range(steps):
        g = grad(x)
        grad_sq.append(float(g.ravel() @ g.ravel()))
        x = x - lr * g
        fs.append(float(f(x)))
    return x, xp.asarray(fs), xp.asarray(grad_sq)


def linear_rate_bound(gap0, mu, L, k):
    """The strongly convex rate of gradient descent with step ``1/L``:
    ``f(x_k) - f* <= (1 - mu/L)^k (f(x_0) - f*)`` for an ``L``-smooth, ``mu``-strongly
    convex ``f`` (``0 < mu <= L``).  ``k`` may be an integer or an array of step counts.
    """
    check_positive("L", L)
    check_positive("mu", mu)
    if mu > L:
        raise ValueError(f"mu: expected mu <= L (a strong-convexity constant cannot exceed "
                         f"the smoothness constant), got mu = {mu} > L = {L}")
    if gap0 < 0:
        raise ValueError(f"gap0: expected f(x_0) - f* >= 0, got {gap0}")
    return gap0 * (1.0 - mu / L) ** get_xp().asarray(k, dtype=float)


def nonconvex_rate_bound(f0, f_inf, L, K):
    """The non-convex rate of gradient descent with step ``1/L``:
    ``min_{k<K} ||grad f(x_k)||^2 <= 2 L (f(x_0) - f_inf) / K`` for an ``L``-smooth ``f``
    bounded below by ``f_inf``.  ``K`` (>= 1) may be an integer or an array.
    """
    check_positive("L", L)
    if f0 < f_inf:
        raise ValueError(f"f_inf: expected a lower bound of f, at most f(x_0) = {f0}, "
                         f"got {f_inf}")
    K = get_xp().asarray(K, dtype=float)
    if (K < 1).any():
        raise ValueError(f"K: expected step counts >= 1, got {K}")
    return 2.0 * L * (f0 - f_inf) / K


__all__ += ["gd_trace", "linear_rate_bound", "nonconvex_rate_bound"]
