"""Exercises of the chapter "Gradient descent and its convergence" (names ``gd.*``)."""
import math

import numpy as np

from .. import functional as F
from ..exercises import register


# --- gd.gd_quadratic -----------------------------------------------------------------------
def _gd_quadratic(A, b, x0, eta, k):
    x = x0.copy()
    for _ in range(k):
        x = x - eta * (A @ x - b)
    return x


def _spd(rng, n, lo=0.5, hi=4.0):
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return Q @ np.diag(rng.uniform(lo, hi, size=n)) @ Q.T


def _quad_cases(rng):
    return [(_spd(rng, 3), rng.normal(size=3), rng.normal(size=3), 0.1, 25),
            (_spd(rng, 5), rng.normal(size=5), np.zeros(5), 0.2, 10),
            (np.array([[2.0]]), np.array([1.0]), np.array([3.0]), 0.5, 1),     # one exact step
            (_spd(rng, 2), rng.normal(size=2), rng.normal(size=2), 0.3, 0),     # k = 0
            (np.diag([1.0, 10.0]), np.zeros(2), np.ones(2), 0.25, 6)]           # eta > 2/L


register(
    "gd.gd_quadratic",
    "Run k steps of gradient descent x <- x - eta * grad f(x) on f(x) = 1/2 x^T A x - b^T x "
    "from x0 and return x_k (do not modify x0).",
    reference=_gd_quadratic,
    cases=_quad_cases,
    wrong=lambda A, b, x0, eta, k: _gd_quadratic(A, -b, x0, eta, k),   # sign of b flipped
    rtol=1e-9, atol=1e-12,
)


# --- gd.lipschitz_logistic -----------------------------------------------------------------
def _lipschitz_logistic(X):
    N = X.shape[0]
    return float(np.linalg.eigvalsh(X.T @ X / N).max() / 4)


register(
    "gd.lipschitz_logistic",
    "Return the Lipschitz constant L = lambda_max(X^T X) / (4N) of the gradient of the mean "
    "logistic loss (1/N) sum_i log(1 + exp(-y_i w.x_i)) for a data matrix X of shape (N, d).",
    reference=_lipschitz_logistic,
    cases=lambda rng: [rng.normal(size=(50, 4)), rng.normal(size=(1, 3)),
                       np.c_[np.ones(20), rng.normal(size=(20, 2))], np.eye(3) * 2.0],
    wrong=lambda X: float(np.linalg.eigvalsh(X.T @ X).max() / X.shape[0]),  # forgot the 1/4
    rtol=1e-9,
)


# --- gd.relu_subgradient -------------------------------------------------------------------
def _relu_subgradient(x, c):
    return np.where(x > 0, 1.0, np.where(x == 0, c, 0.0))


register(
    "gd.relu_subgradient",
    "Return the subgradient of ReLU used by backpropagation, elementwise: 1 for x > 0, "
    "0 for x < 0 and the chosen value c in [0, 1] at x == 0 (also at -0.0).",
    reference=_relu_subgradient,
    cases=lambda rng: [(rng.normal(size=7), 0.0), (np.array([-1.0, 0.0, -0.0, 2.0]), 0.5),
                       (np.zeros((2, 3)), 1.0), (np.array([1e-300, -1e-300, 0.0]), 0.0)],
    wrong=lambda x, c: (x >= 0).astype(float),          # uses 1 at zero whatever c is
)


# --- gd.cross_entropy ----------------------------------------------------------------------
def _cross_entropy(Z, Y):
    return float(-(Y * F.log_softmax(Z)).sum() / Z.shape[0])


def _xent_cases(rng):
    Z = rng.normal(size=(6, 4)) * 2
    Y = np.eye(4)[rng.integers(0, 4, size=6)]
    return [(Z, Y), (np.array([[1000.0, 0.0, -1000.0]]), np.array([[0.0, 1.0, 0.0]])),
            (rng.normal(size=(1, 2)), np.array([[1.0, 0.0]])),
            (rng.normal(size=(3, 5)), rng.dirichlet(np.ones(5), size=3))]


register(
    "gd.cross_entropy",
    "Return the mean cross-entropy -(1/N) sum_i sum_c Y[i,c] log softmax(Z[i])_c of logits "
    "Z (N, C) against one-hot (or probability) rows Y (N, C), stable for large |Z|.",
    reference=_cross_entropy,
    cases=_xent_cases,
    wrong=lambda Z, Y: float(-(Y * F.log_softmax(Y)).sum() / Z.shape[0]),  # thesis 2 §3.3
    rtol=1e-9, atol=1e-12,
)


# --- gd.saddle_escape_steps ----------------------------------------------------------------
def _escape_steps(delta0, delta1, eta, lam):
    k, d = 0, delta0
    while d < delta1:
        d *= 1 + eta * lam
        k += 1
    return k


register(
    "gd.saddle_escape_steps",
    "Near a saddle, gradient descent multiplies the offset along a direction of curvature "
    "-lam (lam > 0) by (1 + eta*lam) per step. Return the number of steps k after which an "
    "offset delta0 first reaches at least delta1 (0 if delta0 >= delta1).",
    reference=_escape_steps,
    cases=lambda rng: [(1e-8, 0.5, 0.1, 1.0), (1e-3, 1.0, 0.5, 0.6), (0.2, 0.1, 0.1, 1.0),
                       (1e-12, 1.0, 0.3, 2.0), (float(rng.uniform(1e-6, 1e-4)), 1.0, 0.25, 1.5)],
    wrong=lambda d0, d1, eta, lam: max(0, math.ceil(math.log(d1 / d0) / (eta * lam))),
)
