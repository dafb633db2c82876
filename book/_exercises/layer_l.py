"""Reference answers of the exercises of "The generalized layer-l rule" (``layer_l.*``)."""
import numpy as np

import nnbook as nb
from nnbook.exercises.build import Solution


def _softmax(A):
    e = np.exp(A - A.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --- 1. the error signal of a tanh layer --------------------------------------------
def delta_tanh(delta_next, W, a):
    return (delta_next @ W.T) * (1.0 - np.tanh(a) ** 2)


def _delta_tanh_cases(rng):
    cases = []
    for N, J, Q in ((4, 3, 2), (1, 5, 3), (6, 1, 4), (3, 4, 1), (8, 6, 6)):
        cases.append((rng.normal(size=(N, Q)), rng.normal(size=(J, Q)),
                      rng.normal(size=(N, J)) * 1.5))
    cases.append((rng.normal(size=(2, 3)), rng.normal(size=(3, 3)),          # saturated units
                  np.array([[0.0, 30.0, -30.0], [1e-3, -1e-3, 400.0]])))
    cases.append((np.zeros((2, 2)), rng.normal(size=(3, 2)), rng.normal(size=(2, 3))))
    return cases


# --- 2. weight and bias gradients from the error signal -----------------------------
def param_grads(delta, z_prev):
    return z_prev.T @ delta, delta.sum(axis=0)


def _param_cases(rng):
    return [(rng.normal(size=(5, 3)), rng.normal(size=(5, 4))),
            (rng.normal(size=(1, 2)), rng.normal(size=(1, 3))),
            (rng.normal(size=(7, 1)), rng.random(size=(7, 1))),
            (rng.normal(size=(64, 10)) / 64, np.maximum(rng.normal(size=(64, 8)), 0)),
            (np.zeros((3, 2)), rng.normal(size=(3, 2))),
            (rng.normal(size=(4, 3)), np.zeros((4, 5)))]


# --- 3. every gradient of a ReLU MLP of any depth -----------------------------------
def mlp_gradients(X, y, weights, biases, relu_mask=True):
    Z, A = [X], []
    for l, (W, b) in enumerate(zip(weights, biases)):
        a = Z[-1] @ W + b
        A.append(a)
        Z.append(np.maximum(a, 0.0) if l < len(weights) - 1 else a)
    N, K = A[-1].shape
    delta = (_softmax(A[-1]) - np.eye(K)[y]) / N            # dE/dZ of the mean loss
    out = [None] * len(weights)
    for l in range(len(weights) - 1, -1, -1):
        out[l] = (Z[l].T @ delta, delta.sum(axis=0))
        if l > 0:
            delta = delta @ weights[l].T
            if relu_mask:   # f'(a^l); relu_mask=False is a known-wrong answer
                delta = delta * (A[l - 1] > 0)
    return tuple(out)


def _net(rng, sizes, bias_scale=0.1):
    Ws = [rng.normal(size=(m, n)) * np.sqrt(2.0 / m) for m, n in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(size=n) * bias_scale for n in sizes[1:]]
    return Ws, bs


def _mlp_cases(rng):
    cases = []
    for sizes, N in (([3, 4, 2], 5), ([2, 5, 4, 3], 6), ([4, 3, 3, 3, 3, 2], 4),
                     ([6, 8, 1, 5, 3], 7), ([3, 4, 4, 3], 1)):
        Ws, bs = _net(rng, sizes)
        cases.append((rng.normal(size=(N, sizes[0])), rng.integers(0, sizes[-1], N), Ws, bs))
    Ws, bs = _net(rng, [3, 4, 3])                             # no hidden unit is ever on
    bs[0] = np.full(4, -100.0)
    cases.append((rng.normal(size=(4, 3)), np.array([0, 1, 2, 0]), Ws, bs))
    Ws, bs = _net(rng, [2, 3, 3, 2])                          # one label for the whole batch
    cases.append((rng.normal(size=(5, 2)), np.ones(5, dtype=np.int64), Ws, bs))
    return cases


def _mlp_sum_not_mean(X, y, Ws, bs):
    return tuple((dW * X.shape[0], db * X.shape[0]) for dW, db in mlp_gradients(X, y, Ws, bs))


# --- 4. a whole layer: ELU -----------------------------------------------------------
class ELU(nb.Layer):
    """ELU(x) = x for x > 0, alpha (e^x - 1) otherwise; derivative 1 or alpha e^x
    (alpha at x = 0, as PyTorch takes it).  Finite for any x, dtype preserved."""

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        self.x = x
        return np.where(x > 0, x, self.alpha * np.expm1(np.minimum(x, 0)))

    def backward(self, dout):
        return dout * np.where(self.x > 0, 1, self.alpha * np.exp(np.minimum(self.x, 0)))

    def config(self):
        return {"alpha": self.alpha}


def _elu_expect(exercise, reference, args):
    """The expected outputs in float64, from the formula itself (not from a float32 run)."""
    alpha, xs, douts = args
    out, dx = [], []
    for x, dout in zip(xs, douts):
        x64 = np.asarray(x, dtype=np.float64)
        out.append(np.where(x64 > 0, x64, alpha * np.expm1(np.minimum(x64, 0.0))))
        dx.append(np.asarray(dout, np.float64) * np.where(x64 > 0, 1.0, alpha * np.exp(np.minimum(x64, 0.0))))
    return {"out": out, "dx": dx}


def _elu_cases(rng):
    edge = [0.0, -0.0, 1e-8, -1e-8, 0.5, -0.5, -30.0, -1000.0, 30.0, 1000.0]
    xs = [rng.normal(size=(5, 4)) * 2,                                   # float64
          (rng.normal(size=(3, 7)) * 3).astype(np.float32),              # float32
          np.array([edge]),                                              # x = 0, huge |x|
          np.array([[0.0, -50.0, -100.0, 50.0, 100.0]], np.float32),     # e^100 overflows
          rng.normal(size=(2, 3, 4, 5)).astype(np.float32),              # any shape
          np.array([[-2.0]])]                                            # one number
    douts = [rng.normal(size=x.shape).astype(x.dtype) for x in xs]
    return [(alpha, xs, douts) for alpha in (1.0, 0.5, 2.0, 0.1, 3.0)]


class _ELUForgetsPositive(ELU):
    # backward uses alpha e^x everywhere, forgetting that the derivative is 1 for x > 0
    def backward(self, dout):
        return dout * self.alpha * np.exp(np.minimum(self.x, 80))


class _ELUWithoutAlpha(ELU):
    # e^x - 1 on the negative side: right for alpha = 1 only
    def forward(self, x):
        self.x = x
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))

    def backward(self, dout):
        return dout * np.where(self.x > 0, 1, np.exp(np.minimum(self.x, 0)))


