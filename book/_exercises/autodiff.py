"""Reference answers of the exercises of "Automatic differentiation" (``autodiff.*``)."""
import numpy as np

from nnbook.exercises.build import Solution


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def dag_grad(x1, x2):
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


def _newton_updates(a_traced):
    """How many updates the section's loop makes at a_traced (the length of its trace)."""
    y, k = a_traced, 0
    while abs(y * y - a_traced) > 1e-12 * a_traced:
        y = 0.5 * (y + a_traced / y)
        k += 1
    return k


def newton_trace(a_traced, a, extra=0, y0_constant=False):
    ys = [a]                                 # the trace replayed at a: y_0 = a, k updates
    for _ in range(_newton_updates(a_traced) + extra):
        ys.append(0.5 * (ys[-1] + a / ys[-1]))
    g_y, g_a = 1.0, 0.0                      # adjoints of y_k and of a
    for y in ys[-2::-1]:                     # y_{i+1} = (y_i + a / y_i) / 2, backwards
        g_a += g_y * 0.5 / y                 # through the a in a / y_i
        g_y *= 0.5 * (1.0 - a / (y * y))     # through y_i
    return ys[-1], g_a + (0.0 if y0_constant else g_y)    # y_0 = a: the last path


def _newton_margin(a_traced):
    """|y*y - a| / (1e-12 a) before the last update of the loop (inf if none): the checks use
    loops that end well clear of the threshold, so that the count is not a rounding matter."""
    k, y = _newton_updates(a_traced), a_traced
    for _ in range(k - 1):
        y = 0.5 * (y + a_traced / y)
    return abs(y * y - a_traced) / (1e-12 * a_traced) if k else np.inf


def _newton_cases(rng):
    out = [(30.0, 30.0),                     # traced where it runs: the dynamic graph's answer
           (30.0, 25.0), (30.0, 1e6),        # the section: right for 25, far off for 10^6
           (1.0, 1.0), (1.0, 4.0),           # no update at all: the trace is y = a, dy/da = 1
           (1e6, 2.0),                       # more updates than needed: harmless
           (0.01, 100.0), (1e-6, 1e-6)]
    while len(out) < 11:
        a_traced, a = (float(v) for v in 10.0 ** rng.uniform(-3, 6, size=2))
        if _newton_margin(a_traced) > 10:
            out.append((a_traced, a))
    return out


def linear_vjp(W, x, u):
    return u @ W, np.outer(u, x)


def xent_grad(z, y):
    return _softmax(z) - y


def tanh_jacobian(x):
    return np.diag(1 - np.tanh(x) ** 2)


def mlp_backprop(X, y, W1, b1, W2, b2, relu_at_zero=0.0):
    N = X.shape[0]
    a1 = X @ W1 + b1
    h = np.maximum(a1, 0)
    z = h @ W2 + b2
    d = _softmax(z)
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
    return [case(5, 4, 6, 3), case(1, 2, 3, 2), case(8, 3, 5, 4, zero_rows=3),
            case(6, 1, 1, 2), case(10, 5, 8, 6, zero_rows=1)]


def standardize_vjp(x, u, eps):
    n = x.size
    d = x - x.mean()
    s = np.sqrt((d * d).mean() + eps)
    z = d / s
    return (u - u.mean() - z * (u @ z) / n) / s


def _standardize_cases(rng):
    return [(rng.normal(size=5), rng.normal(size=5), 1e-5),
            (rng.normal(size=2) * 10, rng.normal(size=2), 0.0),              # two entries
            (rng.normal(size=8) + 100.0, rng.normal(size=8), 1e-5),           # a large mean
            (np.array([1.0, 1.0, 1.0, 1.0001]), rng.normal(size=4), 1e-3),    # nearly constant
            (rng.normal(size=6), np.ones(6), 1e-5),                           # u = 1: the answer is 0
            (rng.normal(size=7) * 0.01, rng.normal(size=7), 0.5)]             # eps dominates


def _standardize_constant_stats(x, u, eps):     # mean and variance treated as constants
    d = x - x.mean()
    return u / np.sqrt((d * d).mean() + eps)


def _standardize_mean_only(x, u, eps):          # the variance treated as a constant
    d = x - x.mean()
    return (u - u.mean()) / np.sqrt((d * d).mean() + eps)


SOLUTIONS = {
    "autodiff.dag_grad": Solution(
        dag_grad,
        lambda rng: [(1.0, 2.0), (0.0, 1.0), (-0.5, 3.0)]
        + [tuple(float(v) for v in rng.uniform(0.05, 2.0, size=2)) for _ in range(4)],
        wrong={"forgets the path x4 -> x5": _dag_wrong}),
    "autodiff.newton_trace": Solution(
        newton_trace, _newton_cases,
        wrong={"1/(2 sqrt a), the derivative of sqrt, not of what ran":
                   lambda a_traced, a: (newton_trace(a_traced, a)[0], 0.5 / np.sqrt(a)),
               "runs the loop's own test at a (a fresh, dynamic graph)":
                   lambda a_traced, a: newton_trace(a, a),
               "y_0 = a treated as a constant":
                   lambda a_traced, a: newton_trace(a_traced, a, y0_constant=True),
               "one update too many": lambda a_traced, a: newton_trace(a_traced, a, extra=1)}),
    "autodiff.linear_vjp": Solution(
        linear_vjp,
        lambda rng: [(rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=3)),
                     (rng.normal(size=(2, 2)), rng.normal(size=2), rng.normal(size=2)),
                     (rng.normal(size=(1, 5)), rng.normal(size=5), np.array([2.0])),
                     (rng.normal(size=(4, 1)), np.array([0.5]), rng.normal(size=4)),
                     (rng.normal(size=(3, 3)), np.zeros(3), rng.normal(size=3))],
        wrong={"dz/dW transposed: (n, m)": lambda W, x, u: (u @ W, np.outer(x, u))}),
    "autodiff.xent_grad": Solution(
        xent_grad,
        lambda rng: [(rng.normal(size=4), np.eye(4)[1]),
                     (np.array([500.0, -500.0]), np.array([0.0, 1.0])),
                     (rng.normal(size=3), np.array([0.2, 0.3, 0.5])),
                     (np.zeros(5), np.eye(5)[4]),
                     (np.array([1e4, 1e4 - 1.0, 0.0]), np.eye(3)[0])],
        wrong={"the gradient with respect to p, not z": lambda z, y: -y / _softmax(z)}),
    "autodiff.tanh_jacobian": Solution(
        tanh_jacobian,
        lambda rng: [rng.normal(size=4), np.array([0.0]), np.array([30.0, -30.0, 0.1]),
                     rng.normal(size=6) * 3, np.array([-1.0, 1.0])],
        wrong={"the derivative taken at the input": lambda x: np.diag(1 - x ** 2),
               "the vector of derivatives, not the matrix": lambda x: 1 - np.tanh(x) ** 2}),
    "autodiff.mlp_backprop": Solution(
        mlp_backprop, _mlp_cases,
        # the mask (a1 >= 0) takes ReLU'(0) = 1: wrong only where a pre-activation is exactly 0
        wrong={"takes ReLU'(0) = 1": lambda X, y, W1, b1, W2, b2:
                   mlp_backprop(X, y, W1, b1, W2, b2, relu_at_zero=1.0)}),
    "autodiff.standardize_vjp": Solution(
        standardize_vjp, _standardize_cases, store_want=False,
        wrong={"mean and variance treated as constants": _standardize_constant_stats,
               "the variance treated as a constant": _standardize_mean_only}),
}
