"""Reference answers of the exercises of "Deeper networks" (``deeper.*``)."""
import numpy as np

from nnbook.exercises.build import Solution


# --- 1. batch normalisation, backward ---------------------------------------------------
def batchnorm_backward(x, gamma, dout, eps):
    m = x.shape[0]
    mu = x.mean(axis=0)
    s = np.sqrt(((x - mu) ** 2).mean(axis=0) + eps)
    xhat = (x - mu) / s
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dx = gamma / s * (dout - dbeta / m - xhat * dgamma / m)
    return dx, dgamma, dbeta


def _bn_cases(rng):
    out = []
    for n, d in ((8, 3), (2, 4), (32, 1), (5, 6)):
        out.append((rng.normal(size=(n, d)) * 3 + 1, rng.normal(size=d), rng.normal(size=(n, d)),
                    1e-5))
    out.append((rng.normal(size=(6, 2)) + 1e3, np.array([2.0, -0.5]), rng.normal(size=(6, 2)),
                1e-5))                                             # a large offset
    out.append((np.array([[1.0, 2.0], [1.0, -2.0], [1.0, 0.0]]), np.ones(2),
                rng.normal(size=(3, 2)), 1e-3))                    # a constant feature
    return out


def _bn_statistics_constant(x, gamma, dout, eps):
    mu = x.mean(axis=0)
    s = np.sqrt(((x - mu) ** 2).mean(axis=0) + eps)
    xhat = (x - mu) / s
    return gamma / s * dout, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def _bn_no_variance_path(x, gamma, dout, eps):
    dx, dgamma, dbeta = batchnorm_backward(x, gamma, dout, eps)
    mu = x.mean(axis=0)
    s = np.sqrt(((x - mu) ** 2).mean(axis=0) + eps)
    return gamma / s * (dout - dout.mean(axis=0)), dgamma, dbeta


def _bn_unbiased(x, gamma, dout, eps):
    m = x.shape[0]
    mu = x.mean(axis=0)
    s = np.sqrt(((x - mu) ** 2).sum(axis=0) / (m - 1) + eps)
    xhat = (x - mu) / s
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    return gamma / s * (dout - dbeta / m - xhat * dgamma / m), dgamma, dbeta


# --- 2. a residual block, backward ------------------------------------------------------
def residual_backward(x, W1, W2, dout):
    a1 = x @ W1
    h = np.maximum(a1, 0)
    s = x + h @ W2
    d = dout * (s > 0)                       # the ReLU after the sum
    dW2 = h.T @ d
    dh = (d @ W2.T) * (a1 > 0)
    dW1 = x.T @ dh
    dx = d + dh @ W1.T                       # identity path + branch
    return dx, dW1, dW2


def _res_cases(rng):
    out = []
    for n, d, h in ((4, 3, 5), (1, 2, 2), (7, 6, 3), (3, 1, 4)):
        out.append((rng.normal(size=(n, d)), rng.normal(size=(d, h)), rng.normal(size=(h, d)),
                    rng.normal(size=(n, d))))
    out.append((np.zeros((2, 3)), rng.normal(size=(3, 2)), rng.normal(size=(2, 3)),
                np.ones((2, 3))))                                  # every ReLU at its kink
    return out


def _res_no_identity(x, W1, W2, dout):
    dx, dW1, dW2 = residual_backward(x, W1, W2, dout)
    s = x + np.maximum(x @ W1, 0) @ W2
    return dx - dout * (s > 0), dW1, dW2


def _res_no_outer_relu(x, W1, W2, dout):
    a1 = x @ W1
    h = np.maximum(a1, 0)
    dh = (dout @ W2.T) * (a1 > 0)
    return dout + dh @ W1.T, x.T @ dh, h.T @ dout


# --- 3. running statistics --------------------------------------------------------------
def running_stats(batches, momentum):
    mean = np.zeros(batches[0].shape[1])
    var = np.ones(batches[0].shape[1])
    for b in batches:
        m = b.shape[0]
        mean = (1 - momentum) * mean + momentum * b.mean(axis=0)
        var = (1 - momentum) * var + momentum * b.var(axis=0) * m / (m - 1)
    return mean, var


def _running_cases(rng):
    out = []
    for k, m, d, mom in ((5, 4, 3, 0.1), (1, 2, 1, 0.1), (20, 8, 2, 0.5), (3, 16, 4, 1.0),
                         (50, 3, 2, 0.01)):
        out.append(([rng.normal(size=(m, d)) * 2 + 3 for _ in range(k)], mom))
    return out


