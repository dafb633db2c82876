"""Backpropagation neuron by neuron, written literally from the thesis's equations.

This module is teaching code: every gradient is computed with explicit Python
loops over neuron indices, with the names of thesis 1 (Sánchez Pérez, 2024,
latest draft, chapter 3), so that each line can be read next to the equation
it implements.  The matrix form in :mod:`nnbook.layers` / :mod:`nnbook.losses`
computes the same numbers thousands of times faster; the book's notebooks and
``tests/test_neurons.py`` assert that both agree (and agree with finite
differences).

Notation (thesis §3.1.2)
------------------------
* ``a`` — a neuron's value *before* its activation (pre-activation);
  ``z`` — *after* it (post-activation).  ``a^l_j``, ``z^l_j`` belong to neuron
  j of layer l; the input layer is layer 0 and has no activation, so
  ``z^0_i = a^0_i = x_i`` (eq. 3.47).
* ``W^i[j, k]`` (the thesis's :math:`W^i_{jk}`) joins neuron j of layer i to
  neuron k of layer i + 1 — the same layout as ``Dense.params["W"]``.
* ``b^l[j]`` is the bias of neuron j of layer l (so the biases of the softmax
  layer are ``b2`` with one hidden layer and ``b3`` with two, eqs. 3.29, 3.51).
* ``Z[k]`` is input k of the softmax, ``O[k]`` its output, ``y[k]`` the
  one-hot target (eq. 3.1); ``gradient_Z[k] = dE/dZ_k`` (eq. 3.26),
  ``gradient_h1[p] = dE/da^1_p`` (eq. 3.38), and so on.

Shapes for the network of §3.1.2 (I inputs, P hidden neurons, K classes):
``x: (I,)``, ``W0: (I, P)``, ``b1: (P,)``, ``W1: (P, K)``, ``b2: (K,)``.

Where the thesis is wrong (see the book's errata appendix) the functions here
implement the *correct* formula; the few ``*_as_printed`` functions reproduce
what the thesis printed, so that the book can show numerically that it fails.

Batches: nnbook's losses are a *mean* over the batch, ``E = (1/N) sum_n E_n``.
The full-network functions accept one sample (``x: (I,)``) or a small batch
(``x: (N, I)``); for a batch they run the per-sample formulas on each sample
and combine them explicitly: parameter gradients are ``(1/N) sum_n`` of the
per-sample ones, and the gradient with respect to sample n's input is
``(1/N)`` times its per-sample gradient (``reduction="sum"`` drops the 1/N).

All functions take NumPy arrays (or lists), never modify them, and return
float64 NumPy arrays.
"""
from __future__ import annotations

import math

import numpy as np

from .backend import to_numpy

__all__ = [
    # activations and their derivatives
    "relu", "relu_derivative", "sigmoid", "sigmoid_derivative", "ACTIVATIONS",
    # softmax and cross-entropy (§3.1.1)
    "softmax", "cross_entropy", "softmax_jacobian_quotient_rule",
    "softmax_xent_gradient_quotient_rule", "softmax_xent_gradient",
    # the per-neuron building blocks (§3.1.2-3.1.4)
    "layer_forward", "weight_gradients", "bias_gradients", "neuron_gradients",
    "input_gradients",
    # sigmoid output + binary cross-entropy (drafts 1-2)
    "binary_cross_entropy", "sigmoid_bce_output_gradient_chain",
    "sigmoid_bce_output_gradient",
    # whole networks
    "forward_one_hidden", "backprop_one_hidden", "forward_two_hidden",
    "backprop_two_hidden", "forward_sigmoid_bce", "backprop_sigmoid_bce",
    "backprop_layer_l", "forward_layers", "backprop_layers",
    # the thesis as printed (wrong), for the errata
    "sigmoid_derivative_as_printed", "input_gradients_as_printed",
    "softmax_xent_gradient_eq_3_21_as_printed",
]


# --- input checks -------------------------------------------------------------------

def _as_float_array(name, a):
    if type(a).__module__.startswith("cupy"):
        a = to_numpy(a)
    if isinstance(a, (list, tuple)):
        try:
            a = np.asarray(a, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name}: expected numbers, got a {type(a).__name__} that NumPy "
                            f"cannot turn into a float array") from None
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a NumPy array, got {type(a).__name__} {a!r:.60}")
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected a real (float or int) array, got dtype {a.dtype}")
    if a.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {a.shape}")
    if not np.isfinite(a).all():
        bad = int((~np.isfinite(a)).sum())
        raise ValueError(f"{name}: expected finite values, got {bad} NaN/inf entries")
    return np.array(a, dtype=np.float64)          # a private float64 copy


def _vector(name, a, length=None, what=""):
    a = _as_float_array(name, a)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array (one sample){what}, got shape {a.shape}")
    if length is not None and a.shape[0] != length:
        raise ValueError(f"{name}: expected length {length}{what}, got shape {a.shape}")
    return a


def _matrix(name, a, rows=None, cols=None, what=""):
    a = _as_float_array(name, a)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array{what}, got shape {a.shape}")
    want = (a.shape[0] if rows is None else rows, a.shape[1] if cols is None else cols)
    if a.shape != want:
        shown = tuple("?" if w is None else w for w in (rows, cols))
        raise ValueError(f"{name}: expected shape {shown}{what}, got {a.shape}")
    return a


def _activation(name, act):
    if isinstance(act, str) and act.lower() in ACTIVATIONS:
        return act.lower()
    raise ValueError(f"{name}: expected one of {tuple(ACTIVATIONS)}, got {act!r}")


