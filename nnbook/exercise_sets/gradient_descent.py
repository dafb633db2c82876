"""Exercises of the chapter "Gradient descent and its convergence" (names ``gd.*``; the
checks, the stored cases are in ``nnbook/exercise_data/gradient_descent.*``)."""
import numpy as np

from ..exercises import register
from ._derivation import gradient_check

register(
    "gd.gd_quadratic",
    "Run k steps of gradient descent x <- x - eta * grad f(x) on f(x) = 1/2 x^T A x - b^T x "
    "from x0 and return x_k (do not modify x0).",
    rtol=1e-9, atol=1e-12,
)

register(
    "gd.lipschitz_logistic",
    "Return the Lipschitz constant L = lambda_max(X^T X) / (4N) of the gradient of the mean "
    "logistic loss (1/N) sum_i log(1 + exp(-y_i w.x_i)) for a data matrix X of shape (N, d).",
    rtol=1e-9,
)

register(
    "gd.relu_subgradient",
    "Return the subgradient of ReLU used by backpropagation, elementwise: 1 for x > 0, "
    "0 for x < 0 and the chosen value c in [0, 1] at x == 0 (also at -0.0).",
)

register(
    "gd.cross_entropy",
    "Return the mean cross-entropy -(1/N) sum_i sum_c Y[i,c] log softmax(Z[i])_c of logits "
    "Z (N, C) against one-hot (or probability) rows Y (N, C), stable for large |Z|.",
    rtol=1e-9, atol=1e-12,
)

register(
    "gd.saddle_escape_steps",
    "Near a saddle, gradient descent multiplies the offset along a direction of curvature "
    "-lam (lam > 0) by (1 + eta*lam) per step. Return the number of steps k after which an "
    "offset delta0 first reaches at least delta1 (0 if delta0 >= delta1).",
)


# --- a derivation, checked against finite differences ----------------------------------------
def logcosh_loss(w, X, y, lam):
    """(1/N) sum_i log cosh(x_i . w - y_i) + lam/2 |w|^2, without overflow for large residuals."""
    r = np.abs(X @ w - y)
    return float(np.mean(r + np.log1p(np.exp(-2.0 * r)) - np.log(2.0)) + 0.5 * lam * (w @ w))


register(
    "gd.logcosh_grad",
    "Derive the gradient of the robust regression loss f(w) = (1/N) sum_i log cosh(x_i . w - "
    "y_i) + lam/2 |w|^2 (X of shape (N, d), y of shape (N,)) and write logcosh_grad(w, X, y, "
    "lam) returning it, shape (d,). It must stay finite when some residuals x_i . w - y_i are "
    "in the thousands (cosh overflows there). The check compares your formula with finite "
    "differences of f.",
    compare=gradient_check(logcosh_loss, wrt=0, of="the log-cosh loss f(w)"),
)


# --- the rates of gradient descent -------------------------------------------------------------
register(
    "gd.linear_rate_steps",
    "For an L-smooth, mu-strongly convex f, gradient descent with step 1/L guarantees "
    "f(x_k) - f* <= (1 - mu/L)^k (f(x_0) - f*). Return the smallest integer k >= 0 for which "
    "this bound, started from the gap gap0 = f(x_0) - f*, is at most eps (0 if gap0 <= eps).",
)

register(
    "gd.sigmoid_loss_lipschitz",
    "Return the Lipschitz constant L = max|sigma''| lambda_max(X^T X) / N + lam of the gradient "
    "of the sigmoid loss f(w) = (1/N) sum_i sigma(-s_i x_i . w) + lam/2 |w|^2 (labels "
    "s_i = +-1) for a data matrix X of shape (N, d), where sigma'' = sigma (1 - sigma) "
    "(1 - 2 sigma) is the sigmoid's second derivative.",
    rtol=1e-9,
)
