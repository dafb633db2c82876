"""Reference answers of the exercises of "Gradient descent and its convergence" (``gd.*``)."""
import math

import numpy as np

from nnbook.exercises.build import Solution


def gd_quadratic(A, b, x0, eta, k):
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


def lipschitz_logistic(X):
    return float(np.linalg.eigvalsh(X.T @ X).max() / (4 * X.shape[0]))


def relu_subgradient(x, c):
    return np.where(x > 0, 1.0, np.where(x == 0, c, 0.0))


def cross_entropy(Z, Y):
    S = Z - Z.max(axis=1, keepdims=True)
    logp = S - np.log(np.exp(S).sum(axis=1, keepdims=True))
    return float(-(Y * logp).sum() / Z.shape[0])


def _log_softmax(Z):
    S = Z - Z.max(axis=1, keepdims=True)
    return S - np.log(np.exp(S).sum(axis=1, keepdims=True))


def _xent_cases(rng):
    Z = rng.normal(size=(6, 4)) * 2
    Y = np.eye(4)[rng.integers(0, 4, size=6)]
    return [(Z, Y), (np.array([[1000.0, 0.0, -1000.0]]), np.array([[0.0, 1.0, 0.0]])),
            (rng.normal(size=(1, 2)), np.array([[1.0, 0.0]])),
            (rng.normal(size=(3, 5)), rng.dirichlet(np.ones(5), size=3)),
            (np.array([[-1000.0, 1000.0], [0.0, 0.0]]), np.array([[0.0, 1.0], [0.5, 0.5]]))]


def saddle_escape_steps(delta0, delta1, eta, lam):
    k, d = 0, delta0
    while d < delta1:            # about log(delta1/delta0) / log(1 + eta*lam) steps
        d *= 1 + eta * lam
        k += 1
    return k


def logcosh_grad(w, X, y, lam):
    return X.T @ np.tanh(X @ w - y) / X.shape[0] + lam * w     # (log cosh)' = tanh


def _logcosh_cases(rng):
    X1, X2, X3 = rng.normal(size=(20, 3)), rng.normal(size=(1, 2)), rng.normal(size=(50, 5))
    X4 = rng.normal(size=(8, 4)) * 300.0                   # residuals in the thousands
    X5 = rng.normal(size=(10, 3))
    return [(rng.normal(size=3), X1, rng.normal(size=20), 0.0),
            (rng.normal(size=2), X2, rng.normal(size=1), 0.1),       # one sample
            (np.zeros(5), X3, rng.normal(size=50) * 3, 0.0),          # at w = 0
            (rng.normal(size=4) * 3, X4, rng.normal(size=8), 0.01),
            (rng.normal(size=3), X5, X5 @ np.array([1.0, -2.0, 0.5]), 2.0)]   # a strong ridge


def _logcosh_sign(w, X, y, lam):                        # the residual's sign flipped
    return X.T @ np.tanh(y - X @ w) / X.shape[0] + lam * w


def _logcosh_no_mean(w, X, y, lam):                     # the sum, not the mean
    return X.T @ np.tanh(X @ w - y) + lam * w


def _logcosh_overflows(w, X, y, lam):                   # sinh / cosh written out: inf / inf
    r = X @ w - y
    with np.errstate(all="ignore"):
        return X.T @ (np.sinh(r) / np.cosh(r)) / X.shape[0] + lam * w


def linear_rate_steps(gap0, mu, L, eps):
    q = 1.0 - mu / L
    if gap0 <= eps:
        return 0
    if q == 0.0:                 # mu = L: one step reaches the minimum
        return 1
    k = max(0, math.ceil(math.log(eps / gap0) / math.log(q)))
    while k > 0 and gap0 * q ** (k - 1) <= eps:      # guard the rounding of the logarithms
        k -= 1
    while gap0 * q ** k > eps:
        k += 1
    return k


def _linear_rate_cases(rng):
    return [(0.63, 1e-3, 3.32, 1e-6), (1.0, 1.0, 2.0, 1e-3), (5.0, 0.1, 0.1, 1e-9),
            (1e-8, 0.2, 1.0, 1e-6),                                   # already below eps
            (float(rng.uniform(1, 10)), float(rng.uniform(0.01, 0.1)), 1.0, 1e-4),
            (1.0, 0.5, 1.0, 0.25)]                                    # an exact power of q