def _reduction(reduction):
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction: expected 'mean' (as nnbook's losses) or 'sum', "
                         f"got {reduction!r}")
    return reduction


def _one_target(name, y, K, require_distribution=True):
    """A softmax target as a float vector of length K (an int label becomes one-hot)."""
    if isinstance(y, (int, np.integer)) and not isinstance(y, bool):
        if not 0 <= int(y) < K:
            raise ValueError(f"{name}: a class label must lie in [0, {K - 1}] for {K} classes, "
                             f"got {int(y)}")
        t = np.zeros(K)
        t[int(y)] = 1.0
        return t
    t = _vector(name, y, K, f" (one target per class, K = {K})")
    if require_distribution:
        if (t < 0).any() or (t > 1).any():
            raise ValueError(f"{name}: target entries must lie in [0, 1], got values in "
                             f"[{t.min()}, {t.max()}]")
        if abs(t.sum() - 1.0) > 1e-8:
            raise ValueError(f"{name}: O - y (eq. 3.26) needs a target that sums to 1 (one-hot "
                             f"or a distribution), got sum {t.sum()!r}; for a general y use "
                             f"softmax_xent_gradient_quotient_rule, which gives sum(y) O - y")
    return t


def _batch(x, n_inputs, name="x"):
    """Return (rows, batched): x as a list of 1-D samples and whether it was 2-D."""
    a = _as_float_array(name, x)
    if a.ndim == 1:
        if a.shape[0] != n_inputs:
            raise ValueError(f"{name}: expected {n_inputs} input values (W0 has {n_inputs} "
                             f"rows), got shape {a.shape}")
        return [a], False
    if a.ndim == 2:
        if a.shape[1] != n_inputs:
            raise ValueError(f"{name}: expected shape (N, {n_inputs}) (W0 has {n_inputs} rows), "
                             f"got {a.shape}")
        return list(a), True
    raise ValueError(f"{name}: expected one sample (I,) or a batch (N, I), got shape {a.shape}")


def _softmax_targets(y, N, K, batched):
    if not batched:
        return [_one_target("y", y, K)]
    if isinstance(y, (list, tuple)):
        y = np.asarray(y)
    if not isinstance(y, np.ndarray):
        raise TypeError(f"y: expected an array of {N} labels or one-hot rows, got "
                        f"{type(y).__name__}")
    if y.ndim == 1 and y.dtype.kind in "iu":
        if y.shape[0] != N:
            raise ValueError(f"y: expected {N} labels (one per row of x), got shape {y.shape}")
        return [_one_target(f"y[{n}]", y[n], K) for n in range(N)]
    if y.ndim == 2:
        if y.shape != (N, K):
            raise ValueError(f"y: expected one-hot rows of shape ({N}, {K}), got {y.shape}")
        return [_one_target(f"y[{n}]", y[n], K) for n in range(N)]
    raise ValueError(f"y: expected integer labels (N,) or one-hot rows (N, K), got shape "
                     f"{y.shape} and dtype {y.dtype}")


# --- activations (eqs. 2.1, 2.2, 3.34-3.36, 3.69-3.71) -------------------------------

def relu(a):
    """ReLU(a) = max(0, a) for a scalar (eq. 2.1)."""
    return a if a > 0 else 0.0


def relu_derivative(a):
    """ReLU'(a) = 1 if a > 0, else 0 (eq. 3.70; the value 0 is taken at a = 0)."""
    return 1.0 if a > 0 else 0.0


def sigmoid(a):
    """sigmoid(a) = 1 / (1 + e^-a) for a scalar (eq. 2.2), without overflow."""
    if a >= 0:
        return 1.0 / (1.0 + math.exp(-a))
    e = math.exp(a)
    return e / (1.0 + e)


def sigmoid_derivative(a):
    """sigmoid'(a) = sigmoid(a) (1 - sigmoid(a)) — the correct form used in eqs. 3.36, 3.58.

    (Eqs. 3.35 and 3.57 of the latest draft, 3.13 of drafts 1-2 and 3.39 of
    draft 3 print sigmoid / (1 - sigmoid): see :func:`sigmoid_derivative_as_printed`.)
    """
    s = sigmoid(a)
    return s * (1.0 - s)


def _identity(a):
    return a


def _one(a):
    return 1.0


ACTIVATIONS = {
    "relu": (relu, relu_derivative),
    "sigmoid": (sigmoid, sigmoid_derivative),
    "identity": (_identity, _one),
}
"""name -> (f, f') on scalars.  ``"identity"`` is the input layer's (eq. 3.47)."""


# --- softmax and cross-entropy (§3.1.1, eqs. 3.1-3.26) -------------------------------

def softmax(Z):
    """O_i = e^{Z_i} / sum_k e^{Z_k} (eq. 3.7), one loop per sum.

    Every exponent is shifted by max(Z), which cancels in the ratio and keeps
    e^{Z_i - max} <= 1 from overflowing.
    """
    Z = _vector("Z", Z)
    K = Z.shape[0]
    m = max(Z)
    e = np.zeros(K)
    for i in range(K):
        e[i] = math.exp(Z[i] - m)
    total = 0.0
    for i in range(K):
        total += e[i]
    O = np.zeros(K)
    for i in range(K):
        O[i] = e[i] / total
    return O


