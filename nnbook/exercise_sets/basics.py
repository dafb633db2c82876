"""Exercises of the chapter "Machine-learning basics"."""
import numpy as np

from .. import functional as F
from ..exercises import register


def _logit_cases(rng):
    return [rng.normal(size=(4, 5)), rng.normal(size=(1, 3)) * 50,
            np.array([[1000.0, 0.0, -1000.0]]), np.zeros((2, 4)),
            np.array([[-1e4, 1e4]])]


register(
    "basics.softmax",
    "Write softmax(z) for a batch z of shape (N, K), row by row, stable for large |z|.",
    reference=F.softmax,
    cases=_logit_cases,
    wrong=lambda z: np.exp(z) / np.exp(z).sum(),          # normalises over the whole batch
)

register(
    "basics.sigmoid_grad",
    "Write the derivative of the logistic sigmoid, elementwise, for any real x.",
    reference=F.sigmoid_grad,
    cases=lambda rng: [rng.normal(size=7) * 3, np.array([0.0, 40.0, -40.0, 1e-8])],
    wrong=lambda x: F.sigmoid(x) / (1 - F.sigmoid(x)),    # thesis eq. 3.13 erratum
    rtol=1e-6, atol=1e-12,
)


# --- basics.relu_grad ----------------------------------------------------------------------
register(
    "basics.relu_grad",
    "Write the derivative of ReLU, elementwise, as an array of the input's shape, taking "
    "ReLU'(0) = 0 (nnbook's convention).",
    reference=F.relu_grad,
    cases=lambda rng: [rng.normal(size=9) * 3, np.array([0.0, -0.0, 1e-300, -1e-300, 5.0]),
                       rng.normal(size=(3, 4)), np.zeros((2, 2))],
    wrong=lambda x: (x >= 0).astype(x.dtype),             # takes ReLU'(0) = 1
)


# --- basics.one_hot ------------------------------------------------------------------------
def _one_hot(y, K):
    out = np.zeros((len(y), K))
    out[np.arange(len(y)), y] = 1.0
    return out


register(
    "basics.one_hot",
    "Write one_hot(y, K): integer labels y of shape (N,) in 0..K-1 -> an (N, K) float array "
    "with a single 1 per row, in the column of the label (K may exceed max(y) + 1).",
    reference=_one_hot,
    cases=lambda rng: [(rng.integers(0, 4, size=10), 4), (np.array([2]), 3),
                       (np.array([0, 0, 0]), 5), (np.array([1, 0, 1]), 2),
                       (np.array([], dtype=np.int64), 3)],
    wrong=lambda y, K: np.eye(int(y.max()) + 1)[y],       # ignores K: too few columns
)


# --- basics.cross_entropy ------------------------------------------------------------------
def _cross_entropy(P, y):
    return float(-np.mean(np.log(P[np.arange(len(y)), y])))


def _probability_cases(rng):
    out = []
    for n, k in ((5, 3), (1, 10), (8, 2)):
        P = rng.dirichlet(np.ones(k), size=n)
        out.append((P, rng.integers(0, k, size=n)))
    out.append((np.array([[0.04, 0.7, 0.26]]), np.array([2])))          # thesis eq. 2.7
    out.append((np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1])))  # perfect: E = 0
    out.append((np.array([[1 - 1e-12, 1e-12]]), np.array([1])))         # very wrong
    return out


register(
    "basics.cross_entropy",
    "Write the mean cross-entropy of predicted probabilities P (N, K), rows summing to 1, "
    "against integer labels y (N,): -(1/N) sum_n ln P[n, y_n]. Return a float. (Some "
    "probabilities of the wrong classes may be exactly 0.)",
    reference=_cross_entropy,
    cases=_probability_cases,
    wrong=lambda P, y: float(-np.mean(np.log10(P[np.arange(len(y)), y]))),   # thesis eq. 2.8
    rtol=1e-10,
)


# --- basics.gradient_descent ---------------------------------------------------------------
def _gd_quadratic(A, b, x0, lr, steps):
    x = x0.copy()
    for _ in range(steps):
        x = x - lr * (A @ x - b)
    return x


def _quadratic_cases(rng):
    out = []
    for d, lr, steps in ((3, 0.1, 20), (1, 0.5, 5), (4, 0.05, 50)):
        M = rng.normal(size=(d, d))
        out.append((M @ M.T + np.eye(d), rng.normal(size=d), rng.normal(size=d), lr, steps))
    out.append((np.diag([1.0, 10.0]), np.zeros(2), np.array([1.0, 1.0]), 0.25, 10))  # > 2/L
    out.append((np.eye(2), np.ones(2), np.array([3.0, -1.0]), 0.3, 0))     # no step at all
    return out


register(
    "basics.gradient_descent",
    "Minimise f(x) = x^T A x / 2 - b^T x (A symmetric) by gradient descent: starting at x0, "
    "take `steps` steps x <- x - lr * grad f(x) and return the last x (a new array: do not "
    "change x0).",
    reference=_gd_quadratic,
    cases=_quadratic_cases,
    wrong=lambda A, b, x0, lr, steps: _gd_quadratic(A, -b, x0, lr, steps),  # grad = A x + b
    rtol=1e-9,
)