class _ELUMasksByProduct(ELU):
    # selects the branches by multiplying with masks: inf * 0 = nan once e^x overflows
    def forward(self, x):
        self.x = x
        with np.errstate(over="ignore", invalid="ignore"):
            return (x > 0) * x + (x <= 0) * (self.alpha * (np.exp(x) - 1))


class _ELUUpcasts(ELU):
    # computes in float64 and returns float64 for float32 inputs
    def forward(self, x):
        return super().forward(np.asarray(x, np.float64))


SOLUTIONS = {
    "layer_l.delta_tanh": Solution(
        delta_tanh, _delta_tanh_cases,
        # tanh' = 1 - z^2 holds for the OUTPUT z = tanh(a); applying it to a is the mistake
        wrong={"tanh' applied to the pre-activation": lambda d, W, a: (d @ W.T) * (1.0 - a ** 2)}),
    "layer_l.param_grads": Solution(
        param_grads, _param_cases,
        # averaging a second time: delta already holds the 1/N of the mean loss
        wrong={"divides by N a second time": lambda d, z: (z.T @ d / d.shape[0], d.mean(axis=0))}),
    "layer_l.mlp_gradients": Solution(
        mlp_gradients, _mlp_cases,
        wrong={"the layer-l rule without f'(a^l)":
                   lambda X, y, Ws, bs: mlp_gradients(X, y, Ws, bs, relu_mask=False),
               "the sum over the batch, not the mean": _mlp_sum_not_mean}),
    "layer_l.elu_layer": Solution(
        ELU, _elu_cases, expect=_elu_expect,
        wrong={"backward uses alpha e^x for x > 0 too": _ELUForgetsPositive,
               "forward and backward without alpha": _ELUWithoutAlpha,
               "branches selected by multiplying with masks (nan for large x)": _ELUMasksByProduct,
               "a float64 result for float32 inputs": _ELUUpcasts}),
}