def cross_entropy(O, y):
    """E = -sum_i y_i log(O_i) (eqs. 2.3, 3.1), natural logarithm.

    Terms with y_i = 0 are skipped (0 log 0 = 0 by continuity).
    """
    O = _vector("O", O)
    y = _vector("y", y, O.shape[0], " (one target per output)")
    E = 0.0
    for i in range(O.shape[0]):
        if y[i] != 0:
            if O[i] <= 0:
                return math.inf
            E -= y[i] * math.log(O[i])
    return E


def softmax_jacobian_quotient_rule(Z):
    """J[i, k] = dO_i / dZ_k by the quotient rule, the two cases of §3.1.1.

    With S = sum_c e^{Z_c}, the quotient rule (the correct form of eq. 3.6,
    d/dx [f/g] = (f' g - g' f) / g^2) gives

    * i = k (eqs. 3.8-3.13):  (e^{Z_k} S - e^{Z_k} e^{Z_k}) / S^2 = O_k (1 - O_k)
    * i != k (eqs. 3.14-3.18): (0 * S - e^{Z_k} e^{Z_i}) / S^2 = -O_i O_k

    The numerators are computed literally from the exponentials (shifted by
    max(Z), a common factor that cancels), not from the simplified forms.
    Returns a (K, K) array; row i is O_i, column k is Z_k.
    """
    Z = _vector("Z", Z)
    K = Z.shape[0]
    m = max(Z)
    e = [math.exp(Z[c] - m) for c in range(K)]
    S = 0.0
    for c in range(K):
        S += e[c]
    J = np.zeros((K, K))
    for i in range(K):
        for k in range(K):
            d_numerator = e[i] if i == k else 0.0       # d e^{Z_i} / d Z_k
            d_denominator = e[k]                         # d S / d Z_k
            J[i, k] = (d_numerator * S - d_denominator * e[i]) / (S * S)
    return J


def softmax_xent_gradient_quotient_rule(Z, y):
    """dE/dZ_k = -sum_i (y_i / O_i) dO_i/dZ_k (eqs. 3.2-3.5), for ANY target y.

    The chain rule through log (eq. 3.4: d log O_i / d O_i = 1 / O_i) times the
    softmax Jacobian of :func:`softmax_jacobian_quotient_rule`.  Splitting the
    sum into i != k and i = k (eqs. 3.19-3.21) gives

        dE/dZ_k = O_k sum_{i != k} y_i - y_k (1 - O_k) = (sum_i y_i) O_k - y_k,

    which is O_k - y_k (eq. 3.26) only when the target sums to 1 (one-hot, or any
    distribution).  Terms with y_i = 0 contribute nothing and are skipped, which
    also avoids 0/0 when O_i underflows to 0.
    """
    Z = _vector("Z", Z)
    K = Z.shape[0]
    y = _vector("y", y, K, f" (one target per class, K = {K})")
    O = softmax(Z)
    J = softmax_jacobian_quotient_rule(Z)
    gradient_Z = np.zeros(K)
    for k in range(K):
        total = 0.0
        for i in range(K):
            if y[i] != 0:
                total += y[i] / O[i] * J[i, k]
        gradient_Z[k] = -total
    return gradient_Z


def softmax_xent_gradient(O, y):
    """gradient_Z_k = dE/dZ_k = O_k - y_k (eq. 3.26), for a target that sums to 1.

    ``y`` is a one-hot vector (or a distribution), or an int class label.
    """
    O = _vector("O", O)
    K = O.shape[0]
    y = _one_target("y", y, K)
    gradient_Z = np.zeros(K)
    for k in range(K):
        gradient_Z[k] = O[k] - y[k]
    return gradient_Z


def softmax_xent_gradient_eq_3_21_as_printed(O, y):
    """WRONG (erratum): eq. 3.21 as printed, -[-O_k sum_{i!=k} (-y_i) + y_k (1 - O_k)].

    The extra minus inside the sum flips the first term: this evaluates to
    -O_k (1 - y_k) - y_k (1 - O_k) for a one-hot y, not O_k - y_k.
    """
    O = _vector("O", O)
    K = O.shape[0]
    y = _one_target("y", y, K)
    g = np.zeros(K)
    for k in range(K):
        s = 0.0
        for i in range(K):
            if i != k:
                s += -y[i]
        g[k] = -(-O[k] * s + y[k] * (1 - O[k]))
    return g


# --- per-neuron building blocks (§3.1.2-3.1.4) --------------------------------------

def layer_forward(z_prev, W, b, activation):
    """a_k = sum_j z_prev_j W[j, k] + b_k and z_k = f(a_k) for every neuron k.

    The forward pass behind eqs. 3.27, 3.39, 3.61, 3.90.  Returns ``(a, z)``.
    """
    z_prev = _vector("z_prev", z_prev)
    J = z_prev.shape[0]
    W = _matrix("W", W, J, None, f" (rows = the {J} neurons of the previous layer)")
    Q = W.shape[1]
    b = _vector("b", b, Q, f" (one bias per neuron, W has {Q} columns)")
    f, _ = ACTIVATIONS[_activation("activation", activation)]
    a = np.zeros(Q)
    z = np.zeros(Q)
    for k in range(Q):
        total = 0.0
        for j in range(J):
            total += z_prev[j] * W[j, k]
        a[k] = total + b[k]
        z[k] = f(a[k])
    return a, z