def sigmoid_loss_lipschitz(X, lam):
    return float(math.sqrt(3) / 18 * np.linalg.eigvalsh(X.T @ X).max() / X.shape[0] + lam)


SOLUTIONS = {
    "gd.gd_quadratic": Solution(
        gd_quadratic, _quad_cases,
        wrong={"the sign of b flipped": lambda A, b, x0, eta, k: gd_quadratic(A, -b, x0, eta, k)}),
    "gd.lipschitz_logistic": Solution(
        lipschitz_logistic,
        lambda rng: [rng.normal(size=(50, 4)), rng.normal(size=(1, 3)),
                     np.c_[np.ones(20), rng.normal(size=(20, 2))], np.eye(3) * 2.0,
                     rng.normal(size=(5, 8))],                              # more features than samples
        wrong={"forgot the 1/4": lambda X: float(np.linalg.eigvalsh(X.T @ X).max() / X.shape[0]),
               "no 1/N": lambda X: float(np.linalg.eigvalsh(X.T @ X).max() / 4)}),
    "gd.relu_subgradient": Solution(
        relu_subgradient,
        lambda rng: [(rng.normal(size=7), 0.0), (np.array([-1.0, 0.0, -0.0, 2.0]), 0.5),
                     (np.zeros((2, 3)), 1.0), (np.array([1e-300, -1e-300, 0.0]), 0.0),
                     (rng.normal(size=(3, 2)), 0.25)],
        wrong={"uses 1 at zero whatever c is": lambda x, c: (x >= 0).astype(float)}),
    "gd.cross_entropy": Solution(
        cross_entropy, _xent_cases,
        # the second thesis's slip (§3.3): the log-softmax of the targets
        wrong={"log softmax of Y, not of Z": lambda Z, Y: float(-(Y * _log_softmax(Y)).sum() / Z.shape[0])}),
    "gd.saddle_escape_steps": Solution(
        saddle_escape_steps,
        lambda rng: [(1e-8, 0.5, 0.1, 1.0), (1e-3, 1.0, 0.5, 0.6), (0.2, 0.1, 0.1, 1.0),
                     (1e-12, 1.0, 0.3, 2.0), (float(rng.uniform(1e-6, 1e-4)), 1.0, 0.25, 1.5)],
        wrong={"log(1 + eta lam) approximated by eta lam": lambda d0, d1, eta, lam:
                   max(0, math.ceil(math.log(d1 / d0) / (eta * lam)))}),
    "gd.logcosh_grad": Solution(
        logcosh_grad, _logcosh_cases, store_want=False,
        wrong={"the residual's sign flipped": _logcosh_sign,
               "the sum over the samples, not the mean": _logcosh_no_mean,
               "sinh / cosh overflows for large residuals": _logcosh_overflows}),
    "gd.linear_rate_steps": Solution(
        linear_rate_steps, _linear_rate_cases,
        wrong={"log(1 - mu/L) approximated by -mu/L": lambda gap0, mu, L, eps:
                   max(0, math.ceil(L / mu * math.log(gap0 / eps))) if mu < L else 1,
               "one step too many": lambda gap0, mu, L, eps:
                   linear_rate_steps(gap0, mu, L, eps) + 1}),
    "gd.sigmoid_loss_lipschitz": Solution(
        sigmoid_loss_lipschitz,
        lambda rng: [(rng.normal(size=(50, 4)), 0.0), (rng.normal(size=(1, 3)), 0.1),
                     (np.c_[np.ones(20), rng.normal(size=(20, 2))], 1e-3),
                     (np.eye(3) * 2.0, 0.5), (rng.normal(size=(5, 8)), 2.0)],
        wrong={"the logistic loss's 1/4 instead of max |sigma''|": lambda X, lam:
                   float(np.linalg.eigvalsh(X.T @ X).max() / (4 * X.shape[0]) + lam),
               "without the ridge term": lambda X, lam:
                   float(math.sqrt(3) / 18 * np.linalg.eigvalsh(X.T @ X).max() / X.shape[0])}),
}