def _running_biased(batches, momentum):
    mean = np.zeros(batches[0].shape[1])
    var = np.ones(batches[0].shape[1])
    for b in batches:
        mean = (1 - momentum) * mean + momentum * b.mean(axis=0)
        var = (1 - momentum) * var + momentum * b.var(axis=0)
    return mean, var


def _running_swapped(batches, momentum):
    mean = np.zeros(batches[0].shape[1])
    var = np.ones(batches[0].shape[1])
    for b in batches:
        m = b.shape[0]
        mean = momentum * mean + (1 - momentum) * b.mean(axis=0)
        var = momentum * var + (1 - momentum) * b.var(axis=0) * m / (m - 1)
    return mean, var


# --- 4. data augmentation: shifts -------------------------------------------------------
def shift_images(X, dy, dx):
    N, H, W = X.shape
    out = np.zeros_like(X)
    for n in range(N):
        a, b = int(dy[n]), int(dx[n])
        if abs(a) >= H or abs(b) >= W:
            continue                                   # moved out of the picture
        out[n, max(a, 0):H + min(a, 0), max(b, 0):W + min(b, 0)] = \
            X[n, max(-a, 0):H + min(-a, 0), max(-b, 0):W + min(-b, 0)]
    return out


def _shift_cases(rng):
    out = [(rng.integers(0, 256, size=(4, 6, 5)).astype(np.uint8),
            rng.integers(-2, 3, size=4), rng.integers(-2, 3, size=4)),
           (rng.normal(size=(4, 4, 4)), np.array([0, 3, -4, 6]), np.array([0, -3, 4, 1])),
           (np.arange(9.0).reshape(1, 3, 3), np.array([1]), np.array([-1])),
           (rng.normal(size=(2, 5, 7)).astype(np.float32), np.array([-1, 2]),
            np.array([2, 0])),
           (rng.normal(size=(3, 28, 28)), np.array([2, -2, 0]), np.array([-2, 1, 0]))]
    return out


def _shift_roll(X, dy, dx):
    return np.stack([np.roll(x, (int(a), int(b)), axis=(0, 1)) for x, a, b in zip(X, dy, dx)])


def _shift_swapped(X, dy, dx):
    return shift_images(X, dx, dy)


# --- 5. AdamW ---------------------------------------------------------------------------
def adamw(p0, grads, lr=0.01, wd=0.1, b1=0.9, b2=0.999, eps=1e-8):
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for t, g in enumerate(grads, start=1):
        p = p * (1 - lr * wd)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    return p


def _adam_l2(p0, grads, lr=0.01, wd=0.1):
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for t, g in enumerate(grads, start=1):
        g = g + wd * p
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        p = p - lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    return p


def _adamw_cases(rng):
    return [(rng.normal(size=5) * 3, rng.normal(size=(12, 5))),
            (rng.normal(size=3), rng.normal(size=(1, 3))),
            (np.array([100.0, -0.01, 0.0]), np.zeros((5, 3))),       # pure decay
            (rng.normal(size=4), rng.normal(size=(30, 4)) * 100),
            (np.ones(2), rng.normal(size=(3, 2)) * 1e-3)]


SOLUTIONS = {
    "deeper.batchnorm_backward": Solution(
        batchnorm_backward, _bn_cases,
        wrong={"treats mean and variance as constants": _bn_statistics_constant,
               "forgets the path through the variance": _bn_no_variance_path,
               "uses the unbiased variance in training": _bn_unbiased}),
    "deeper.residual_backward": Solution(
        residual_backward, _res_cases,
        wrong={"forgets the identity path": _res_no_identity,
               "forgets the ReLU after the sum": _res_no_outer_relu}),
    "deeper.running_stats": Solution(
        running_stats, _running_cases,
        wrong={"no Bessel correction": _running_biased,
               "momentum weighs the old value (the optimizer's convention)": _running_swapped}),
    "deeper.shift_images": Solution(
        shift_images, _shift_cases,
        wrong={"np.roll wraps the border around": _shift_roll,
               "rows and columns swapped": _shift_swapped}),
    "deeper.adamw": Solution(
        adamw, _adamw_cases,
        wrong={"L2 penalty inside Adam (Adam's weight_decay)": _adam_l2}),
}