def weight_gradients(gradient_next, z_prev):
    """dE/dW[j, k] = gradient_next_k * z_prev_j.

    The weight rule the thesis derives five times: eq. 3.28 (h1-softmax,
    gradient_Z_k z^1_p), 3.41 (input-h1), 3.50 (h2-softmax), 3.63 (h1-h2),
    3.76 (input-h1) and, for any layer, 3.91.  ``gradient_next`` holds dE/da of
    the layer the weights feed (dE/dZ for the softmax layer); ``z_prev`` the
    post-activations of the layer they leave.  Returns (len(z_prev), len(gradient_next)).
    """
    g = _vector("gradient_next", gradient_next)
    z_prev = _vector("z_prev", z_prev)
    dW = np.zeros((z_prev.shape[0], g.shape[0]))
    for j in range(z_prev.shape[0]):
        for k in range(g.shape[0]):
            dW[j, k] = g[k] * z_prev[j]
    return dW


def bias_gradients(gradient_next):
    """dE/db_k = gradient_next_k * da_k/db_k = gradient_next_k * 1.

    Eqs. 3.29-3.31 (softmax biases), 3.42-3.44 (h1), 3.51-3.53, 3.64-3.66,
    3.77-3.79 and 3.92-3.94 (any layer l).
    """
    g = _vector("gradient_next", gradient_next)
    db = np.zeros(g.shape[0])
    for k in range(g.shape[0]):
        db[k] = g[k] * 1.0
    return db


def neuron_gradients(gradient_next, W, a, activation):
    """dE/da_j = sum_q gradient_next_q * W[j, q] * f'(a_j): the hidden-layer rule.

    Sums over every 'path' from neuron j to the Q neurons of the next layer
    (thesis Figs. 3.5, 3.13, 3.16).  This is eq. 3.37 (h1 of §3.1.2, next layer
    = softmax, gradient_next = gradient_Z), 3.59 (h2 of §3.1.3), 3.72 (h1 of
    §3.1.3, next layer h2) and the layer-l rule 3.84-3.88 — with the weight
    W[j, q] that joins neuron j to neuron q (eqs. 3.85 and 3.87 print W^l_{ij}).
    ``W``: (J, Q), ``a``: (J,) pre-activations of this layer.
    """
    g = _vector("gradient_next", gradient_next)
    Q = g.shape[0]
    a = _vector("a", a)
    J = a.shape[0]
    W = _matrix("W", W, J, Q, f" (J = {J} neurons of this layer, Q = {Q} of the next)")
    _, fprime = ACTIVATIONS[_activation("activation", activation)]
    out = np.zeros(J)
    for j in range(J):
        total = 0.0
        for q in range(Q):
            total += g[q] * W[j, q] * fprime(a[j])
        out[j] = total
    return out


def input_gradients(gradient_h1, W0):
    """dE/da^0_i = sum_p gradient_h1_p * W0[i, p] * 1 (eqs. 3.45-3.47).

    The input layer has no activation (dz^0/da^0 = 1, eq. 3.47), so each input
    neuron gathers the gradients of the first hidden layer through the weights
    that leave it.  This is the correct form of eqs. 3.48 and 3.83, which drop
    the factor W0[i, p] (see :func:`input_gradients_as_printed`).
    ``gradient_h1``: (P,); ``W0``: (I, P).  Returns (I,).
    """
    g = _vector("gradient_h1", gradient_h1)
    P = g.shape[0]
    W0 = _matrix("W0", W0, None, P, f" (one column per hidden neuron, P = {P})")
    I = W0.shape[0]
    out = np.zeros(I)
    for i in range(I):
        total = 0.0
        for p in range(P):
            total += g[p] * W0[i, p] * 1.0
        out[i] = total
    return out


def input_gradients_as_printed(gradient_h1, n_inputs):
    """WRONG (erratum): eqs. 3.48 / 3.83 as printed, dE/da^0_i = sum_p gradient_h1_p.

    The same number for every input neuron, whatever the weights.
    """
    g = _vector("gradient_h1", gradient_h1)
    total = 0.0
    for p in range(g.shape[0]):
        total += g[p]
    out = np.zeros(int(n_inputs))
    for i in range(int(n_inputs)):
        out[i] = total
    return out


def sigmoid_derivative_as_printed(a):
    """WRONG (erratum): sigmoid / (1 - sigmoid), as eqs. 3.13 (drafts 1-2), 3.39
    (draft 3), 3.35 and 3.57 (latest draft) print it.  Elementwise on arrays."""
    a = _as_float_array("a", a)
    s = np.vectorize(sigmoid, otypes=[np.float64])(a)
    return s / (1 - s)


# --- sigmoid output + binary cross-entropy (drafts 1-2, §3.1.1 there) ---------------

def binary_cross_entropy(z_hat, y):
    """H = -[y log(z_hat) + (1 - y) log(1 - z_hat)] for one sample (drafts' eq. 2.4/3.1)."""
    if not 0 < z_hat < 1:
        raise ValueError(f"z_hat: expected a sigmoid output in (0, 1), got {z_hat!r}")
    return -(y * math.log(z_hat) + (1 - y) * math.log(1 - z_hat))


def sigmoid_bce_output_gradient_chain(a_hat, y):
    """dH/da_hat as the drafts build it, unsimplified: dH/dz_hat * dz_hat/da_hat.

    dH/dz_hat = -[y / z_hat - (1 - y) / (1 - z_hat)] (drafts 1-2, eqs. 3.4-3.11,
    for one sample) and dz_hat/da_hat = z_hat (1 - z_hat) (eq. 3.14).  The
    product simplifies to z_hat - y (:func:`sigmoid_bce_output_gradient`).
    Scalars in, scalar out; needs z_hat strictly inside (0, 1).
    """
    a_hat, y = _scalar("a_hat", a_hat), _scalar("y", y)
    if not 0 <= y <= 1:
        raise ValueError(f"y: expected a target in [0, 1], got {y}")
    z_hat = sigmoid(a_hat)
    if not 0 < z_hat < 1:
        raise ValueError(f"a_hat: sigmoid({a_hat}) rounds to {z_hat} in float64, where "
                         f"dH/dz_hat divides by zero; use sigmoid_bce_output_gradient")
    dH_dz_hat = -(y / z_hat - (1 - y) / (1 - z_hat))
    dz_hat_da_hat = z_hat * (1 - z_hat)
    return dH_dz_hat * dz_hat_da_hat


