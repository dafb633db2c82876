"""Reference answers of the exercises of "Machine-learning basics" (``basics.*``)."""
import numpy as np

from nnbook.exercises.build import Solution


def _sigmoid(x):
    e = np.exp(-np.abs(x))                     # never overflows
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def sigmoid_grad(x):
    s = _sigmoid(x)
    return s * (1 - s)


def relu_grad(x):
    return np.where(x > 0, 1, 0).astype(x.dtype)


def one_hot(y, K):
    out = np.zeros((len(y), K))
    out[np.arange(len(y)), y] = 1.0
    return out


def cross_entropy(P, y):
    return float(-np.mean(np.log(P[np.arange(len(y)), y])))


def gradient_descent(A, b, x0, lr, steps):
    x = x0.copy()
    for _ in range(steps):
        x = x - lr * (A @ x - b)
    return x


def learning_curve(x_train, y_train, x_test, y_test, sizes, degree):
    errors = np.empty(len(sizes))
    for i, n in enumerate(sizes):
        G = np.polynomial.Polynomial.fit(x_train[:n], y_train[:n], degree)   # E: n examples
        errors[i] = np.mean((G(x_test) - y_test) ** 2)                        # P: held out
    return errors


def _learning_curve_cases(rng):
    def sine(n, noise=0.2):                  # the section's target and noise
        x = rng.uniform(0, 1, n)
        return x, np.sin(2 * np.pi * x) + rng.normal(0, noise, n)

    x_tr, y_tr = sine(200)
    x_te, y_te = sine(300)
    out = [(x_tr, y_tr, x_te, y_te, [12, 25, 50, 100, 200], 3)]          # the section's cubic
    x_tr, y_tr = sine(60)
    x_te, y_te = sine(100)
    out += [(x_tr, y_tr, x_te, y_te, [4, 10, 30, 60], 1),                   # a line
            (x_tr, y_tr, x_te, y_te, [1, 2, 7, 60], 0),                     # a constant: the mean
            (x_tr, y_tr, x_te, y_te, [40, 10, 40, 20], 2)]                  # any order, repeats
    x = np.array([0.0, 1 / 3, 2 / 3, 1.0, 0.5, 1 / 6, 5 / 6])
    out.append((x, np.sin(2 * np.pi * x), x_te, y_te, [4, 7], 3))         # n = degree + 1
    a = rng.uniform(-1, 1, 30)                                             # F in H, no noise:
    b = rng.uniform(-2, 2, 50)                                             # P = 0 from n = 3 on
    out.append((a, 1 - 2 * a + a * a / 2, b, 1 - 2 * b + b * b / 2, [3, 10, 30], 2))
    return out


def _learning_curve_train_error(x_train, y_train, x_test, y_test, sizes, degree):
    return learning_curve(x_train, y_train, x_train, y_train, sizes, degree)   # on E itself


def _learning_curve_all(x_train, y_train, x_test, y_test, sizes, degree):
    n = len(x_train)                         # fits every training pair, whatever the size
    return learning_curve(x_train, y_train, x_test, y_test, [n] * len(sizes), degree)


def _learning_curve_rmse(x_train, y_train, x_test, y_test, sizes, degree):
    return np.sqrt(learning_curve(x_train, y_train, x_test, y_test, sizes, degree))


def _logit_cases(rng):
    return [rng.normal(size=(4, 5)), rng.normal(size=(1, 3)) * 50,
            np.array([[1000.0, 0.0, -1000.0]]), np.zeros((2, 4)),
            np.array([[-1e4, 1e4]]), np.array([[7.0]]),                    # one class
            np.array([[3.0, 3.0, 3.0], [-800.0, -800.0, -799.0]])]         # ties; all very negative


def _sigmoid_cases(rng):
    return [rng.normal(size=7) * 3, np.array([0.0, 40.0, -40.0, 1e-8]),
            np.array([800.0, -800.0, 1e4, -1e4, -745.0]),                   # e^x overflows
            rng.normal(size=(3, 4)) * 10,                                   # any shape
            np.array([-0.0]), np.linspace(-6.0, 6.0, 13)]


