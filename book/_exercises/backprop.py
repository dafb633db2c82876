"""Reference answers of the exercises of the two backpropagation chapters
(``backprop.*``).  Each known-wrong answer is a classic mistake; several are errata of
the source thesis."""
import numpy as np

from nnbook.exercises.build import Solution


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _softmax(Z):
    e = np.exp(Z - Z.max())
    return e / e.sum()


# --- chapter: one hidden layer --------------------------------------------------------
def softmax_xent_grad(Z, y):
    return _softmax(Z) - y


def _xent_grad_cases(rng):
    cases = []
    for K in (2, 3, 5, 10):
        y = np.zeros(K)
        y[rng.integers(K)] = 1.0
        cases.append((rng.normal(size=K) * 2, y))
    cases += [
        (np.array([1000.0, 0.0, -1000.0]), np.array([0.0, 1.0, 0.0])),   # saturated softmax
        (np.zeros(4), np.array([0.0, 0.0, 0.0, 1.0])),                    # uniform output
        (np.array([5.0, 5.0]), np.array([0.5, 0.5])),                     # soft target
        (np.array([3.0, -1.0, 0.5]), np.array([1.0, 0.0, 0.0])),          # already right
    ]
    return cases


def sigmoid_bce_grad(a_hat, y):
    return _sigmoid(a_hat) - y


def _bce_cases(rng):
    return [(rng.normal(size=6) * 3, rng.integers(0, 2, 6).astype(float)),
            (np.array([40.0, -40.0, 0.0]), np.array([0.0, 1.0, 0.5])),
            (np.array([800.0, -800.0]), np.array([1.0, 0.0])),
            (np.zeros(3), np.array([0.0, 1.0, 0.3])),
            (rng.normal(size=(2, 3)), rng.random((2, 3))),                  # any shape, soft y
            (np.array([-800.0, 800.0]), np.array([1.0, 0.0]))]              # confidently wrong


def _bce_unsimplified(a, y):          # dH/dz * dz/da, each factor on its own: inf * 0 = nan
    with np.errstate(all="ignore"):
        z = 1 / (1 + np.exp(-a))
        return (-(y / z) + (1 - y) / (1 - z)) * z * (1 - z)


def hidden_gradient(gradient_Z, W1, a1):
    return (W1 @ gradient_Z) * (a1 > 0)


def _hidden_cases(rng):
    cases = []
    for P, K in ((3, 2), (3, 4), (1, 3), (6, 5)):
        cases.append((rng.normal(size=K), rng.normal(size=(P, K)), rng.normal(size=P)))
    cases.append((rng.normal(size=3), rng.normal(size=(3, 3)), np.array([0.0, -1.0, 2.0])))
    cases.append((rng.normal(size=2), rng.normal(size=(4, 2)), -np.ones(4)))   # all dead
    return cases


def input_gradient(gradient_h1, W0):
    return W0 @ gradient_h1


def _input_cases(rng):
    return [(rng.normal(size=3), rng.normal(size=(2, 3))),
            (rng.normal(size=5), rng.normal(size=(4, 5))),
            (rng.normal(size=1), rng.normal(size=(3, 1))),
            (np.zeros(3), rng.normal(size=(2, 3))),
            (rng.normal(size=3), np.zeros((2, 3))),
            (rng.normal(size=4), rng.normal(size=(1, 4)))]                  # one input


# --- chapter: two hidden layers ---------------------------------------------------------
def sigmoid_layer_gradient(gradient_next, W, a):
    s = _sigmoid(a)
    return (W @ gradient_next) * s * (1 - s)


def _sig_layer_cases(rng):
    return [(rng.normal(size=3), rng.normal(size=(4, 3)), rng.normal(size=4)),
            (rng.normal(size=2), rng.normal(size=(1, 2)), rng.normal(size=1)),
            (rng.normal(size=3), rng.normal(size=(3, 3)), np.array([0.0, 50.0, -50.0])),
            (rng.normal(size=4), rng.normal(size=(5, 4)), rng.normal(size=5) * 6),
            (rng.normal(size=2), rng.normal(size=(2, 2)), np.array([800.0, -800.0])),
            (np.zeros(3), rng.normal(size=(2, 3)), rng.normal(size=2))]


def batch_weight_gradient(gradient_next, z_prev):
    return z_prev.T @ gradient_next / z_prev.shape[0]


def _wgrad_cases(rng):
    return [(rng.normal(size=(5, 3)), rng.normal(size=(5, 4))),
            (rng.normal(size=(1, 2)), rng.normal(size=(1, 3))),
            (rng.normal(size=(64, 10)), rng.random(size=(64, 8))),
            (np.zeros((3, 2)), rng.normal(size=(3, 2))),
            (rng.normal(size=(7, 1)), rng.normal(size=(7, 1))),
            (rng.normal(size=(4, 3)), np.ones((4, 2)))]


SOLUTIONS = {
    "backprop.softmax_xent_grad": Solution(
        softmax_xent_grad, _xent_grad_cases,
        wrong={"the sign of the gradient flipped": lambda Z, y: y - _softmax(Z),
               "no shift by the maximum (nan for |Z| = 1000)":
                   lambda Z, y: np.exp(Z) / np.exp(Z).sum() - y}),
    "backprop.sigmoid_bce_grad": Solution(
        sigmoid_bce_grad, _bce_cases,
        wrong={"multiplies by sigmoid' a second time":
                   lambda a, y: (_sigmoid(a) - y) * _sigmoid(a) * (1 - _sigmoid(a)),
               "the unsimplified product (nan when the sigmoid saturates)": _bce_unsimplified}),
    "backprop.hidden_gradient": Solution(
        hidden_gradient, _hidden_cases,
        wrong={"forgets the activation's derivative": lambda gZ, W1, a1: W1 @ gZ,
               "takes ReLU'(0) = 1": lambda gZ, W1, a1: (W1 @ gZ) * (a1 >= 0)}),
    "backprop.input_gradient": Solution(
        input_gradient, _input_cases,
        wrong={"thesis eqs. 3.48 / 3.83 as printed: the weight factor is missing":
                   lambda g, W0: np.full(W0.shape[0], g.sum())}),
    "backprop.sigmoid_layer_gradient": Solution(
        sigmoid_layer_gradient, _sig_layer_cases,
        wrong={"thesis eqs. 3.35 / 3.57 as printed: sigmoid' = sigmoid / (1 - sigmoid)":
                   lambda g, W, a: (W @ g) * _sigmoid(a) / (1 - _sigmoid(a))}),
    "backprop.batch_weight_gradient": Solution(
        batch_weight_gradient, _wgrad_cases,
        wrong={"forgets the 1/N of the mean": lambda g, z: z.T @ g,
               "the transpose: (Q, J)": lambda g, z: g.T @ z / z.shape[0]}),
}