def sigmoid_bce_output_gradient(a_hat, y):
    """grad_output = dH/da_hat = z_hat - y, z_hat = sigmoid(a_hat) (one sample).

    The simplified form of drafts 1-2's eqs. 3.15-3.16: the 1/(z_hat (1 - z_hat))
    of the log-derivatives cancels the sigmoid's derivative.  Finite for any a_hat.
    """
    a_hat, y = _scalar("a_hat", a_hat), _scalar("y", y)
    if not 0 <= y <= 1:
        raise ValueError(f"y: expected a target in [0, 1], got {y}")
    return sigmoid(a_hat) - y


def _scalar(name, v):
    if isinstance(v, np.ndarray) and v.shape in ((), (1,)):
        v = v.reshape(-1)[0]
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a real number, got {type(v).__name__} {v!r:.60}")
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {v}")
    return v


# --- whole networks ------------------------------------------------------------------

def _combine(per_sample, batched, reduction, param_keys, input_key, loss_key="E"):
    """Turn per-sample gradient dicts into the gradient of the batch loss."""
    if not batched:
        return per_sample[0]
    N = len(per_sample)
    scale = 1.0 / N if reduction == "mean" else 1.0
    out = {}
    for key in param_keys:
        total = np.zeros_like(per_sample[0][key])
        for s in per_sample:
            total = total + s[key]
        out[key] = total * scale
    out[input_key] = np.stack([s[input_key] * scale for s in per_sample])
    total = 0.0
    for s in per_sample:
        total += s[loss_key]
    out[loss_key] = total * scale
    out["per_sample"] = per_sample
    return out


def forward_one_hidden(x, W0, b1, W1, b2, hidden="relu"):
    """Forward pass of §3.1.2's network for one sample: input -> h1 -> softmax.

    Returns a dict: ``z0`` (= x), ``a1``, ``z1`` (hidden pre/post-activations),
    ``Z`` (softmax inputs) and ``O`` (softmax outputs).  The thesis uses 2 inputs,
    3 hidden neurons and K classes; any sizes work.  ``hidden``: ``"relu"`` (as
    drafts 1-3 and §2.5.7) or ``"sigmoid"`` (as the latest draft's eqs. 3.34-3.37).
    """
    W0 = _matrix("W0", W0)
    I, P = W0.shape
    W1 = _matrix("W1", W1, P, None, f" (one row per hidden neuron: W0 has {P} columns)")
    K = W1.shape[1]
    b1 = _vector("b1", b1, P, " (one bias per hidden neuron)")
    b2 = _vector("b2", b2, K, " (one bias per softmax neuron)")
    z0 = _vector("x", x, I, f" (W0 has {I} rows)")
    hidden = _activation("hidden", hidden)
    a1, z1 = layer_forward(z0, W0, b1, hidden)
    Z, _ = layer_forward(z1, W1, b2, "identity")
    O = softmax(Z)
    return {"z0": z0, "a1": a1, "z1": z1, "Z": Z, "O": O}


def backprop_one_hidden(x, y, W0, b1, W1, b2, hidden="relu", reduction="mean"):
    """Every gradient of §3.1.2's network, neuron by neuron (eqs. 3.26-3.48).

    ``x``: one sample (I,) with ``y`` an int label or a one-hot (K,) vector, or a
    batch (N, I) with ``y`` (N,) labels or (N, K) one-hot rows.  Returns a dict:

    ==================  ========================================  ===========
    key                 meaning                                   thesis eq.
    ==================  ========================================  ===========
    ``gradient_Z``      dE/dZ_k = O_k - y_k                       3.26
    ``dW1``             dE/dW^1_pk = gradient_Z_k z^1_p           3.27-3.28
    ``db2``             dE/db^2_k = gradient_Z_k                  3.29-3.31
    ``gradient_h1``     dE/da^1_p = sum_k gradient_Z_k W^1_pk f'  3.32-3.38
    ``dW0``             dE/dW^0_ip = gradient_h1_p z^0_i          3.39-3.41
    ``db1``             dE/db^1_p = gradient_h1_p                 3.42-3.44
    ``gradient_input``  dE/da^0_i = sum_p gradient_h1_p W^0_ip    3.45-3.47 (3.48 fixed)
    ``E``               the cross-entropy loss                    3.1
    ==================  ========================================  ===========

    plus the forward values (single sample).  For a batch, parameter gradients
    and E are averaged (``reduction="mean"``, nnbook's convention) or summed,
    ``gradient_input`` is (N, I) and ``per_sample`` keeps each sample's dict;
    ``gradient_Z`` / ``gradient_h1`` are then only in ``per_sample``.
    """
    reduction = _reduction(reduction)
    hidden = _activation("hidden", hidden)
    W0 = _matrix("W0", W0)
    I, P = W0.shape
    W1 = _matrix("W1", W1, P, None, f" (one row per hidden neuron: W0 has {P} columns)")
    K = W1.shape[1]
    rows, batched = _batch(x, I)
    targets = _softmax_targets(y, len(rows), K, batched)
    per_sample = []
    for z0, t in zip(rows, targets):
        fwd = forward_one_hidden(z0, W0, b1, W1, b2, hidden)
        # softmax layer: dE/dZ_k = O_k - y_k                          (3.26)
        gradient_Z = softmax_xent_gradient(fwd["O"], t)
        # weights h1 -> softmax: gradient_Z_k * z^1_p                 (3.27-3.28)
        dW1 = weight_gradients(gradient_Z, fwd["z1"])
        # softmax biases: gradient_Z_k                                (3.29-3.31)
        db2 = bias_gradients(gradient_Z)
        # hidden layer h1: sum over the K paths, times f'(a^1_p)      (3.32-3.38)
        gradient_h1 = neuron_gradients(gradient_Z, W1, fwd["a1"], hidden)
        # weights input -> h1: gradient_h1_p * z^0_i                  (3.39-3.41)
        dW0 = weight_gradients(gradient_h1, fwd["z0"])
        # h1 biases: gradient_h1_p                                    (3.42-3.44)
        db1 = bias_gradients(gradient_h1)
        # input layer: sum_p gradient_h1_p * W^0_ip                   (3.45-3.47)
        gradient_input = input_gradients(gradient_h1, W0)
        per_sample.append(dict(fwd, gradient_Z=gradient_Z, dW1=dW1, db2=db2,
                               gradient_h1=gradient_h1, dW0=dW0, db1=db1,
                               gradient_input=gradient_input,
                               E=cross_entropy(fwd["O"], t)))
    return _combine(per_sample, batched, reduction, ("dW0", "db1", "dW1", "db2"),
                    "gradient_input")


