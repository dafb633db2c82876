"""Reference answers of the exercises of "Deeper networks" (``deeper.*``)."""
import numpy as np

import nnbook as nb
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


# --- 6. a bottleneck block's parameters -------------------------------------------------
def bottleneck_params(c_in, c_out, stride):
    w = max(1, c_out // 4)                        # the inner width
    conv = c_in * w + 9 * w * w + w * c_out       # 1x1, 3x3, 1x1; no biases
    bn = 2 * (w + w + c_out)                      # gamma and beta of the three norms
    if stride != 1 or c_in != c_out:              # projection: 1x1 conv + batch norm
        conv += c_in * c_out
        bn += 2 * c_out
    return conv + bn


def _bottleneck_cases(rng):
    out = [(64, 64, 1), (64, 128, 2), (128, 128, 1), (64, 256, 1), (16, 16, 2),
           (256, 512, 2), (3, 2, 1), (10, 6, 1), (1, 1, 1)]
    for _ in range(3):
        c_in, c_out = (int(c) for c in rng.integers(1, 200, size=2))
        out.append((c_in, c_out, int(rng.integers(1, 3))))
    for c_in, c_out, stride in out:                # the same count as nnbook's layer
        block = nb.Bottleneck(c_in, c_out, stride=stride)
        n = sum(int(np.prod(q.shape)) for q in block.parameters())
        if n != bottleneck_params(c_in, c_out, stride):
            raise AssertionError(f"Bottleneck({c_in}, {c_out}, stride={stride}): nnbook "
                                 f"has {n} parameters")
    return out


def _bottleneck_no_projection(c_in, c_out, stride):
    w = max(1, c_out // 4)
    return c_in * w + 9 * w * w + w * c_out + 2 * (w + w + c_out)


def _bottleneck_projection_on_stride_only(c_in, c_out, stride):
    n = bottleneck_params(c_in, c_out, stride)
    if stride == 1 and c_in != c_out:
        n -= c_in * c_out + 2 * c_out
    return n


def _bottleneck_conv_bias(c_in, c_out, stride):
    w = max(1, c_out // 4)
    n = bottleneck_params(c_in, c_out, stride) + w + w + c_out
    return n + (c_out if stride != 1 or c_in != c_out else 0)


def _bottleneck_no_bn(c_in, c_out, stride):
    w = max(1, c_out // 4)
    n = bottleneck_params(c_in, c_out, stride) - 2 * (w + w + c_out)
    return n - (2 * c_out if stride != 1 or c_in != c_out else 0)


# --- 7. inverted dropout ----------------------------------------------------------------
def dropout_forward_backward(x, mask, p, dout):
    scale = mask / (1.0 - p)                      # kept units scaled up in training
    return x * scale, dout * scale


def _dropout_cases(rng):
    out = []
    for shape, p in (((4, 6), 0.5), ((3, 5), 0.2), ((2, 3, 4, 4), 0.3), ((1, 8), 0.75),
                     ((5, 7), 0.95), ((6, 3), 0.999)):
        out.append((rng.normal(size=shape), rng.random(shape) >= p, p,
                    rng.normal(size=shape)))
    out.append((rng.normal(size=(3, 4)), np.ones((3, 4), dtype=bool), 0.0,
                rng.normal(size=(3, 4))))                          # p = 0: the identity
    out.append((rng.normal(size=(2, 5)), np.zeros((2, 5), dtype=bool), 0.5,
                rng.normal(size=(2, 5))))                          # every unit dropped
    for p in (0.0, 0.3, 0.9):                        # the same as nnbook's layer
        nb.seed(0)
        layer = nb.Dropout(p)
        x, dout = rng.normal(size=(20, 30)) + 5.0, rng.normal(size=(20, 30))
        y = layer.forward(x)
        keep = y != 0
        want_y, want_dx = dropout_forward_backward(x, keep, p, dout)
        if not (np.allclose(y, want_y, rtol=1e-12)
                and np.allclose(layer.backward(dout), want_dx, rtol=1e-12)):
            raise AssertionError(f"Dropout({p}): nnbook disagrees with the reference")
    return out


def _dropout_scaled_at_test_time(x, mask, p, dout):
    return x * mask, dout * mask


def _dropout_dx_not_scaled(x, mask, p, dout):
    return x * mask / (1.0 - p), dout * mask


def _dropout_scaled_by_p(x, mask, p, dout):
    return x * mask * p, dout * mask * p


# --- 8. early stopping ------------------------------------------------------------------
def early_stopping(val_losses, patience):
    best, best_epoch = np.inf, -1
    for epoch, loss in enumerate(val_losses):     # epochs counted from 0
        if loss < best:                           # a tie is no improvement
            best, best_epoch = loss, epoch
        if epoch - best_epoch >= patience:
            return best_epoch, epoch
    return best_epoch, None                       # never stopped


def _early_cases(rng):
    curve = np.concatenate([2.0 * np.exp(-np.arange(12) / 4) + 0.3,
                            0.3 + 0.02 * np.arange(1, 9)]) + 0.01 * rng.normal(size=20)
    return [(curve, 3),
            (np.array([1.0, 0.9, 0.9, 0.9, 0.9, 0.8]), 3),      # ties do not improve
            (np.array([1.0, 1.1, 1.2, 1.3, 1.5, 1.4]), 2),      # never improves
            (np.array([0.5, 0.4, 0.3, 0.2]), 0),                # patience 0
            (np.array([0.9, 0.7, 0.6, 0.65, 0.7, 0.61]), 3),    # stops at the last epoch
            (np.array([0.9, 0.7, 0.6, 0.65, 0.7]), 3),          # ... one epoch short
            (np.linspace(1.0, 0.1, 10), 2),                     # always improves
            (np.array([2.0]), 5),
            (np.array([1.0, 0.8, 0.85, 0.8, 0.79, 0.9, 0.95]), 1),
            (1.0 + 0.1 * rng.random(30), 4)]


def _early_ties_improve(val_losses, patience):
    best, best_epoch = np.inf, -1
    for epoch, loss in enumerate(val_losses):
        if loss <= best:
            best, best_epoch = loss, epoch
        if epoch - best_epoch >= patience:
            return best_epoch, epoch
    return best_epoch, None


def _early_one_late(val_losses, patience):
    best, best_epoch = np.inf, -1
    for epoch, loss in enumerate(val_losses):
        if loss < best:
            best, best_epoch = loss, epoch
        if epoch - best_epoch > patience:
            return best_epoch, epoch
    return best_epoch, None


def _early_one_based(val_losses, patience):
    best_epoch, stop = early_stopping(val_losses, patience)
    return best_epoch + 1, None if stop is None else stop + 1


def _early_best_of_whole_curve(val_losses, patience):
    return int(np.argmin(val_losses)), early_stopping(val_losses, patience)[1]


def _early_last_epoch_if_never_stopped(val_losses, patience):
    best_epoch, stop = early_stopping(val_losses, patience)
    return best_epoch, len(val_losses) - 1 if stop is None else stop


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
    "deeper.bottleneck_params": Solution(
        bottleneck_params, _bottleneck_cases,
        wrong={"forgets the projection shortcut": _bottleneck_no_projection,
               "projects only when the stride is not 1": _bottleneck_projection_on_stride_only,
               "gives the convolutions a bias": _bottleneck_conv_bias,
               "forgets the batch norms' gamma and beta": _bottleneck_no_bn}),
    "deeper.dropout_forward_backward": Solution(
        dropout_forward_backward, _dropout_cases,
        wrong={"scales at test time instead of in training": _dropout_scaled_at_test_time,
               "forgets to scale dx": _dropout_dx_not_scaled,
               "scales by p instead of 1/(1 - p)": _dropout_scaled_by_p}),
    "deeper.early_stopping": Solution(
        early_stopping, _early_cases,
        wrong={"a tie counts as an improvement": _early_ties_improve,
               "stops one epoch late (> patience)": _early_one_late,
               "counts epochs from 1": _early_one_based,
               "keeps the best epoch of the whole curve": _early_best_of_whole_curve,
               "reports the last epoch when it never stops": _early_last_epoch_if_never_stopped}),
}
