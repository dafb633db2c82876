"""Reference answers of the exercises of "Convolutional networks" (``cnn.*``)."""
import numpy as np

from nnbook.exercises.build import Solution


def output_size(n, k, stride, padding):
    return (n + 2 * padding - k) // stride + 1


def _out_size_cases(rng):
    cases = [(28, 5, 1, 2), (32, 5, 1, 0), (28, 2, 2, 0), (7, 3, 2, 1), (5, 5, 1, 0),
             (224, 7, 2, 3), (10, 3, 3, 0), (1, 1, 1, 0), (6, 4, 5, 1)]
    for _ in range(6):
        k = int(rng.integers(1, 6))
        p = int(rng.integers(0, 3))
        n = int(rng.integers(max(1, k - 2 * p), 40))
        cases.append((n, k, int(rng.integers(1, 4)), p))
    return cases


def im2col(x, kh, kw):
    C, H, W = x.shape
    Ho, Wo = H - kh + 1, W - kw + 1
    cols = np.empty((Ho, Wo, C, kh, kw), dtype=x.dtype)
    for r in range(kh):                 # one strided copy per filter tap
        for t in range(kw):
            cols[:, :, :, r, t] = x[:, r:r + Ho, t:t + Wo].transpose(1, 2, 0)
    return cols.reshape(Ho * Wo, C * kh * kw)


def _im2col_cases(rng):
    return [(rng.normal(size=(1, 3, 3)), 2, 2), (rng.normal(size=(2, 4, 5)), 3, 2),
            (rng.normal(size=(3, 4, 4)), 1, 1), (rng.normal(size=(2, 3, 3)), 3, 3),
            (np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4), 2, 3)]


def _im2col_taps_first(x, kh, kw):
    C, H, W = x.shape
    rows = [x[:, i:i + kh, j:j + kw].transpose(1, 2, 0).reshape(-1)
            for i in range(H - kh + 1) for j in range(W - kw + 1)]
    return np.array(rows)


def maxpool_backward(x, dout):
    dx = np.zeros_like(x)
    for i in range(dout.shape[0]):
        for j in range(dout.shape[1]):
            window = x[2 * i:2 * i + 2, 2 * j:2 * j + 2]
            r, t = np.unravel_index(np.argmax(window), (2, 2))   # argmax: the first maximum
            dx[2 * i + r, 2 * j + t] = dout[i, j]
    return dx


def _pool_bwd_cases(rng):
    cases = []
    for shape in ((2, 2), (4, 6), (6, 4)):
        x = rng.normal(size=shape)
        cases.append((x, rng.normal(size=(shape[0] // 2, shape[1] // 2))))
    x = rng.integers(0, 2, size=(4, 4)).astype(float)        # many ties
    cases.append((x, rng.normal(size=(2, 2))))
    cases.append((np.zeros((2, 4)), np.array([[1.0, -2.0]])))  # all tied (a ReLU's zeros)
    return cases


def _pool_bwd_all_winners(x, dout):
    H, W = x.shape
    m = x.reshape(H // 2, 2, W // 2, 2).max(axis=(1, 3))
    up = np.repeat(np.repeat(m, 2, 0), 2, 1)
    return (x == up) * np.repeat(np.repeat(dout, 2, 0), 2, 1)


def conv_input_grad(dout, w):
    kh, kw = w.shape
    d = np.pad(dout, ((kh - 1, kh - 1), (kw - 1, kw - 1)))
    wf = w[::-1, ::-1]
    H, W = dout.shape[0] + kh - 1, dout.shape[1] + kw - 1
    return np.array([[(d[i:i + kh, j:j + kw] * wf).sum() for j in range(W)] for i in range(H)])


def _full_cases(rng):
    return [(rng.normal(size=(3, 3)), rng.normal(size=(2, 2))),
            (rng.normal(size=(4, 2)), rng.normal(size=(3, 2))),
            (rng.normal(size=(1, 1)), rng.normal(size=(3, 3))),
            (rng.normal(size=(5, 5)), np.array([[1.0, 2.0], [3.0, 4.0]])),
            (rng.normal(size=(2, 6)), rng.normal(size=(1, 3))),            # a one-row kernel
            (rng.normal(size=(3, 4)), np.ones((1, 1)))]                    # 1x1: dx = dout


def _full_no_flip(dout, w):
    return conv_input_grad(dout, w[::-1, ::-1])


SOLUTIONS = {
    "cnn.output_size": Solution(
        output_size, _out_size_cases,
        wrong={"padding counted on one side only": lambda n, k, s, p: (n + p - k) // s + 1}),
    "cnn.im2col": Solution(
        im2col, _im2col_cases,
        wrong={"taps before channels": _im2col_taps_first}),
    "cnn.maxpool_backward": Solution(
        maxpool_backward, _pool_bwd_cases,
        wrong={"every tied maximum gets the gradient": _pool_bwd_all_winners}),
    "cnn.conv_input_grad": Solution(
        conv_input_grad, _full_cases,
        wrong={"no flip: correlation, not convolution": _full_no_flip}),
}
