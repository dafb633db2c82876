"""Exercises of the chapter "The generalized layer-l rule".

The first three are in batch (matrix) form, with nnbook's conventions: one row per sample,
``W^l`` of shape (n_l, n_{l+1}) joining neuron j of layer l to neuron q of layer
l + 1, and a loss that is the MEAN over the batch.  References are plain NumPy;
each exercise carries a known-wrong answer that is a classic mistake.  The fourth
checks a whole layer class written to the :class:`nnbook.Layer` contract.
"""
import numpy as np

from .. import functional as F
from ..exercises import ExerciseError, register
from ..gradcheck import check_layer
from ..layers import Layer

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


# --- 4. a whole layer: ELU -----------------------------------------------------------
# The student passes the CLASS; each case is a constructor argument (alpha), so
# run() builds ELU(alpha) and ReferenceELU(alpha), and the comparison below drives
# the student's layer through forward/backward on its own inputs.


class ReferenceELU(Layer):
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


def _elu64(x, alpha):
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def _elu_grad64(x, alpha):
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0)))


def _elu_inputs():
    rng = np.random.default_rng(2024)
    edge = [0.0, -0.0, 1e-8, -1e-8, 0.5, -0.5, -30.0, -1000.0, 30.0, 1000.0]
    return [rng.normal(size=(5, 4)) * 2,                                   # float64
            (rng.normal(size=(3, 7)) * 3).astype(np.float32),              # float32
            np.array([edge]),                                              # x = 0, huge |x|
            np.array([[0.0, -50.0, -100.0, 50.0, 100.0]], np.float32),     # e^100 overflows
            rng.normal(size=(2, 3, 4, 5)).astype(np.float32),              # any shape
            np.array([[-2.0]])]                                            # one number


def _tol(dtype):
    return (1e-10, 1e-12) if dtype == np.float64 else (1e-5, 1e-6)


def _same(what, x, got, want):
    if not hasattr(got, "shape") or not hasattr(got, "dtype"):
        raise ExerciseError(f"{what} returned {type(got).__name__}, expected an array")
    if got.shape != x.shape:
        raise ExerciseError(f"{what} for x of shape {x.shape}: got shape {got.shape}")
    if got.dtype != x.dtype:
        raise ExerciseError(f"{what} for {x.dtype} x returned {got.dtype}: keep the "
                            f"input's dtype (no silent upcast)")
    rtol, atol = _tol(x.dtype)
    g = np.asarray(got, dtype=np.float64)
    bad = ~np.isclose(g, want, rtol=rtol, atol=atol)
    if bad.any():
        i = tuple(int(k[0]) for k in np.nonzero(bad))
        hint = " (at x = 0 take the derivative alpha)" if x[i] == 0 else ""
        raise ExerciseError(f"{what} is wrong at x = {float(x[i])!r} ({x.dtype}): "
                            f"expected {float(want[i])!r}, got {float(g[i])!r}{hint}")


def _elu_compare(got, want):
    alpha = want.alpha
    if not isinstance(got, Layer) or not hasattr(got, "params"):
        raise ExerciseError("ELU(alpha) must be an nb.Layer: subclass nb.Layer and call "
                            "super().__init__() in __init__")
    if got.config() != {"alpha": alpha}:
        raise ExerciseError(f"config() returned {got.config()!r}, expected "
                            f"{{'alpha': {alpha!r}}} (save/load rebuilds the layer from it)")
    for x in _elu_inputs():
        x_in = x.copy()
        out = got.forward(x_in)
        if not np.array_equal(x_in, x):
            raise ExerciseError("forward modified its input in place")
        _same("forward", x, out, _elu64(x, alpha))
        dout = np.random.default_rng(x.size).normal(size=x.shape).astype(x.dtype)
        dx = got.backward(dout.copy())
        _same("backward", x, dx, dout.astype(np.float64) * _elu_grad64(x, alpha))
    x = np.random.default_rng(7).normal(size=(4, 3)) * 2
    x[np.abs(x) < 0.05] = 0.5                # away from the kink at 0
    res = check_layer(got, x)
    if not res.ok:
        raise ExerciseError(f"nb.check_layer fails: {res!r}")


class _ELUForgetsPositive(ReferenceELU):
    # backward uses alpha e^x everywhere, forgetting that the derivative is 1 for x > 0
    def backward(self, dout):
        return dout * self.alpha * np.exp(np.minimum(self.x, 80))


class _ELUWithoutAlpha(ReferenceELU):
    # e^x - 1 on the negative side: right for alpha = 1 only
    def forward(self, x):
        self.x = x
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))

    def backward(self, dout):
        return dout * np.where(self.x > 0, 1, np.exp(np.minimum(self.x, 0)))


class _ELUMasksByProduct(ReferenceELU):
    # selects the branches by multiplying with masks: inf * 0 = nan once e^x overflows
    def forward(self, x):
        self.x = x
        with np.errstate(over="ignore", invalid="ignore"):
            return (x > 0) * x + (x <= 0) * (self.alpha * (np.exp(x) - 1))


#: Classic mistakes the check must reject; the first is the registered ``wrong``.
ELU_WRONG_ANSWERS = {
    "backward uses alpha e^x for x > 0 too": _ELUForgetsPositive,
    "forward and backward without alpha": _ELUWithoutAlpha,
    "branches selected by multiplying with masks (nan for large x)": _ELUMasksByProduct,
}

register(
    "layer_l.elu_layer",
    "Write a class ELU(nb.Layer) with __init__(self, alpha=1.0), forward, backward and "
    "config: ELU(x) = x for x > 0, alpha (e^x - 1) otherwise; its derivative is 1 for "
    "x > 0 and alpha e^x otherwise (alpha at x = 0). Any shape; the output keeps the "
    "input's dtype (float32 or float64) and is finite for any finite x; config() "
    "returns {'alpha': alpha}. Pass the class itself: check('layer_l.elu_layer', ELU).",
    reference=ReferenceELU,
    cases=lambda rng: [(1.0,), (0.5,), (2.0,), (0.1,)],
    wrong=_ELUForgetsPositive,
    compare=_elu_compare,
)
