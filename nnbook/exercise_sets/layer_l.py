"""Exercises of the chapter "The generalized layer-l rule".

All three are in batch (matrix) form, with nnbook's conventions: one row per sample,
``W^l`` of shape (n_l, n_{l+1}) joining neuron j of layer l to neuron q of layer
l + 1, and a loss that is the MEAN over the batch.  References are plain NumPy;
each exercise carries a known-wrong answer that is a classic mistake.
"""
import numpy as np

from .. import functional as F
from ..exercises import register

# --- 1. the error signal of a tanh layer --------------------------------------------


def _delta_tanh_ref(delta_next, W, a):
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


register(
    "layer_l.delta_tanh",
    "Write delta_l(delta_next, W, a) for a tanh hidden layer in batch form: "
    "delta_next (N, Q) = dE/da^{l+1}, W (J, Q) = W^l joining layer l to l + 1, "
    "a (N, J) = the pre-activations a^l; return dE/da^l of shape (N, J). "
    "It must be finite for any a (tanh saturates for large |a|).",
    reference=_delta_tanh_ref,
    cases=_delta_tanh_cases,
    # tanh' = 1 - z^2 holds for the OUTPUT z = tanh(a); applying it to a is the mistake
    wrong=lambda d, W, a: (d @ W.T) * (1.0 - a ** 2),
    rtol=1e-7, atol=1e-12,
)


# --- 2. weight and bias gradients from the error signal -----------------------------


def _param_grads_ref(delta, z_prev):
    return z_prev.T @ delta, delta.sum(axis=0)


register(
    "layer_l.param_grads",
    "Write param_grads(delta, z_prev) -> (dW, db) for one Dense layer in batch form. "
    "delta (N, J) is dE/da^l of the batch loss E (each row already carries the 1/N of "
    "the mean, as nnbook's loss.backward() returns it); z_prev (N, M) holds the "
    "post-activations z^{l-1}. dW is the (M, J) gradient for W^{l-1}, db the (J,) one "
    "for b^l.",
    reference=_param_grads_ref,
    cases=lambda rng: [(rng.normal(size=(5, 3)), rng.normal(size=(5, 4))),
                       (rng.normal(size=(1, 2)), rng.normal(size=(1, 3))),
                       (rng.normal(size=(7, 1)), rng.random(size=(7, 1))),
                       (rng.normal(size=(64, 10)) / 64, np.maximum(rng.normal(size=(64, 8)), 0)),
                       (np.zeros((3, 2)), rng.normal(size=(3, 2))),
                       (rng.normal(size=(4, 3)), np.zeros((4, 5)))],
    # averaging a second time: delta already holds the 1/N of the mean loss
    wrong=lambda d, z: (z.T @ d / d.shape[0], d.mean(axis=0)),
    rtol=1e-7, atol=1e-12,
)


# --- 3. every gradient of a ReLU MLP of any depth -----------------------------------


def _mlp_grads_ref(X, y, weights, biases, relu_mask=True):
    Z, A = [X], []
    for l, (W, b) in enumerate(zip(weights, biases)):
        a = Z[-1] @ W + b
        A.append(a)
        Z.append(np.maximum(a, 0.0) if l < len(weights) - 1 else a)
    N, K = A[-1].shape
    delta = (F.softmax(A[-1]) - np.eye(K)[y]) / N           # dE/dZ of the mean loss
    out = [None] * len(weights)
    for l in range(len(weights) - 1, -1, -1):
        out[l] = (Z[l].T @ delta, delta.sum(axis=0))
        if l > 0:
            delta = delta @ weights[l].T
            if relu_mask:   # f'(a^l); relu_mask=False is the known-wrong answer
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


register(
    "layer_l.mlp_gradients",
    "Write mlp_gradients(X, y, weights, biases) for a fully connected network with ReLU "
    "on every hidden layer and softmax + cross-entropy (mean over the N samples) at the "
    "output. X (N, n_0), y (N,) int labels, weights[l] = W^l (n_l, n_{l+1}), biases[l] = "
    "b^{l+1} (n_{l+1},), any depth. Return a tuple with one pair (dW^l, db^{l+1}) per "
    "weight matrix, in order. ReLU'(0) = 0.",
    reference=_mlp_grads_ref,
    cases=_mlp_cases,
    # the layer-l rule without f'(a^l): gradients flow through switched-off ReLUs
    wrong=lambda X, y, Ws, bs: _mlp_grads_ref(X, y, Ws, bs, relu_mask=False),
    rtol=1e-7, atol=1e-12,
)
