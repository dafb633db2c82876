"""Exercises of the chapter "Optimizers" (``optim.*``; the checks, the stored cases are in
``nnbook/exercise_data/optimizers.*``).

Each optimizer exercise applies a fixed sequence of gradients ``grads`` (shape
(T, D)) to a starting point ``p0`` (shape (D,)) and returns the final point,
following PyTorch's update rule (the one ``nnbook.optim`` implements).
"""
from ..exercises import register
from ._derivation import gradient_check

register(
    "optim.momentum",
    "SGD with momentum 0.9 and lr 0.1, PyTorch's form: b = g at the first step, then "
    "b = 0.9 b + g; p = p - 0.1 b. Return the final p.",
)

register(
    "optim.nesterov",
    "SGD with Nesterov momentum 0.9 and lr 0.1, PyTorch's form (b as in optim.momentum, "
    "then p = p - 0.1 (g + 0.9 b)). Return the final p.",
)

register(
    "optim.rmsprop",
    "RMSprop with lr 0.01, alpha 0.99, eps 1e-8 (v starts at 0; eps outside the square "
    "root). Return the final p.",
    rtol=1e-7, atol=1e-10,
)

register(
    "optim.adam",
    "Adam with lr 1e-3, betas (0.9, 0.999), eps 1e-8, bias-corrected moments "
    "(steps counted from t = 1). Return the final p.",
    rtol=1e-7, atol=1e-10,
)

register(
    "optim.onecycle_lr",
    "The one-cycle rate of step t (PyTorch's OneCycleLR defaults: pct_start 0.3, cosine "
    "annealing, div_factor 25, final_div_factor 1e4, two phases; phase 1 ends at step "
    "0.3*total_steps - 1, phase 2 at total_steps - 1).",
    rtol=1e-9, atol=1e-15,
)


def rosenbrock(xy):
    """Rosenbrock's function (1 - x)^2 + 100 (y - x^2)^2 at the point xy = (x, y)."""
    x, y = xy
    return float((1 - x) ** 2 + 100 * (y - x * x) ** 2)


register(
    "optim.rosenbrock_grad",
    "Derive the gradient of Rosenbrock's function f(x, y) = (1 - x)^2 + 100 (y - x^2)^2 "
    "and return it at the point xy = (x, y), as an array of shape (2,). The check "
    "compares your formula with finite differences of f.",
    compare=gradient_check(rosenbrock, wrt=0, of="Rosenbrock's function"),
)

register(
    "optim.accuracy_gap_z",
    "Two networks are tested on the same n digits and get k1 and k2 of them right. Estimate "
    "each accuracy by p = k/n, and its standard error by the standard deviation of that "
    "binomial estimate with p in place of the true accuracy (about 1.3 points at p = 0.8, "
    "n = 1000). Treating the two estimates as independent, so that the variance of p1 - p2 "
    "is the sum of their variances, return z = (p1 - p2) / SE(p1 - p2) as a float, with "
    "its sign (the cases never have k1 = k2 = 0 or k1 = k2 = n).",
    rtol=1e-9, atol=1e-12,
)