def forward_two_hidden(x, W0, b1, W1, b2, W2, b3, h1="relu", h2="sigmoid"):
    """Forward pass of §3.1.3's network: input -> h1 (ReLU) -> h2 (sigmoid) -> softmax.

    Shapes: ``W0`` (I, J), ``b1`` (J,), ``W1`` (J, P), ``b2`` (P,), ``W2`` (P, K),
    ``b3`` (K,) — the thesis names h1's neurons j (J of them) and h2's p (P).
    """
    W0 = _matrix("W0", W0)
    I, J = W0.shape
    W1 = _matrix("W1", W1, J, None, f" (one row per h1 neuron: W0 has {J} columns)")
    P = W1.shape[1]
    W2 = _matrix("W2", W2, P, None, f" (one row per h2 neuron: W1 has {P} columns)")
    K = W2.shape[1]
    b1 = _vector("b1", b1, J, " (one bias per h1 neuron)")
    b2 = _vector("b2", b2, P, " (one bias per h2 neuron)")
    b3 = _vector("b3", b3, K, " (one bias per softmax neuron)")
    z0 = _vector("x", x, I, f" (W0 has {I} rows)")
    h1, h2 = _activation("h1", h1), _activation("h2", h2)
    a1, z1 = layer_forward(z0, W0, b1, h1)
    a2, z2 = layer_forward(z1, W1, b2, h2)
    Z, _ = layer_forward(z2, W2, b3, "identity")
    return {"z0": z0, "a1": a1, "z1": z1, "a2": a2, "z2": z2, "Z": Z, "O": softmax(Z)}


def backprop_two_hidden(x, y, W0, b1, W1, b2, W2, b3, h1="relu", h2="sigmoid",
                        reduction="mean"):
    """Every gradient of §3.1.3's network, neuron by neuron (eqs. 3.49-3.83).

    Keys: ``gradient_Z`` (3.26), ``dW2`` (3.49-3.50), ``db3`` (3.51-3.53),
    ``gradient_h2`` (3.54-3.60), ``dW1`` (3.61-3.63), ``db2`` (3.64-3.66),
    ``gradient_h1`` (3.67-3.73), ``dW0`` (3.74-3.76), ``db1`` (3.77-3.79),
    ``gradient_input`` (3.80-3.82; eq. 3.83 drops the weight), ``E``, and the
    forward values.  Batches as in :func:`backprop_one_hidden`.
    """
    reduction = _reduction(reduction)
    h1, h2 = _activation("h1", h1), _activation("h2", h2)
    W0 = _matrix("W0", W0)
    I = W0.shape[0]
    W2 = _matrix("W2", W2)
    K = W2.shape[1]
    rows, batched = _batch(x, I)
    targets = _softmax_targets(y, len(rows), K, batched)
    per_sample = []
    for z0, t in zip(rows, targets):
        fwd = forward_two_hidden(z0, W0, b1, W1, b2, W2, b3, h1, h2)
        gradient_Z = softmax_xent_gradient(fwd["O"], t)                  # 3.26
        dW2 = weight_gradients(gradient_Z, fwd["z2"])                    # 3.49-3.50
        db3 = bias_gradients(gradient_Z)                                 # 3.51-3.53
        gradient_h2 = neuron_gradients(gradient_Z, W2, fwd["a2"], h2)    # 3.54-3.60
        dW1 = weight_gradients(gradient_h2, fwd["z1"])                   # 3.61-3.63
        db2 = bias_gradients(gradient_h2)                                # 3.64-3.66
        gradient_h1 = neuron_gradients(gradient_h2, W1, fwd["a1"], h1)   # 3.67-3.73
        dW0 = weight_gradients(gradient_h1, fwd["z0"])                   # 3.74-3.76
        db1 = bias_gradients(gradient_h1)                                # 3.77-3.79
        gradient_input = input_gradients(gradient_h1, W0)                # 3.80-3.82
        per_sample.append(dict(fwd, gradient_Z=gradient_Z, dW2=dW2, db3=db3,
                               gradient_h2=gradient_h2, dW1=dW1, db2=db2,
                               gradient_h1=gradient_h1, dW0=dW0, db1=db1,
                               gradient_input=gradient_input,
                               E=cross_entropy(fwd["O"], t)))
    return _combine(per_sample, batched, reduction,
                    ("dW0", "db1", "dW1", "db2", "dW2", "db3"), "gradient_input")


