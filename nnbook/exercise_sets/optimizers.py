"""Exercises of the chapter "Optimizers".

Each optimizer exercise applies a fixed sequence of gradients ``grads`` (shape
(T, D)) to a starting point ``p0`` (shape (D,)) and returns the final point,
following PyTorch's update rule (the one ``nnbook.optim`` implements).
"""
import math

import numpy as np

from ..exercises import register


def _seq_cases(rng):
    return [(rng.normal(size=5), rng.normal(size=(12, 5))),
            (rng.normal(size=3), rng.normal(size=(1, 3))),
            (np.zeros(2), np.array([[1.0, -1.0], [1.0, -1.0], [1e-3, 1e3]])),
            (rng.normal(size=4), rng.normal(size=(30, 4)) * 100)]


def _momentum(p0, grads, lr=0.1, momentum=0.9):
    p, b = p0.copy(), None
    for g in grads:
        b = g.copy() if b is None else momentum * b + g
        p = p - lr * b
    return p


register(
    "optim.momentum",
    "SGD with momentum 0.9 and lr 0.1, PyTorch's form: b = g at the first step, then "
    "b = 0.9 b + g; p = p - 0.1 b. Return the final p.",
    reference=_momentum,
    cases=_seq_cases,
    wrong=lambda p0, grads: _ema_momentum(p0, grads),
)


def _ema_momentum(p0, grads, lr=0.1, momentum=0.9):
    p, b = p0.copy(), np.zeros_like(p0)
    for g in grads:
        b = momentum * b + (1 - momentum) * g        # dampening = momentum: a different method
        p = p - lr * b
    return p


def _nesterov(p0, grads, lr=0.1, momentum=0.9):
    p, b = p0.copy(), None
    for g in grads:
        b = g.copy() if b is None else momentum * b + g
        p = p - lr * (g + momentum * b)
    return p


register(
    "optim.nesterov",
    "SGD with Nesterov momentum 0.9 and lr 0.1, PyTorch's form (b as in optim.momentum, "
    "then p = p - 0.1 (g + 0.9 b)). Return the final p.",
    reference=_nesterov,
    cases=_seq_cases,
    wrong=_momentum,
)


def _rmsprop(p0, grads, lr=0.01, alpha=0.99, eps=1e-8):
    p, v = p0.copy(), np.zeros_like(p0)
    for g in grads:
        v = alpha * v + (1 - alpha) * g * g
        p = p - lr * g / (np.sqrt(v) + eps)
    return p


register(
    "optim.rmsprop",
    "RMSprop with lr 0.01, alpha 0.99, eps 1e-8 (v starts at 0; eps outside the square "
    "root). Return the final p.",
    reference=_rmsprop,
    cases=_seq_cases,
    wrong=lambda p0, grads: _rmsprop_eps_inside(p0, grads),
    rtol=1e-7, atol=1e-10,
)


def _rmsprop_eps_inside(p0, grads, lr=0.01, alpha=0.99, eps=1e-8):
    p, v = p0.copy(), np.ones_like(p0)      # wrong start and eps inside: both are seen
    for g in grads:
        v = alpha * v + (1 - alpha) * g * g
        p = p - lr * g / np.sqrt(v + eps)
    return p


def _adam(p0, grads, lr=0.001, b1=0.9, b2=0.999, eps=1e-8):
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat, vhat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        p = p - lr * mhat / (np.sqrt(vhat) + eps)
    return p


def _adam_no_bias_correction(p0, grads, lr=0.001, b1=0.9, b2=0.999, eps=1e-8):
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for g in grads:
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * m / (np.sqrt(v) + eps)
    return p


register(
    "optim.adam",
    "Adam with lr 1e-3, betas (0.9, 0.999), eps 1e-8, bias-corrected moments "
    "(steps counted from t = 1). Return the final p.",
    reference=_adam,
    cases=_seq_cases,
    wrong=_adam_no_bias_correction,
    rtol=1e-7, atol=1e-10,
)


def _onecycle_lr(t, total_steps, max_lr):
    init, final = max_lr / 25.0, max_lr / 25.0 / 1e4
    end1 = 0.3 * total_steps - 1
    if t <= end1:
        start, end, pct = init, max_lr, t / end1
    else:
        start, end, pct = max_lr, final, (t - end1) / (total_steps - 1 - end1)
    return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)


register(
    "optim.onecycle_lr",
    "The one-cycle rate of step t (PyTorch's OneCycleLR defaults: pct_start 0.3, cosine "
    "annealing, div_factor 25, final_div_factor 1e4, two phases; phase 1 ends at step "
    "0.3*total_steps - 1, phase 2 at total_steps - 1).",
    reference=_onecycle_lr,
    cases=lambda rng: [(0, 100, 1.0), (29, 100, 1.0), (30, 100, 1.0), (99, 100, 1.0),
                       (57, 100, 0.3), (10, 37, 0.1), (36, 37, 0.1),
                       (int(rng.integers(0, 500)), 500, 2.0)],
    wrong=lambda t, total_steps, max_lr: max_lr * (t / (0.3 * total_steps) if t < 0.3 * total_steps
                                                   else 1 - (t - 0.3 * total_steps) / (0.7 * total_steps)),
    rtol=1e-9, atol=1e-15,
)


def _rosenbrock_grad(xy):
    x, y = xy
    return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


register(
    "optim.rosenbrock_grad",
    "Return the gradient of Rosenbrock's function f(x, y) = (1 - x)^2 + 100 (y - x^2)^2 "
    "at the point xy = (x, y).",
    reference=_rosenbrock_grad,
    cases=lambda rng: [np.array([1.0, 1.0]), np.array([-1.5, 2.0]), np.array([0.0, 0.0]),
                       rng.normal(size=2), rng.uniform(-2, 2, size=2)],
    wrong=lambda xy: np.array([-2 * (1 - xy[0]) - 200 * xy[0] * (xy[1] - xy[0] ** 2),
                               200 * (xy[1] - xy[0] ** 2)]),           # chain rule: lost a 2
)
