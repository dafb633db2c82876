"""Pure forward/backward pairs: the mathematics of every layer and loss.

Conventions (cs231n style): ``*_forward(...)`` returns ``(out, cache)``;
``*_backward(dout, cache)`` returns the gradients in the order of the inputs.
Shapes: ``x: (N, D)``, ``W: (D, M)``, ``b: (M,)``, ``out: (N, M)``.  Functions take
their array module from the arrays' backend, so they run on NumPy and CuPy.
Nothing here validates its input (the layer classes do) and nothing modifies
its arguments in place.
"""
from __future__ import annotations

from functools import lru_cache as _lru_cache

import numpy as _np

from ..backend import get_xp

_FEW_CLASSES = 32       # softmax-CE on NumPy works class-major up to this many classes


@_lru_cache(maxsize=8)
def _arange(n):
    """0, 1, ..., n-1 as a cached read-only NumPy array (fancy-index row numbers)."""
    a = _np.arange(n)
    a.flags.writeable = False
    return a

# --- activations (elementwise) ------------------------------------------------------

def relu(x):
    xp = get_xp()
    return xp.maximum(x, 0)


def relu_grad(x):
    """ReLU'(x): 1 where x > 0, else 0 (the subgradient 0 is used at x = 0)."""
    return (x > 0).astype(x.dtype)


def relu_forward(x):
    mask = x > 0
    return x * mask, mask


def relu_backward(dout, mask):
    return dout * mask


def sigmoid(x):
    """Numerically stable logistic function 1 / (1 + e^-x) for any finite x."""
    xp = get_xp()
    e = xp.exp(-xp.abs(x))          # in (0, 1]: never overflows
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_grad(x):
    """sigma'(x) = sigma(x) (1 - sigma(x))."""
    s = sigmoid(x)
    return s * (1 - s)


def sigmoid_forward(x):
    s = sigmoid(x)
    return s, s


def sigmoid_backward(dout, s):
    return dout * s * (1 - s)


def tanh(x):
    return get_xp().tanh(x)


def tanh_grad(x):
    t = get_xp().tanh(x)
    return 1 - t * t


def tanh_forward(x):
    t = get_xp().tanh(x)
    return t, t


def tanh_backward(dout, t):
    return dout * (1 - t * t)


# --- softmax and losses ------------------------------------------------------------

def log_softmax(z, axis=-1):
    xp = get_xp()
    m = z.max(axis=axis, keepdims=True)
    s = z - m
    return s - xp.log(xp.exp(s).sum(axis=axis, keepdims=True))


def softmax(z, axis=-1):
    """Softmax along ``axis``, shifted by the maximum so it never overflows."""
    xp = get_xp()
    e = xp.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_jacobian(o):
    """Jacobian dO/dZ of softmax for one sample: diag(O) - O O^T, shape (K, K)."""
    xp = get_xp()
    return xp.diag(o) - xp.outer(o, o)


def softmax_xent_forward(z, Y):
    """Mean cross-entropy of softmax(z) against target distributions Y (N, K).

    Returns ``(loss, cache)``; loss = -(1/N) sum_n sum_k Y_nk log O_nk.
    """
    logp = log_softmax(z)
    N = z.shape[0]
    loss = -(Y * logp).sum() / N
    return loss, (logp, Y)


def softmax_xent_backward(cache, dloss=1.0):
    """dE/dz = (O - Y) / N (for rows of Y that sum to one)."""
    logp, Y = cache
    xp = get_xp()
    N = logp.shape[0]
    return (xp.exp(logp) - Y) * (dloss / N)


def softmax_xent_labels_forward(z, y):
    """Same as :func:`softmax_xent_forward` with integer labels ``y`` (N,).

    With the shifted logits s = z - max_k z (so every exponent is <= 0),
    loss_n = log sum_k e^{s_nk} - s_{n,y_n}.  The cache keeps e^s and its row
    sums: the backward pass divides instead of exponentiating again.

    With few classes (NumPy, K <= 32) the work runs on a class-major copy
    z^T (K, N): a reduction over the K classes of a row is then K - 1
    vector operations across all N samples, instead of N short inner loops of
    length K, which NumPy runs several times slower.
    """
    xp = get_xp()
    N, K = z.shape
    if xp is _np and K <= _FEW_CLASSES:
        st = z.T.copy()                              # (K, N): one row per class
        _np.subtract(st, st.max(axis=0), out=st)    # s^T
        # where each sample's label sits in the flattened (K, N) array
        at = _np.multiply(y, N, dtype=_np.intp)
        at += _arange(N)
        s_y = st.reshape(-1)[at]
        et = _np.exp(st, out=st)                     # e^T
        se = et.sum(axis=0)
        loss = (_np.log(se) - s_y).sum() / N
        return loss, (et.T, se, at, y, True)         # e as an (N, K) view of e^T
    s = z - z.max(axis=1, keepdims=True)
    e = xp.exp(s)
    se = e.sum(axis=1)
    rows = xp.arange(N)
    loss = (xp.log(se) - s[rows, y]).sum() / N
    return loss, (e, se, rows, y, False)


def softmax_xent_labels_backward(cache, dloss=1.0):
    """dE/dz = (O - onehot(y)) * dloss / N, with O = e^s / sum_k e^s: a new (N, K)
    array in the logits' dtype (C-ordered on the class-major path)."""
    e, se, rows, y, class_major = cache
    N = e.shape[0]
    if class_major:
        gt = e.T / se                 # (K, N), as in the forward pass
        gt.reshape(-1)[rows] -= 1     # here rows holds the labels' flat positions in gt
        return _np.multiply(gt.T, dloss / N, order="C", dtype=gt.dtype)
    g = e / se[:, None]
    g[rows, y] -= 1
    g *= dloss / N
    return g


def bce_with_logits_forward(z, y):
    """Mean binary cross-entropy of sigmoid(z) against y in [0, 1] (any shape).

    Uses ``max(z, 0) - z y + log(1 + e^-|z|)``, finite for any finite z.
    """
    xp = get_xp()
    loss = (xp.maximum(z, 0) - z * y + xp.log1p(xp.exp(-xp.abs(z)))).mean()
    return loss, (z, y)


def bce_with_logits_backward(cache, dloss=1.0):
    """dE/dz = (sigmoid(z) - y) / numel."""
    z, y = cache
    return (sigmoid(z) - y) * (dloss / z.size)


def mse_forward(yhat, y):
    d = yhat - y
    return (d * d).mean(), d


def mse_backward(d, dloss=1.0):
    return d * (2 * dloss / d.size)
