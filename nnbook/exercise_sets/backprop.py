"""Exercises of the chapters "Backpropagation with one hidden layer" and
"Backpropagation with two hidden layers".

References are the matrix-form expressions (NumPy); the per-neuron functions of
:mod:`nnbook.neurons` are checked against them in ``tests/test_neurons.py``.
Each exercise carries a known-wrong answer that is one of the classic
mistakes — several of them are errata of the source thesis.
"""
import numpy as np

from .. import functional as F
from ..exercises import register


def _softmax_rows(Z):
    return F.softmax(np.atleast_2d(Z))[0]


# --- chapter: one hidden layer --------------------------------------------------------

def _xent_grad_ref(Z, y):
    return _softmax_rows(Z) - y


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


register(
    "backprop.softmax_xent_grad",
    "Write grad(Z, y): dE/dZ for E = -sum_k y_k log softmax(Z)_k, for logits Z of shape (K,) "
    "and a target y that sums to 1. It must be finite for very large |Z|.",
    reference=_xent_grad_ref,
    cases=_xent_grad_cases,
    wrong=lambda Z, y: y - _softmax_rows(Z),            # the sign of the gradient flipped
    rtol=1e-7, atol=1e-12,
)


def _bce_ref(a_hat, y):
    return F.sigmoid(a_hat) - y


register(
    "backprop.sigmoid_bce_grad",
    "Write grad(a_hat, y): dH/da_hat for one sigmoid output per sample, "
    "H = -[y log z + (1 - y) log(1 - z)], z = sigmoid(a_hat), elementwise over arrays "
    "a_hat, y of the same shape (y in [0, 1]); finite for any a_hat.",
    reference=_bce_ref,
    cases=lambda rng: [(rng.normal(size=6) * 3, rng.integers(0, 2, 6).astype(float)),
                       (np.array([40.0, -40.0, 0.0]), np.array([0.0, 1.0, 0.5])),
                       (np.array([800.0, -800.0]), np.array([1.0, 0.0])),
                       (np.zeros(3), np.array([0.0, 1.0, 0.3]))],
    # forgetting that dH/dz already contains 1 / (z (1 - z)): multiplies by sigmoid' twice
    wrong=lambda a, y: (F.sigmoid(a) - y) * F.sigmoid_grad(a),
    rtol=1e-7, atol=1e-12,
)


def _hidden_ref(gradient_Z, W1, a1):
    return (W1 @ gradient_Z) * (a1 > 0)


def _hidden_cases(rng):
    cases = []
    for P, K in ((3, 2), (3, 4), (1, 3), (6, 5)):
        cases.append((rng.normal(size=K), rng.normal(size=(P, K)), rng.normal(size=P)))
    cases.append((rng.normal(size=3), rng.normal(size=(3, 3)), np.array([0.0, -1.0, 2.0])))
    cases.append((rng.normal(size=2), rng.normal(size=(4, 2)), -np.ones(4)))   # all dead
    return cases


register(
    "backprop.hidden_gradient",
    "Write gradient_h1(gradient_Z, W1, a1) for a ReLU hidden layer: dE/da1_p = "
    "sum_k gradient_Z_k W1[p, k] ReLU'(a1_p), with W1 of shape (P, K), a1 of shape (P,), "
    "and ReLU'(0) = 0.",
    reference=_hidden_ref,
    cases=_hidden_cases,
    wrong=lambda gZ, W1, a1: W1 @ gZ,                  # forgets the activation's derivative
    rtol=1e-7, atol=1e-12,
)


def _input_ref(gradient_h1, W0):
    return W0 @ gradient_h1


register(
    "backprop.input_gradient",
    "Write gradient_input(gradient_h1, W0): dE/dx_i for the input neurons, with W0 of "
    "shape (I, P) joining input i to hidden neuron p.",
    reference=_input_ref,
    cases=lambda rng: [(rng.normal(size=3), rng.normal(size=(2, 3))),
                       (rng.normal(size=5), rng.normal(size=(4, 5))),
                       (rng.normal(size=1), rng.normal(size=(3, 1))),
                       (np.zeros(3), rng.normal(size=(2, 3))),
                       (rng.normal(size=3), np.zeros((2, 3)))],
    # thesis eqs. 3.48 / 3.83 as printed: the weight factor is missing
    wrong=lambda g, W0: np.full(W0.shape[0], g.sum()),
    rtol=1e-7, atol=1e-12,
)


# --- chapter: two hidden layers ---------------------------------------------------------

def _sig_layer_ref(gradient_next, W, a):
    s = F.sigmoid(a)
    return (W @ gradient_next) * s * (1 - s)


register(
    "backprop.sigmoid_layer_gradient",
    "Write gradient_h2(gradient_Z, W2, a2) for a sigmoid hidden layer: dE/da2_p = "
    "sum_k gradient_Z_k W2[p, k] sigmoid'(a2_p), W2 of shape (P, K); finite for any a2.",
    reference=_sig_layer_ref,
    cases=lambda rng: [(rng.normal(size=3), rng.normal(size=(4, 3)), rng.normal(size=4)),
                       (rng.normal(size=2), rng.normal(size=(1, 2)), rng.normal(size=1)),
                       (rng.normal(size=3), rng.normal(size=(3, 3)),
                        np.array([0.0, 50.0, -50.0])),
                       (rng.normal(size=4), rng.normal(size=(5, 4)), rng.normal(size=5) * 6)],
    # thesis eqs. 3.35 / 3.57 as printed: sigmoid' = sigmoid / (1 - sigmoid)
    wrong=lambda g, W, a: (W @ g) * F.sigmoid(a) / (1 - F.sigmoid(a)),
    rtol=1e-7, atol=1e-12,
)


def _wgrad_ref(gradient_next, z_prev):
    return z_prev.T @ gradient_next / z_prev.shape[0]


register(
    "backprop.batch_weight_gradient",
    "nnbook's loss is the MEAN over a batch of N samples. Given the per-sample gradients "
    "gradient_next (N, Q) = dE_n/da_next and the previous layer's outputs z_prev (N, J), "
    "write dW(gradient_next, z_prev): the (J, Q) gradient of the batch loss.",
    reference=_wgrad_ref,
    cases=lambda rng: [(rng.normal(size=(5, 3)), rng.normal(size=(5, 4))),
                       (rng.normal(size=(1, 2)), rng.normal(size=(1, 3))),
                       (rng.normal(size=(64, 10)), rng.random(size=(64, 8))),
                       (np.zeros((3, 2)), rng.normal(size=(3, 2)))],
    wrong=lambda g, z: z.T @ g,                         # forgets the 1/N of the mean
    rtol=1e-7, atol=1e-12,
)
