"""Exercises of the chapter "Automatic differentiation" (names ``autodiff.*``; the checks,
the stored cases are in ``nnbook/exercise_data/autodiff.*``)."""
import numpy as np

from ..exercises import register
from ._derivation import gradient_check

register(
    "autodiff.dag_grad",
    "Return the gradient [df/dx1, df/dx2] of f(x1, x2) = x2 e^x1 sqrt(x1 + x2 e^x1) "
    "(the thesis's DAG), e.g. by a reverse sweep over x3 ... x7.",
    rtol=1e-10,
)

register(
    "autodiff.newton_trace",
    "Newton's method for sqrt(a), as in the section: y_0 = a, y_{i+1} = (y_i + a / y_i) / 2. "
    "Let k be the number of updates the loop `while |y*y - a_traced| > 1e-12 * a_traced` "
    "makes when run at a_traced (0 if y_0 = a_traced already passes the test). Return "
    "(y_k, dy_k/da) for exactly k updates run at a: what the graph traced at a_traced and "
    "replayed at a (ad.replay) gives, differentiated through every recorded operation, the "
    "start y_0 = a included.",
    rtol=1e-10, atol=1e-14,
)

register(
    "autodiff.linear_vjp",
    "For the linear layer z = W x (W of shape (m, n), the thesis's convention) and a "
    "cotangent u of shape (m,), return (u^T dz/dx, u^T dz/dW): arrays of shapes (n,) and "
    "(m, n).",
    rtol=1e-12,
)

register(
    "autodiff.xent_grad",
    "Return the gradient of the cross-entropy -sum_c y_c log softmax(z)_c with respect to "
    "the logits z (shape (C,)), for a one-hot (or probability) vector y.",
    rtol=1e-10, atol=1e-14,
)

register(
    "autodiff.tanh_jacobian",
    "Return the Jacobian (n, n) of the elementwise layer z = tanh(x) at x (shape (n,)).",
    rtol=1e-10, atol=1e-14,
)

register(
    "autodiff.mlp_backprop",
    "For the mean softmax cross-entropy of z = relu(X W1 + b1) W2 + b2 against integer "
    "labels y, return (dW1, db1, dW2, db2), using ReLU'(0) = 0.",
    rtol=1e-9, atol=1e-12,
)


# --- a derivation, checked against finite differences ----------------------------------------
def standardize(x, eps):
    """z = (x - mean(x)) / sqrt(var(x) + eps) for a vector x (the population variance)."""
    d = x - x.mean()
    return d / np.sqrt((d * d).mean() + eps)


register(
    "autodiff.standardize_vjp",
    "Derive by hand the vector-Jacobian product of standardisation, "
    "z = (x - mean(x)) / sqrt(var(x) + eps) for x of shape (n,) (var: the mean of the "
    "squared deviations), and write standardize_vjp(x, u, eps) returning u^T dz/dx, shape "
    "(n,). Both the mean and the variance depend on x. The check compares your formula with "
    "finite differences of u . z(x).",
    compare=gradient_check(lambda x, u, eps: float(u @ standardize(x, eps)), wrt=0,
                           of="u . standardize(x, eps)"),
)
