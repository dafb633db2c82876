"""The core against closed forms and plain-Python loops written here, without PyTorch.

The PyTorch comparisons (``-m torch``) skip where torch is absent; these tests
check the same rules from their definitions alone: the optimizers' update rules
(as PyTorch documents them), batch normalisation's running statistics, the
max-pool's first-maximum tie rule, softmax at huge logits, and ``nb.evaluate``
with a short last batch.  Only the public API is used.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import nnbook as nb

TOL = 1e-12


@pytest.fixture(autouse=True)
def _numpy_float64():
    nb.use("numpy")
    old = nb.get_default_dtype()
    nb.set_default_dtype("float64")
    yield
    nb.set_default_dtype(old)


def _np(a):
    return np.asarray(nb.to_numpy(a), dtype=np.float64)


# ----------------------------------------------------------------------------- optimizers
# Three parameters, four steps; each step's gradients are set directly in layer.grads.
P0 = [0.5, -1.25, 2.0]
GRADS = [[0.3, -0.7, 1.1], [-0.2, 0.4, 0.9], [0.05, -1.5, -0.6], [0.8, 0.1, -0.3]]


def _run_nnbook(make_opt):
    """Step an nnbook optimizer on a layer's bias vector (W is left out of the optimizer)."""
    layer = nb.Dense(1, 3, dtype="float64")
    layer.params["b"] = np.array(P0, dtype=np.float64)
    opt = make_opt([p for p in layer.parameters() if p.name == "b"])
    for g in GRADS:
        layer.grads["b"] = np.array(g, dtype=np.float64)
        opt.step()
    return _np(layer.params["b"])


