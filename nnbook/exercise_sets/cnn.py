"""Exercises of the chapter "Convolutional networks".

References come from :mod:`nnbook.conv`; each exercise carries a known-wrong
answer that is a classic mistake (forgetting that padding adds on both sides,
flattening a receptive field in the wrong order, sending a tied maximum's
gradient to every winner, forgetting to flip the kernel).
"""
import numpy as np

from .. import conv as C
from ..exercises import register


def _out_size_cases(rng):
    cases = [(28, 5, 1, 2), (32, 5, 1, 0), (28, 2, 2, 0), (7, 3, 2, 1), (5, 5, 1, 0),
             (224, 7, 2, 3), (10, 3, 3, 0), (1, 1, 1, 0), (6, 4, 5, 1)]
    for _ in range(6):
        k = int(rng.integers(1, 6))
        p = int(rng.integers(0, 3))
        n = int(rng.integers(max(1, k - 2 * p), 40))
        cases.append((n, k, int(rng.integers(1, 4)), p))
    return cases


register(
    "cnn.output_size",
    "Write output_size(n, k, stride, padding): the number of positions a k-wide kernel "
    "takes along an input of length n padded with `padding` zeros on each side, moving "
    "`stride` steps at a time (an int).",
    reference=lambda n, k, s, p: C.conv_output_size(n, k, s, p),
    cases=_out_size_cases,
    wrong=lambda n, k, s, p: (n + p - k) // s + 1,          # padding counted on one side only
)


def _im2col_ref(x, kh, kw):
    return C.im2col(x[None], kh, kw)


def _im2col_cases(rng):
    return [(rng.normal(size=(1, 3, 3)), 2, 2), (rng.normal(size=(2, 4, 5)), 3, 2),
            (rng.normal(size=(3, 4, 4)), 1, 1), (rng.normal(size=(2, 3, 3)), 3, 3),
            (np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4), 2, 3)]


def _im2col_wrong(x, kh, kw):                                # taps before channels
    C_, H, W = x.shape
    rows = [x[:, i:i + kh, j:j + kw].transpose(1, 2, 0).reshape(-1)
            for i in range(H - kh + 1) for j in range(W - kw + 1)]
    return np.array(rows)


register(
    "cnn.im2col",
    "Write im2col(x, kh, kw) for one image x of shape (C, H, W), stride 1, no padding: a "
    "matrix with one row per output position (i, j) in row-major order, holding the "
    "receptive field x[:, i:i+kh, j:j+kw] flattened in (c, r, t) order — the order of a "
    "flattened filter W[f] — so that im2col(x) @ W.reshape(F, -1).T is the convolution.",
    reference=_im2col_ref,
    cases=_im2col_cases,
    wrong=_im2col_wrong,
)


def _pool_bwd_ref(x, dout):
    out, cache = C.maxpool2d_forward(x[None, None], 2)
    return C.maxpool2d_backward(dout[None, None], cache)[0, 0]


def _pool_bwd_cases(rng):
    cases = []
    for shape in ((2, 2), (4, 6), (6, 4)):
        x = rng.normal(size=shape)
        cases.append((x, rng.normal(size=(shape[0] // 2, shape[1] // 2))))
    x = rng.integers(0, 2, size=(4, 4)).astype(float)        # many ties
    cases.append((x, rng.normal(size=(2, 2))))
    cases.append((np.zeros((2, 4)), np.array([[1.0, -2.0]])))  # all tied (a ReLU's zeros)
    return cases


def _pool_bwd_wrong(x, dout):                                 # every tied maximum gets it
    H, W = x.shape
    m = x.reshape(H // 2, 2, W // 2, 2).max(axis=(1, 3))
    up = np.repeat(np.repeat(m, 2, 0), 2, 1)
    return (x == up) * np.repeat(np.repeat(dout, 2, 0), 2, 1)


register(
    "cnn.maxpool_backward",
    "Write maxpool_backward(x, dout) for 2x2 max-pooling with stride 2 of one channel x "
    "(H, W), H and W even: dE/dx given dE/dout (H/2, W/2). Each output's gradient goes to "
    "the position of its window's maximum; when several entries tie, only to the first "
    "in reading order (row by row), as PyTorch does.",
    reference=_pool_bwd_ref,
    cases=_pool_bwd_cases,
    wrong=_pool_bwd_wrong,
)


def _full_ref(dout, w):
    Ho, Wo = dout.shape
    kh, kw = w.shape
    return C.conv2d_backward_input_full(dout[None, None], w[None, None],
                                        (1, 1, Ho + kh - 1, Wo + kw - 1))[0, 0]


def _full_cases(rng):
    return [(rng.normal(size=(3, 3)), rng.normal(size=(2, 2))),
            (rng.normal(size=(4, 2)), rng.normal(size=(3, 2))),
            (rng.normal(size=(1, 1)), rng.normal(size=(3, 3))),
            (rng.normal(size=(5, 5)), np.array([[1.0, 2.0], [3.0, 4.0]]))]


def _full_wrong(dout, w):                                     # no flip: correlation, not convolution
    kh, kw = w.shape
    d = np.pad(dout, ((kh - 1, kh - 1), (kw - 1, kw - 1)))
    H, W = dout.shape[0] + kh - 1, dout.shape[1] + kw - 1
    return np.array([[(d[i:i + kh, j:j + kw] * w).sum() for j in range(W)] for i in range(H)])


register(
    "cnn.conv_input_grad",
    "Write input_grad(dout, w) for a one-channel convolution with stride 1 and no padding "
    "(out = corr(x, w), w of shape (kh, kw), dout of shape (Ho, Wo)): dE/dx, of shape "
    "(Ho + kh - 1, Wo + kw - 1), as the full convolution of dout with w.",
    reference=_full_ref,
    cases=_full_cases,
    wrong=_full_wrong,
)