def forward_sigmoid_bce(x, W0, b1, W1, b2, hidden="relu"):
    """Forward pass of drafts 1-2: input -> h1 (ReLU) -> one sigmoid output neuron.

    ``W1`` is (P, 1) and ``b2`` (1,).  Returns ``z0, a1, z1, a_hat, z_hat``.
    """
    W0 = _matrix("W0", W0)
    I, P = W0.shape
    W1 = _matrix("W1", W1, P, 1, f" (P = {P} hidden neurons into one output neuron)")
    b1 = _vector("b1", b1, P, " (one bias per hidden neuron)")
    b2 = _vector("b2", b2, 1, " (the output neuron's bias)")
    z0 = _vector("x", x, I, f" (W0 has {I} rows)")
    hidden = _activation("hidden", hidden)
    a1, z1 = layer_forward(z0, W0, b1, hidden)
    a_hat, z_hat = layer_forward(z1, W1, b2, "sigmoid")
    return {"z0": z0, "a1": a1, "z1": z1, "a_hat": a_hat[0], "z_hat": z_hat[0]}


def backprop_sigmoid_bce(x, y, W0, b1, W1, b2, hidden="relu", reduction="mean"):
    """Gradients of drafts 1-2's binary classifier, neuron by neuron.

    The drafts' eqs. 3.11-3.29 for one sample, with grad_output = z_hat - y (the
    simplified 3.16), the output weights grad_output * z^1_p (3.17-3.18, where
    the drafts' n^1_p must be read as the post-activation z^1_p), the hidden
    rule grad_output * W^1_p * ReLU'(a^1_p) (3.22), input-h1 weights (3.25) and
    the input neurons sum_p gradient_h1_p W^0_ip (3.29, which has its weight).
    ``y``: 0/1 (or a probability) per sample.  Keys: ``grad_output``, ``dW1``
    (P, 1), ``db2`` (1,), ``gradient_h1``, ``dW0``, ``db1``, ``gradient_input``, ``E``.
    A batch is averaged as nnbook's :class:`~nnbook.BinaryCrossEntropy` does.
    """
    reduction = _reduction(reduction)
    hidden = _activation("hidden", hidden)
    W0 = _matrix("W0", W0)
    I = W0.shape[0]
    W1 = _matrix("W1", W1)
    rows, batched = _batch(x, I)
    if batched:
        ys = _as_float_array("y", y).reshape(-1)
        if ys.shape[0] != len(rows):
            raise ValueError(f"y: expected {len(rows)} targets (one per row of x), got "
                             f"{ys.shape[0]}")
    else:
        ys = [_scalar("y", y)]
    per_sample = []
    for z0, t in zip(rows, ys):
        if not 0 <= t <= 1:
            raise ValueError(f"y: expected targets in [0, 1], got {t}")
        fwd = forward_sigmoid_bce(z0, W0, b1, W1, b2, hidden)
        grad_output = sigmoid_bce_output_gradient(fwd["a_hat"], t)
        dW1 = weight_gradients([grad_output], fwd["z1"])
        db2 = bias_gradients([grad_output])
        gradient_h1 = neuron_gradients([grad_output], W1, fwd["a1"], hidden)
        dW0 = weight_gradients(gradient_h1, fwd["z0"])
        db1 = bias_gradients(gradient_h1)
        gradient_input = input_gradients(gradient_h1, W0)
        # H from the logit, stably: max(a, 0) - a y + log(1 + e^-|a|)
        a = fwd["a_hat"]
        E = max(a, 0.0) - a * t + math.log1p(math.exp(-abs(a)))
        per_sample.append(dict(fwd, grad_output=grad_output, dW1=dW1, db2=db2,
                               gradient_h1=gradient_h1, dW0=dW0, db1=db1,
                               gradient_input=gradient_input, E=E))
    return _combine(per_sample, batched, reduction, ("dW0", "db1", "dW1", "db2"),
                    "gradient_input")


def backprop_layer_l(gradient_next, W_l, a_l, z_prev, activation="relu"):
    """The rule for any hidden layer l of §3.1.4 (eqs. 3.84-3.94), one sample.

    ``gradient_next``: dE/da^{l+1}_q for the Q neurons of layer l + 1;
    ``W_l``: (J, Q), W^l joining layer l to l + 1; ``a_l``: (J,) pre-activations
    of layer l; ``z_prev``: (M,) post-activations of layer l - 1.  Returns

    * ``gradient_h``: dE/da^l_j = sum_q gradient_next_q W^l_jq f'(a^l_j)  (3.84-3.88,
      with W^l_jq where eqs. 3.85 and 3.87 print W^l_ij)
    * ``dW``: (M, J), dE/dW^{l-1}_ij = gradient_h_j z^{l-1}_i            (3.89-3.91)
    * ``db``: (J,),   dE/db^l_j = gradient_h_j                           (3.92-3.94)
    """
    gradient_h = neuron_gradients(gradient_next, W_l, a_l, activation)
    return {"gradient_h": gradient_h, "dW": weight_gradients(gradient_h, z_prev),
            "db": bias_gradients(gradient_h)}


