"""Reference answers of the exercises of "Optimizers" (``optim.*``)."""
import math

import numpy as np

from nnbook.exercises.build import Solution


def momentum(p0, grads, lr=0.1, mu=0.9):
    p, b = p0.copy(), None
    for g in grads:
        b = g.copy() if b is None else mu * b + g
        p = p - lr * b
    return p


def _ema_momentum(p0, grads, lr=0.1, mu=0.9):
    p, b = p0.copy(), np.zeros_like(p0)
    for g in grads:
        b = mu * b + (1 - mu) * g        # dampening = momentum: a different method
        p = p - lr * b
    return p


def nesterov(p0, grads, lr=0.1, mu=0.9):
    p, b = p0.copy(), None
    for g in grads:
        b = g.copy() if b is None else mu * b + g
        p = p - lr * (g + mu * b)
    return p


def rmsprop(p0, grads, lr=0.01, alpha=0.99, eps=1e-8):
    p, v = p0.copy(), np.zeros_like(p0)
    for g in grads:
        v = alpha * v + (1 - alpha) * g * g
        p = p - lr * g / (np.sqrt(v) + eps)
    return p


def _rmsprop_eps_inside(p0, grads, lr=0.01, alpha=0.99, eps=1e-8):
    p, v = p0.copy(), np.ones_like(p0)      # wrong start and eps inside: both are seen
    for g in grads:
        v = alpha * v + (1 - alpha) * g * g
        p = p - lr * g / np.sqrt(v + eps)
    return p


def adam(p0, grads, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    return p


def _adam_no_bias_correction(p0, grads, lr=0.001, b1=0.9, b2=0.999, eps=1e-8):
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for g in grads:
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * m / (np.sqrt(v) + eps)
    return p


def _seq_cases(rng):
    return [(rng.normal(size=5), rng.normal(size=(12, 5))),
            (rng.normal(size=3), rng.normal(size=(1, 3))),                   # one step
            (np.zeros(2), np.array([[1.0, -1.0], [1.0, -1.0], [1e-3, 1e3]])),
            (rng.normal(size=4), rng.normal(size=(30, 4)) * 100),
            (rng.normal(size=3), np.zeros((4, 3))),                          # no gradient at all
            (rng.normal(size=1), rng.normal(size=(50, 1)) * 1e-4)]           # tiny gradients


def onecycle_lr(t, total_steps, max_lr):
    lo, hi, end = max_lr / 25, max_lr, max_lr / 25 / 1e4
    cos = lambda a, b, pct: b + (a - b) / 2 * (math.cos(math.pi * pct) + 1)  # noqa: E731
    e1 = 0.3 * total_steps - 1
    if t <= e1:
        return cos(lo, hi, t / e1)
    return cos(hi, end, (t - e1) / (total_steps - 1 - e1))


def _onecycle_linear(t, total_steps, max_lr):
    return max_lr * (t / (0.3 * total_steps) if t < 0.3 * total_steps
                     else 1 - (t - 0.3 * total_steps) / (0.7 * total_steps))


def rosenbrock_grad(xy):
    x, y = xy
    return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


def accuracy_gap_z(k1, k2, n):
    p1, p2 = k1 / n, k2 / n
    return (p1 - p2) / math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / n)


def _gap_one_se(k1, k2, n):            # the standard error of one accuracy, at their mean
    p = (k1 + k2) / (2 * n)
    return (k1 - k2) / n / math.sqrt(p * (1 - p) / n)


def _gap_se_added(k1, k2, n):          # standard errors added instead of variances
    p1, p2 = k1 / n, k2 / n
    return (p1 - p2) / (math.sqrt(p1 * (1 - p1) / n) + math.sqrt(p2 * (1 - p2) / n))


def _gap_variance(k1, k2, n):          # divided by the variance, not its square root
    p1, p2 = k1 / n, k2 / n
    return (p1 - p2) / ((p1 * (1 - p1) + p2 * (1 - p2)) / n)


def _gap_cases(rng):
    out = [(801, 768, 1000), (835, 766, 1000),       # the recorded ResNet-15 run
           (766, 801, 1000),                          # negative: the order matters
           (500, 500, 1000),                          # equal: z = 0
           (10, 9, 10), (0, 3, 20),                   # one accuracy at 1 or at 0
           (206, 213, 256), (7, 3, 12)]               # small test sets
    for _ in range(2):
        n = int(rng.integers(50, 20000))
        k1, k2 = (int(k) for k in rng.integers(1, n, size=2))
        out.append((k1, k2, n))
    return out


SOLUTIONS = {
    "optim.momentum": Solution(
        momentum, _seq_cases,
        wrong={"an exponential moving average (dampening 0.9)": _ema_momentum}),
    "optim.nesterov": Solution(
        nesterov, _seq_cases,
        wrong={"plain momentum": momentum}),
    "optim.rmsprop": Solution(
        rmsprop, _seq_cases,
        wrong={"v starts at 1 and eps inside the root": _rmsprop_eps_inside}),
    "optim.adam": Solution(
        adam, _seq_cases,
        wrong={"no bias correction": _adam_no_bias_correction}),
    "optim.onecycle_lr": Solution(
        onecycle_lr,
        lambda rng: [(0, 100, 1.0), (29, 100, 1.0), (30, 100, 1.0), (99, 100, 1.0),
                     (57, 100, 0.3), (10, 37, 0.1), (36, 37, 0.1),
                     (int(rng.integers(0, 500)), 500, 2.0)],
        wrong={"linear warm-up and decay": _onecycle_linear}),
    "optim.rosenbrock_grad": Solution(
        rosenbrock_grad,
        lambda rng: [np.array([1.0, 1.0]), np.array([-1.5, 2.0]), np.array([0.0, 0.0]),
                     rng.normal(size=2), rng.uniform(-2, 2, size=2), np.array([3.0, -4.0])],
        store_want=False,
        wrong={"the chain rule lost a factor 2": lambda xy: np.array(
                   [-2 * (1 - xy[0]) - 200 * xy[0] * (xy[1] - xy[0] ** 2), 200 * (xy[1] - xy[0] ** 2)]),
               "d/dy forgotten": lambda xy: np.array(
                   [-2 * (1 - xy[0]) - 400 * xy[0] * (xy[1] - xy[0] ** 2), 0.0])}),
    "optim.accuracy_gap_z": Solution(
        accuracy_gap_z, _gap_cases,
        wrong={"one accuracy's standard error for the difference": _gap_one_se,
               "standard errors added instead of variances": _gap_se_added,
               "divided by the variance, not the standard error": _gap_variance,
               "|z|: the sign lost": lambda k1, k2, n: abs(accuracy_gap_z(k1, k2, n))}),
}