def _sgd_ref(lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    """torch.optim.SGD's documented algorithm, one element at a time."""
    out = []
    for i, p in enumerate(P0):
        b = None
        for t, grads in enumerate(GRADS, start=1):
            g = grads[i] + weight_decay * p
            if momentum:
                b = g if t == 1 else momentum * b + (1 - dampening) * g
                g = g + momentum * b if nesterov else b
            p = p - lr * g
        out.append(p)
    return np.array(out)


def _rmsprop_ref(lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    """torch.optim.RMSprop's documented algorithm."""
    out = []
    for i, p in enumerate(P0):
        v = gavg = buf = 0.0
        for grads in GRADS:
            g = grads[i] + weight_decay * p
            v = alpha * v + (1 - alpha) * g * g
            vt = v
            if centered:
                gavg = alpha * gavg + (1 - alpha) * g
                vt = v - gavg * gavg
            if momentum > 0:
                buf = momentum * buf + g / (math.sqrt(vt) + eps)
                p = p - lr * buf
            else:
                p = p - lr * g / (math.sqrt(vt) + eps)
        out.append(p)
    return np.array(out)


def _adam_ref(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    """torch.optim.Adam / AdamW's documented algorithms (amsgrad off)."""
    b1, b2 = betas
    out = []
    for i, p in enumerate(P0):
        m = v = 0.0
        for t, grads in enumerate(GRADS, start=1):
            g = grads[i]
            if decoupled:
                p = p - lr * weight_decay * p
            else:
                g = g + weight_decay * p
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            mhat = m / (1 - b1 ** t)
            vhat = v / (1 - b2 ** t)
            p = p - lr * mhat / (math.sqrt(vhat) + eps)
        out.append(p)
    return np.array(out)


def _adagrad_ref(lr, eps=1e-10, weight_decay=0.0):
    """torch.optim.Adagrad's documented algorithm with lr_decay = 0."""
    out = []
    for i, p in enumerate(P0):
        s = 0.0
        for grads in GRADS:
            g = grads[i] + weight_decay * p
            s = s + g * g
            p = p - lr * g / (math.sqrt(s) + eps)
        out.append(p)
    return np.array(out)


SGD_CASES = [dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.05, momentum=0.8, dampening=0.3),
             dict(lr=0.1, momentum=0.9, nesterov=True), dict(lr=0.1, weight_decay=0.2),
             dict(lr=0.1, momentum=0.7, weight_decay=0.1, nesterov=True),
             dict(lr=0.1, momentum=0.9, dampening=0.5, weight_decay=0.05)]


@pytest.mark.parametrize("kw", SGD_CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_sgd_steps_match_the_documented_rule(kw):
    got = _run_nnbook(lambda ps: nb.SGD(ps, **kw))
    np.testing.assert_allclose(got, _sgd_ref(**kw), rtol=TOL, atol=TOL)


RMSPROP_CASES = [dict(lr=0.01), dict(lr=0.01, alpha=0.9), dict(lr=0.01, momentum=0.9),
                 dict(lr=0.01, centered=True), dict(lr=0.01, centered=True, momentum=0.5),
                 dict(lr=0.02, weight_decay=0.1, eps=1e-6)]


@pytest.mark.parametrize("kw", RMSPROP_CASES,
                         ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_rmsprop_steps_match_the_documented_rule(kw):
    got = _run_nnbook(lambda ps: nb.RMSprop(ps, **kw))
    np.testing.assert_allclose(got, _rmsprop_ref(**kw), rtol=TOL, atol=TOL)


ADAM_CASES = [dict(lr=0.1), dict(lr=0.05, betas=(0.8, 0.9)), dict(lr=0.1, weight_decay=0.1),
              dict(lr=0.1, eps=1e-3)]


@pytest.mark.parametrize("kw", ADAM_CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_adam_steps_match_the_documented_rule(kw):
    got = _run_nnbook(lambda ps: nb.Adam(ps, **kw))
    np.testing.assert_allclose(got, _adam_ref(**kw), rtol=TOL, atol=TOL)


@pytest.mark.parametrize("kw", [dict(lr=0.1), dict(lr=0.1, weight_decay=0.3),
                                dict(lr=0.05, betas=(0.8, 0.95), weight_decay=0.1)],
                         ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_adamw_steps_match_the_documented_rule(kw):
    got = _run_nnbook(lambda ps: nb.AdamW(ps, **kw))
    ref = _adam_ref(decoupled=True, **{"weight_decay": 0.01, **kw})   # PyTorch's default 0.01
    np.testing.assert_allclose(got, ref, rtol=TOL, atol=TOL)
    if kw.get("weight_decay"):     # decoupled decay is not Adam's L2 term
        assert np.abs(got - _adam_ref(**kw)).max() > 1e-6


@pytest.mark.parametrize("kw", [dict(lr=0.1), dict(lr=0.5, weight_decay=0.1), dict(lr=0.1, eps=1e-3)],
                         ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_adagrad_steps_match_the_documented_rule(kw):
    got = _run_nnbook(lambda ps: nb.Adagrad(ps, **kw))
    np.testing.assert_allclose(got, _adagrad_ref(**kw), rtol=TOL, atol=TOL)


def test_optimizers_step_every_parameter_of_a_model():
    """Two layers, two parameters each: every one moves by its own plain-SGD step."""
    model = nb.Sequential(nb.Dense(2, 3), nb.Dense(3, 1))
    rng = np.random.default_rng(1)
    before, grads = {}, {}
    for i, layer in enumerate(model.layers):
        for k, v in layer.params.items():
            before[i, k] = _np(v).copy()
            grads[i, k] = rng.standard_normal(v.shape)
            layer.grads[k] = grads[i, k].copy()
    nb.SGD(model.parameters(), lr=0.25).step()
    for (i, k), b in before.items():
        np.testing.assert_allclose(_np(model.layers[i].params[k]), b - 0.25 * grads[i, k],
                                   rtol=TOL, atol=TOL)


# ----------------------------------------------------------------------------- batch norm
def _running(layer, name):
    buffers = getattr(layer, "buffers", None)
    if isinstance(buffers, dict) and name in buffers:
        return _np(buffers[name])
    return _np(getattr(layer, name))


def _bn_reference(batches, momentum, eps, gamma, beta):
    """Per channel, by loops: the training outputs and the running statistics after
    each batch (biased variance normalises, the unbiased one is averaged in)."""
    C = batches[0].shape[1]
    rm, rv = [0.0] * C, [1.0] * C
    outs = []
    for x in batches:
        out = np.empty_like(x)
        for c in range(C):
            vals = [float(v) for v in x[:, c].reshape(-1)]
            m = len(vals)
            mean = math.fsum(vals) / m
            ss = math.fsum((v - mean) ** 2 for v in vals)
            var_b, var_u = ss / m, ss / (m - 1)
            out[:, c] = (x[:, c] - mean) / math.sqrt(var_b + eps) * gamma[c] + beta[c]
            rm[c] = (1 - momentum) * rm[c] + momentum * mean
            rv[c] = (1 - momentum) * rv[c] + momentum * var_u
        outs.append(out)
    return outs, np.array(rm), np.array(rv)


@pytest.mark.parametrize("momentum", [0.1, 0.3])
@pytest.mark.parametrize("kind,shape", [("1d", (5, 4)), ("1d", (3, 2)), ("2d", (2, 3, 3, 2)),
                                        ("2d", (3, 2, 2, 3))])
def test_batchnorm_running_statistics_and_eval_mode(kind, shape, momentum):
    eps = 1e-5
    C = shape[1]
    cls = nb.BatchNorm1d if kind == "1d" else nb.BatchNorm2d
    layer = cls(C, eps=eps, momentum=momentum, dtype="float64")
    rng = np.random.default_rng(7)
    gamma = 1.0 + 0.5 * rng.standard_normal(C)
    beta = rng.standard_normal(C)
    layer.params["gamma"] = gamma.copy()
    layer.params["beta"] = beta.copy()
    batches = [3.0 * rng.standard_normal(shape) + rng.standard_normal() for _ in range(3)]
    want_out, rm, rv = _bn_reference(batches, momentum, eps, gamma, beta)
    layer.train()
    for x, want in zip(batches, want_out):
        np.testing.assert_allclose(_np(layer.forward(x.copy())), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_running(layer, "running_mean"), rm, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(_running(layer, "running_var"), rv, rtol=TOL, atol=TOL)

    # evaluation: the running statistics normalise, and they stay where they are
    layer.eval()
    x = rng.standard_normal(shape)
    bshape = (1, C) + (1,) * (len(shape) - 2)
    want = ((x - rm.reshape(bshape)) / np.sqrt(rv.reshape(bshape) + eps) * gamma.reshape(bshape)
            + beta.reshape(bshape))
    np.testing.assert_allclose(_np(layer.forward(x)), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_running(layer, "running_var"), rv, rtol=TOL, atol=TOL)


# ----------------------------------------------------------------------------- max-pooling
def _pool_reference(x, kernel, stride, dout):
    """Max of every window and dx with each window's gradient on its FIRST maximum
    in row-major window order (PyTorch's rule), by plain loops."""
    (kh, kw), (sh, sw) = kernel, stride
    N, C, H, W = x.shape
    Ho, Wo = (H - kh) // sh + 1, (W - kw) // sw + 1
    out = np.zeros((N, C, Ho, Wo))
    dx = np.zeros(x.shape)
    for n, c, i, j in itertools.product(range(N), range(C), range(Ho), range(Wo)):
        best, at = None, None
        for a in range(kh):
            for b in range(kw):
                v = x[n, c, i * sh + a, j * sw + b]
                if best is None or v > best:          # strict: a later tie never wins
                    best, at = v, (i * sh + a, j * sw + b)
        out[n, c, i, j] = best
        dx[n, c, at[0], at[1]] += dout[n, c, i, j]
    return out, dx


def _pool(x, kernel, stride, dout):
    layer = nb.MaxPool2D(kernel_size=kernel, stride=stride)
    out = layer.forward(x)
    dx = layer.backward(dout)
    return _np(out), _np(dx)


def test_maxpool_ties_go_to_the_first_maximum():
    # four 2x2 windows: all four equal; tie top-right/bottom-left; tie in the
    # bottom row; tie top-left/bottom-right
    x = np.array([[5., 5., 1., 7.],
                  [5., 5., 7., 0.],
                  [0., 2., 4., 3.],
                  [3., 3., 0., 4.]]).reshape(1, 1, 4, 4)
    dout = np.array([[1., 2.], [3., 4.]]).reshape(1, 1, 2, 2)
    want = np.array([[1., 0., 0., 2.],
                     [0., 0., 0., 0.],
                     [0., 0., 4., 0.],
                     [3., 0., 0., 0.]]).reshape(1, 1, 4, 4)
    for dtype in (np.float64, np.float32):
        out, dx = _pool(x.astype(dtype), 2, None, dout.astype(dtype))
        np.testing.assert_array_equal(out, [[[[5., 7.], [3., 4.]]]])
        np.testing.assert_array_equal(dx, want)
    # a window whose maximum is at the bottom: the top row's smaller values get nothing
    x = np.array([[1., 1.], [2., 2.]]).reshape(1, 1, 2, 2)
    _, dx = _pool(x, 2, None, np.ones((1, 1, 1, 1)))
    np.testing.assert_array_equal(dx, [[[[0., 0.], [1., 0.]]]])


POOL_CASES = [  # (x shape, kernel, stride): the 2x2 fast path, odd sizes, overlapping windows
    ((2, 3, 6, 8), 2, None), ((2, 2, 5, 7), 2, None), ((2, 2, 7, 7), 3, 2), ((1, 3, 5, 6), 2, 1),
    ((2, 2, 6, 5), 3, 1), ((1, 2, 6, 7), (2, 3), (1, 2)), ((1, 1, 6, 6), 3, None)]


@pytest.mark.parametrize("shape,kernel,stride", POOL_CASES)
@pytest.mark.parametrize("layout", ["nchw", "nhcw", "strided"])
def test_maxpool_with_many_ties_matches_the_loop_reference(shape, kernel, stride, layout):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, size=shape).astype(np.float64)      # values 0, 1, 2: ties everywhere
    if layout == "nhcw":      # (N, H, C, W) memory, as a fast convolution leaves it
        x = np.ascontiguousarray(x.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
    elif layout == "strided":  # neither layout: a view into a larger array
        big = np.zeros(shape[:3] + (2 * shape[3],))
        big[..., ::2] = x
        x = big[..., ::2]
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    s = k if stride is None else ((stride, stride) if isinstance(stride, int) else stride)
    Ho, Wo = (shape[2] - k[0]) // s[0] + 1, (shape[3] - k[1]) // s[1] + 1
    dout = rng.integers(1, 9, size=(shape[0], shape[1], Ho, Wo)).astype(np.float64)
    want_out, want_dx = _pool_reference(np.array(x), k, s, dout)
    out, dx = _pool(x, kernel, stride, dout)
    np.testing.assert_array_equal(out, want_out)
    np.testing.assert_array_equal(dx, want_dx)


# ----------------------------------------------------------------------------- softmax
BIG = np.array([[1e4, -1e4, 0.0],
                [1e4, 1e4 - 1, -1e4],
                [-1e4, -1e4, -1e4 + 2],
                [1e4, 1e4, 1e4]])


def _softmax_reference(z):
    out = []
    for row in z.tolist():
        m = max(row)
        e = [math.exp(v - m) for v in row]
        s = math.fsum(e)
        out.append([v / s for v in e])
    return np.array(out)


def _xent_reference(z, y):
    """Mean of log sum_k e^{z_k} - z_y, with the maximum taken out first."""
    losses = []
    for row, label in zip(z.tolist(), y):
        m = max(row)
        losses.append(m + math.log(math.fsum(math.exp(v - m) for v in row)) - row[label])
    return math.fsum(losses) / len(losses)


def test_softmax_reference_is_the_closed_form():
    # [1e4, 1e4 - 1, -1e4] -> 1/(1 + e^-1), e^-1/(1 + e^-1), 0 (e^-20000 underflows)
    r = _softmax_reference(BIG)
    e1 = math.exp(-1)
    np.testing.assert_allclose(r[1], [1 / (1 + e1), e1 / (1 + e1), 0.0], rtol=TOL, atol=0)
    np.testing.assert_allclose(r[3], [1 / 3] * 3, rtol=TOL)


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_softmax_at_huge_logits(dtype, rtol):
    z = BIG.astype(dtype)
    want = _softmax_reference(z.astype(np.float64))
    for got in (nb.functional.softmax(z), nb.Softmax().forward(z.copy())):
        got = _np(got)
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-30)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=rtol)


@pytest.mark.parametrize("K", [3, 40])          # few classes and many (two code paths)
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("targets", ["labels", "onehot"])
def test_softmax_cross_entropy_at_huge_logits(K, dtype, rtol, targets):
    z = np.full((len(BIG), K), -1e4)
    z[:, :3] = BIG
    z = z.astype(dtype)
    y = np.array([0, 1, 2, 1])
    z64 = z.astype(np.float64)
    want_loss = _xent_reference(z64, y)
    onehot = np.eye(K)[y]
    want_grad = (_softmax_reference(z64) - onehot) / len(y)
    loss = nb.SoftmaxCrossEntropy()
    got = loss.forward(z, y if targets == "labels" else onehot.astype(dtype))
    assert math.isfinite(got)
    assert got == pytest.approx(want_loss, rel=rtol)
    g = _np(loss.backward())
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g, want_grad, rtol=rtol, atol=1e-30 if dtype == np.float64 else 1e-8)


# ----------------------------------------------------------------------------- evaluate
def _by_hand(model, X, y):
    """Mean loss and accuracy of the whole set at once, from the parameters."""
    d1, d2 = model.layers[0], model.layers[2]
    h = np.maximum(X @ _np(d1.params["W"]) + _np(d1.params["b"]), 0)
    z = h @ _np(d2.params["W"]) + _np(d2.params["b"])
    return _xent_reference(z, y), float(np.mean(z.argmax(axis=1) == y))


@pytest.mark.parametrize("n,batch_size", [(10, 4), (10, 3), (7, 5), (10, 10), (10, 64)])
def test_evaluate_weights_a_short_last_batch_by_its_size(n, batch_size):
    nb.seed(5)
    model = nb.Sequential(nb.Dense(3, 5), nb.ReLU(), nb.Dense(5, 4))
    rng = np.random.default_rng(11)
    X = rng.standard_normal((n, 3))
    y = rng.integers(0, 4, size=n)
    X[-1] *= 40.0       # the short last batch has a large loss, unlike the others
    want_loss, want_acc = _by_hand(model, X, y)
    got_loss, got_acc = nb.evaluate(model, nb.SoftmaxCrossEntropy(), X, y, batch_size=batch_size)
    assert got_loss == pytest.approx(want_loss, rel=TOL, abs=TOL)
    assert got_acc == pytest.approx(want_acc, abs=TOL)
    # one-hot targets give the same numbers
    got = nb.evaluate(model, nb.SoftmaxCrossEntropy(), X, np.eye(4)[y], batch_size=batch_size)
    assert got[0] == pytest.approx(want_loss, rel=TOL, abs=TOL)
    assert got[1] == pytest.approx(want_acc, abs=TOL)