def _check_stack(weights, biases, activations):
    if not isinstance(weights, (list, tuple)) or len(weights) < 1:
        raise TypeError("weights: expected a list [W^0, ..., W^L] of 2-D arrays")
    L = len(weights) - 1
    if not isinstance(biases, (list, tuple)) or len(biases) != L + 1:
        got = (f"{len(biases)}" if isinstance(biases, (list, tuple))
               else type(biases).__name__)
        raise ValueError(f"biases: expected a list of {L + 1} bias vectors [b^1, ..., "
                         f"b^{L + 1}] (one per weight matrix), got {got}")
    if isinstance(activations, str):
        activations = [activations] * L
    if not isinstance(activations, (list, tuple)) or len(activations) != L:
        raise ValueError(f"activations: expected {L} hidden-layer activations, got "
                         f"{activations!r}")
    Ws, bs = [], []
    prev = None
    for i, W in enumerate(weights):
        W = _matrix(f"weights[{i}]", W, prev, None,
                    "" if prev is None else f" (rows = the {prev} neurons of layer {i})")
        Ws.append(W)
        bs.append(_vector(f"biases[{i}]", biases[i], W.shape[1],
                          f" (one bias per neuron of layer {i + 1})"))
        prev = W.shape[1]
    acts = [_activation(f"activations[{i}]", a) for i, a in enumerate(activations)]
    return Ws, bs, acts


def forward_layers(x, weights, biases, activations):
    """Forward pass of a fully connected softmax network of any depth.

    ``weights[i]`` is W^i (joins layer i to i + 1), ``biases[i]`` is b^{i+1};
    ``activations[i]`` is the activation of hidden layer i + 1 (a single name
    applies to all).  Returns ``{"a": [a^1, ..., a^L], "z": [z^0, ..., z^L],
    "Z": Z, "O": O}``.
    """
    Ws, bs, acts = _check_stack(weights, biases, activations)
    z = [_vector("x", x, Ws[0].shape[0], f" (weights[0] has {Ws[0].shape[0]} rows)")]
    a = []
    for l, act in enumerate(acts):
        al, zl = layer_forward(z[-1], Ws[l], bs[l], act)
        a.append(al)
        z.append(zl)
    Z, _ = layer_forward(z[-1], Ws[-1], bs[-1], "identity")
    return {"a": a, "z": z, "Z": Z, "O": softmax(Z)}


def backprop_layers(x, y, weights, biases, activations="relu", reduction="mean"):
    """Backpropagation through any depth with §3.1.4's four layer groups.

    1. softmax layer: gradient_Z = O - y, its weights and biases (3.26, 3.28, 3.31);
    2. last hidden layer: the hidden rule with gradient_Z as the next layer (3.37/3.59);
    3. intermediate hidden layers: the layer-l rule (3.84-3.94, :func:`backprop_layer_l`);
    4. input layer: sum_j gradient_h1_j W^0_ij (3.45-3.47, 3.80-3.82).

    Returns ``{"dW": [dW^0, ..., dW^L], "db": [db^1, ..., db^{L+1}],
    "gradient_h": [dE/da^1, ..., dE/da^L], "gradient_Z", "gradient_input", "E"}``
    (batches as in :func:`backprop_one_hidden`: ``gradient_h`` and
    ``gradient_Z`` then live in ``per_sample``).
    """
    reduction = _reduction(reduction)
    Ws, bs, acts = _check_stack(weights, biases, activations)
    L = len(acts)
    rows, batched = _batch(x, Ws[0].shape[0])
    targets = _softmax_targets(y, len(rows), Ws[-1].shape[1], batched)
    per_sample = []
    for z0, t in zip(rows, targets):
        fwd = forward_layers(z0, Ws, bs, acts)
        dW = [None] * (L + 1)
        db = [None] * (L + 1)
        gradient_h = [None] * L
        # group 1: the softmax layer
        gradient_Z = softmax_xent_gradient(fwd["O"], t)
        dW[L] = weight_gradients(gradient_Z, fwd["z"][L])
        db[L] = bias_gradients(gradient_Z)
        # groups 2 and 3: last hidden layer, then the intermediate ones (layer-l rule)
        gradient_next = gradient_Z
        for l in range(L, 0, -1):
            r = backprop_layer_l(gradient_next, Ws[l], fwd["a"][l - 1], fwd["z"][l - 1],
                                 acts[l - 1])
            gradient_h[l - 1], dW[l - 1], db[l - 1] = r["gradient_h"], r["dW"], r["db"]
            gradient_next = r["gradient_h"]
        # group 4: the input layer
        gradient_input = (input_gradients(gradient_h[0], Ws[0]) if L > 0
                          else input_gradients(gradient_Z, Ws[0]))
        per_sample.append({"dW": dW, "db": db, "gradient_h": gradient_h,
                           "gradient_Z": gradient_Z, "gradient_input": gradient_input,
                           "E": cross_entropy(fwd["O"], t), **fwd})
    if not batched:
        return per_sample[0]
    N = len(per_sample)
    scale = 1.0 / N if reduction == "mean" else 1.0
    out = {"dW": [sum(s["dW"][i] for s in per_sample) * scale for i in range(L + 1)],
           "db": [sum(s["db"][i] for s in per_sample) * scale for i in range(L + 1)],
           "gradient_input": np.stack([s["gradient_input"] * scale for s in per_sample]),
           "E": sum(s["E"] for s in per_sample) * scale, "per_sample": per_sample}
    return out
