"""Exercises of the chapter "The generalized layer-l rule" (the checks; the stored cases
are in ``nnbook/exercise_data/layer_l.*``).

The first three are in batch (matrix) form, with nnbook's conventions: one row per sample,
``W^l`` of shape (n_l, n_{l+1}) joining neuron j of layer l to neuron q of layer
l + 1, and a loss that is the MEAN over the batch.  The fourth checks a whole layer class
written to the :class:`nnbook.Layer` contract: its forward outputs and input gradients on
stored inputs (float32 and float64, zero, huge and tiny values, any shape), its config,
and a finite-difference gradient check of the layer itself.
"""
import numpy as np

from ..exercises import ExerciseError, register
from ..gradcheck import check_layer
from ..layers import Layer

register(
    "layer_l.delta_tanh",
    "Write delta_l(delta_next, W, a) for a tanh hidden layer in batch form: "
    "delta_next (N, Q) = dE/da^{l+1}, W (J, Q) = W^l joining layer l to l + 1, "
    "a (N, J) = the pre-activations a^l; return dE/da^l of shape (N, J). "
    "It must be finite for any a (tanh saturates for large |a|).",
    rtol=1e-7, atol=1e-12,
)

register(
    "layer_l.param_grads",
    "Write param_grads(delta, z_prev) -> (dW, db) for one Dense layer in batch form. "
    "delta (N, J) is dE/da^l of the batch loss E (each row already carries the 1/N of "
    "the mean, as nnbook's loss.backward() returns it); z_prev (N, M) holds the "
    "post-activations z^{l-1}. dW is the (M, J) gradient for W^{l-1}, db the (J,) one "
    "for b^l.",
    rtol=1e-7, atol=1e-12,
)

register(
    "layer_l.mlp_gradients",
    "Write mlp_gradients(X, y, weights, biases) for a fully connected network with ReLU "
    "on every hidden layer and softmax + cross-entropy (mean over the N samples) at the "
    "output. X (N, n_0), y (N,) int labels, weights[l] = W^l (n_l, n_{l+1}), biases[l] = "
    "b^{l+1} (n_{l+1},), any depth. Return a tuple with one pair (dW^l, db^{l+1}) per "
    "weight matrix, in order. ReLU'(0) = 0.",
    rtol=1e-7, atol=1e-12,
)


# --- a whole layer: ELU ----------------------------------------------------------------------
# A case is (alpha, inputs, output gradients); the student passes the CLASS, the check
# builds ELU(alpha) and drives it through forward and backward on every input.

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


def _gradcheck_input():
    x = np.random.default_rng(7).normal(size=(4, 3)) * 2
    x[np.abs(x) < 0.05] = 0.5                # away from the kink at 0
    return x


def _elu_compare(got, want, args):
    alpha, xs, douts = args
    if not isinstance(got, Layer) or not hasattr(got, "params"):
        raise ExerciseError("ELU(alpha) must be an nb.Layer: subclass nb.Layer and call "
                            "super().__init__() in __init__")
    if got.config() != {"alpha": alpha}:
        raise ExerciseError(f"config() returned {got.config()!r}, expected "
                            f"{{'alpha': {alpha!r}}} (save/load rebuilds the layer from it)")
    for x, dout, out_want, dx_want in zip(xs, douts, want["out"], want["dx"]):
        x_in = x.copy()
        out = got.forward(x_in)
        if not np.array_equal(x_in, x):
            raise ExerciseError("forward modified its input in place")
        _same("forward", x, out, out_want)
        dx = got.backward(dout.copy())
        _same("backward", x, dx, dx_want)
    res = check_layer(got, _gradcheck_input())
    if not res.ok:
        raise ExerciseError(f"nb.check_layer fails: {res!r}")


register(
    "layer_l.elu_layer",
    "Write a class ELU(nb.Layer) with __init__(self, alpha=1.0), forward, backward and "
    "config: ELU(x) = x for x > 0, alpha (e^x - 1) otherwise; its derivative is 1 for "
    "x > 0 and alpha e^x otherwise (alpha at x = 0). Any shape; the output keeps the "
    "input's dtype (float32 or float64) and is finite for any finite x; config() "
    "returns {'alpha': alpha}. Pass the class itself: check('layer_l.elu_layer', ELU).",
    call=lambda cls, args: cls(args[0]),
    compare=_elu_compare,
    show_args=lambda args: (f"ELU(alpha={args[0]!r}) on {len(args[1])} inputs: "
                            + ", ".join(f"{x.dtype}{x.shape}" for x in args[1])),
)
