"""Exercises of the chapter "Automatic differentiation" (names ``autodiff.*``)."""
import numpy as np

from .. import functional as F
from ..exercises import register


# --- autodiff.dag_grad ---------------------------------------------------------------------
def _dag_grad(x1, x2):
    x3 = np.exp(x1)
    x4 = x2 * x3
    x5 = x1 + x4
    x6 = np.sqrt(x5)
    # reverse sweep: adjoints of x7, x6, x5, x4 (two children: x5 and x7), x3, x2, x1
    a6 = x4
    a5 = a6 / (2 * x6)
    a4 = a5 * 1.0 + x6                  # through x5 and through x7
    a3 = a4 * x2
    a2 = a4 * x3
    a1 = a5 * 1.0 + a3 * x3             # through x5 and through x3
    return np.array([a1, a2])


def _dag_wrong(x1, x2):                 # forgets the path x4 -> x5
    x3 = np.exp(x1)
    x4 = x2 * x3
    x6 = np.sqrt(x1 + x4)
    a5 = x4 / (2 * x6)
    a4 = x6
    return np.array([a5 + a4 * x2 * x3, a4 * x3])


register(
    "autodiff.dag_grad",
    "Return the gradient [df/dx1, df/dx2] of f(x1, x2) = x2 e^x1 sqrt(x1 + x2 e^x1) "
    "(the thesis's DAG), e.g. by a reverse sweep over x3 ... x7.",
    reference=_dag_grad,
    cases=lambda rng: [(1.0, 2.0), (0.0, 1.0), (-0.5, 3.0)]
    + [tuple(rng.uniform(0.05, 2.0, size=2)) for _ in range(4)],
    wrong=_dag_wrong,
    rtol=1e-10,
)


# --- autodiff.linear_vjp -------------------------------------------------------------------
register(
    "autodiff.linear_vjp",
    "For the linear layer z = W x (W of shape (m, n), the thesis's convention) and a "
    "cotangent u of shape (m,), return (u^T dz/dx, u^T dz/dW): arrays of shapes (n,) and "
    "(m, n).",
    reference=lambda W, x, u: (u @ W, np.outer(u, x)),
    cases=lambda rng: [(rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=3)),
                       (rng.normal(size=(2, 2)), rng.normal(size=2), rng.normal(size=2)),
                       (rng.normal(size=(1, 5)), rng.normal(size=5), np.array([2.0])),
                       (rng.normal(size=(4, 1)), np.array([0.5]), rng.normal(size=4))],
    wrong=lambda W, x, u: (u @ W, np.outer(x, u)),              # (n, m): transposed
    rtol=1e-12,
)


# --- autodiff.xent_grad --------------------------------------------------------------------
def _xent_grad(z, y):
    return F.softmax(z[None, :])[0] - y


register(
    "autodiff.xent_grad",
    "Return the gradient of the cross-entropy -sum_c y_c log softmax(z)_c with respect to "
    "the logits z (shape (C,)), for a one-hot (or probability) vector y.",
    reference=_xent_grad,
    cases=lambda rng: [(rng.normal(size=4), np.eye(4)[1]), (np.array([500.0, -500.0]),
                       np.array([0.0, 1.0])), (rng.normal(size=3), np.array([0.2, 0.3, 0.5])),
                       (np.zeros(5), np.eye(5)[4])],
    wrong=lambda z, y: -y / F.softmax(z[None, :])[0],     # the gradient w.r.t. p, not z
    rtol=1e-10, atol=1e-14,
)


# --- autodiff.tanh_jacobian ----------------------------------------------------------------
register(
    "autodiff.tanh_jacobian",
    "Return the Jacobian (n, n) of the elementwise layer z = tanh(x) at x (shape (n,)).",
    reference=lambda x: np.diag(1 - np.tanh(x) ** 2),
    cases=lambda rng: [rng.normal(size=4), np.array([0.0]), np.array([30.0, -30.0, 0.1]),
                       rng.normal(size=6) * 3],
    wrong=lambda x: np.diag(1 - x ** 2),                 # derivative taken at the input
    rtol=1e-10, atol=1e-14,
)


# --- autodiff.mlp_backprop -----------------------------------------------------------------
def _mlp_backprop(X, y, W1, b1, W2, b2, relu_at_zero=0.0):
    N = X.shape[0]
    a1 = X @ W1 + b1
    h = np.maximum(a1, 0)
    z = h @ W2 + b2
    d = F.softmax(z)
    d[np.arange(N), y] -= 1
    d /= N                              # u at the logits: (p - Y) / N
    dW2, db2 = h.T @ d, d.sum(axis=0)
    dh = d @ W2.T
    da1 = dh * np.where(a1 > 0, 1.0, np.where(a1 == 0, relu_at_zero, 0.0))   # ReLU'(0) = 0
    return X.T @ da1, da1.sum(axis=0), dW2, db2


def _mlp_cases(rng):
    def case(N, D, H, K, zero_rows=0):
        X = rng.normal(size=(N, D))
        X[:zero_rows] = 0.0             # exact zeros: pre-activations equal the bias
        return (X, rng.integers(0, K, size=N), rng.normal(size=(D, H)),
                np.zeros(H) if zero_rows else rng.normal(size=H) * 0.1,
                rng.normal(size=(H, K)), rng.normal(size=K) * 0.1)
    return [case(5, 4, 6, 3), case(1, 2, 3, 2), case(8, 3, 5, 4, zero_rows=3)]


register(
    "autodiff.mlp_backprop",
    "For the mean softmax cross-entropy of z = relu(X W1 + b1) W2 + b2 against integer "
    "labels y, return (dW1, db1, dW2, db2), using ReLU'(0) = 0.",
    reference=_mlp_backprop,
    cases=_mlp_cases,
    wrong=lambda X, y, W1, b1, W2, b2: _mlp_backprop(X, y, W1, b1, W2, b2, relu_at_zero=1.0),
    # the mask (a1 >= 0) takes ReLU'(0) = 1: wrong only where a pre-activation is exactly 0
    rtol=1e-9, atol=1e-12,
)