def _relu_cases(rng):
    return [rng.normal(size=9) * 3, np.array([0.0, -0.0, 1e-300, -1e-300, 5.0]),
            rng.normal(size=(3, 4)), np.zeros((2, 2)),
            (rng.normal(size=(2, 3, 2)) * 2).astype(np.float32)]            # float32 stays float32


def _one_hot_cases(rng):
    return [(rng.integers(0, 4, size=10), 4), (np.array([2]), 3),
            (np.array([0, 0, 0]), 5), (np.array([1, 0, 1]), 2),
            (np.array([], dtype=np.int64), 3), (np.array([0]), 1)]


def _probability_cases(rng):
    out = []
    for n, k in ((5, 3), (1, 10), (8, 2)):
        P = rng.dirichlet(np.ones(k), size=n)
        out.append((P, rng.integers(0, k, size=n)))
    out.append((np.array([[0.04, 0.7, 0.26]]), np.array([2])))          # thesis eq. 2.7
    out.append((np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1])))  # perfect: E = 0
    out.append((np.array([[1 - 1e-12, 1e-12]]), np.array([1])))         # very wrong
    return out


def _quadratic_cases(rng):
    out = []
    for d, lr, steps in ((3, 0.1, 20), (1, 0.5, 5), (4, 0.05, 50)):
        M = rng.normal(size=(d, d))
        out.append((M @ M.T + np.eye(d), rng.normal(size=d), rng.normal(size=d), lr, steps))
    out.append((np.diag([1.0, 10.0]), np.zeros(2), np.array([1.0, 1.0]), 0.25, 10))  # > 2/L
    out.append((np.eye(2), np.ones(2), np.array([3.0, -1.0]), 0.3, 0))     # no step at all
    return out


def _gd_in_place(A, b, x0, lr, steps):
    x = x0                                   # x -= ... below changes the caller's x0
    for _ in range(steps):
        x -= lr * (A @ x - b)
    return x


SOLUTIONS = {
    "basics.learning_curve": Solution(
        learning_curve, _learning_curve_cases,
        wrong={"the training error on the first n pairs, not the held-out error":
                   _learning_curve_train_error,
               "fits all the training pairs, whatever n": _learning_curve_all,
               "the root of the mean squared error": _learning_curve_rmse}),
    "basics.softmax": Solution(
        softmax, _logit_cases,
        wrong={"normalises over the whole batch": lambda z: np.exp(z) / np.exp(z).sum(),
               "no shift by the maximum (overflows)":
                   lambda z: np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)}),
    "basics.sigmoid_grad": Solution(
        sigmoid_grad, _sigmoid_cases,
        wrong={"thesis eq. 3.13 as printed: s / (1 - s)":
                   lambda x: _sigmoid(x) / (1 - _sigmoid(x)),
               "e^-x / (1 + e^-x)^2 overflows for x = -800":
                   lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2}),
    "basics.relu_grad": Solution(
        relu_grad, _relu_cases,
        wrong={"takes ReLU'(0) = 1": lambda x: (x >= 0).astype(x.dtype)}),
    "basics.one_hot": Solution(
        one_hot, _one_hot_cases,
        wrong={"ignores K: too few columns": lambda y, K: np.eye(int(y.max()) + 1)[y]}),
    "basics.cross_entropy": Solution(
        cross_entropy, _probability_cases,
        wrong={"thesis eq. 2.8: log10": lambda P, y: float(-np.mean(np.log10(P[np.arange(len(y)), y]))),
               "sums over the batch instead of averaging":
                   lambda P, y: float(-np.sum(np.log(P[np.arange(len(y)), y])))}),
    "basics.gradient_descent": Solution(
        gradient_descent, _quadratic_cases,
        wrong={"gradient A x + b": lambda A, b, x0, lr, steps: gradient_descent(A, -b, x0, lr, steps),
               "changes x0 in place": _gd_in_place}),
}
