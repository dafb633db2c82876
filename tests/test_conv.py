"""Convolution, pooling, flatten and batch norm: implementations against each other,
centred-difference gradient checks (float64, < 1e-7) and PyTorch CPU (float64, 1e-6)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnbook as nb
from helpers import assert_close, rand
from nnbook import conv as C

TOL_GRAD = 1e-7
TOL_REF = 1e-6


@st.composite
def conv_geometry(draw, max_hw=7):
    """Tiny (x shape, W shape, stride, padding) with the kernel fitting the padded input."""
    n = draw(st.integers(1, 2))
    c = draw(st.integers(1, 3))
    f = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, kh - 2 * ph), max_hw))
    w = draw(st.integers(max(1, kw - 2 * pw), max_hw))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return (n, c, h, w), (f, c, kh, kw), (sh, sw), (ph, pw)


def _conv_case(geom, seed):
    xs, ws, s, p = geom
    rng = np.random.default_rng(seed)
    x, W, b = rand(rng, *xs), rand(rng, *ws), rand(rng, ws[0])
    return rng, x, W, b, s, p


# ------------------------------------------------------------------ the three methods agree
@given(geom=conv_geometry(), seed=st.integers(0, 99))
def test_conv_methods_agree(geom, seed):
    rng, x, W, b, s, p = _conv_case(geom, seed)
    ref, cache = C.conv2d_forward(x, W, b, s, p, "naive")
    dout = rand(rng, *ref.shape)
    gref = C.conv2d_backward(dout, cache)
    assert ref.shape[2:] == (C.conv_output_size(x.shape[2], W.shape[2], s[0], p[0]),
                             C.conv_output_size(x.shape[3], W.shape[3], s[1], p[1]))
    for method in ("im2col", "fast"):
        out, cache = C.conv2d_forward(x, W, b, s, p, method)
        assert_close(out, ref, 1e-12, f"{method} out")
        for name, g, gr in zip(("dx", "dW", "db"), C.conv2d_backward(dout, cache), gref):
            assert_close(g, gr, 1e-12, f"{method} {name}")
    # the closed forms derived in the chapter
    assert_close(C.conv2d_backward_input_full(dout, W, x.shape, s, p), gref[0], 1e-12, "full")
    assert_close(C.conv2d_backward_weight_corr(x, dout, W.shape[2:], s, p), gref[1], 1e-12,
                 "corr")


@given(geom=conv_geometry(), seed=st.integers(0, 99))
def test_im2col_col2im_adjoint(geom, seed):
    """<im2col(x), Y> = <x, col2im(Y)>: col2im is the transpose of im2col."""
    rng, x, W, _, s, p = _conv_case(geom, seed)
    kh, kw = W.shape[2:]
    cols = C.im2col(x, kh, kw, s, p)
    Y = rand(rng, *cols.shape)
    lhs = float((cols * Y).sum())
    rhs = float((x * C.col2im(Y, x.shape, kh, kw, s, p)).sum())
    assert abs(lhs - rhs) <= 1e-10 * (abs(lhs) + 1)


def test_fast_falls_back_to_im2col_on_large_images():
    rng = np.random.default_rng(0)
    x, W = rand(rng, 1, 8, 40, 300), rand(rng, 16, 8, 3, 3)   # band would be ~2e8 entries
    out, cache = C.conv2d_forward(x, W, None, 1, 1, "fast")
    assert cache[0] == "im2col"
    xs = x[:, :, :6, :7]                                       # small: row lowering again
    assert C.conv2d_forward(xs, W, None, 1, 1, "fast")[1][0] == "fast"
    assert_close(C.conv2d(xs, W, None, 1, 1, "fast"), C.conv2d(xs, W, None, 1, 1, "naive"), 1e-12)


# ------------------------------------------------------------------ gradient checks
@given(geom=conv_geometry(max_hw=6), seed=st.integers(0, 99),
       method=st.sampled_from(["im2col", "fast"]))
def test_conv_layer_gradcheck(geom, seed, method):
    xs, ws, s, p = geom
    nb.seed(seed)
    layer = C.Conv2D(ws[1], ws[0], ws[2:], stride=s, padding=p, dtype="float64", method=method)
    layer.params["b"] = rand(np.random.default_rng(seed), ws[0])
    x = rand(np.random.default_rng(seed + 1), *xs)
    res = nb.check_layer(layer, x, tol=TOL_GRAD)
    assert res.ok, res


def test_conv_layer_gradcheck_naive():
    layer = C.Conv2D(2, 2, 3, stride=2, padding=1, dtype="float64", method="naive")
    x = rand(np.random.default_rng(0), 1, 2, 5, 4)
    res = nb.check_layer(layer, x, tol=TOL_GRAD)
    assert res.ok, res


@st.composite
def pool_geometry(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(kh, 7)), draw(st.integers(kw, 7))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w), (kh, kw), (sh, sw)


@given(geom=pool_geometry(), seed=st.integers(0, 99),
       cls=st.sampled_from([C.MaxPool2D, C.AvgPool2D]))
def test_pool_gradcheck(geom, seed, cls):
    xs, k, s = geom
    layer = cls(k, s)
    x = rand(np.random.default_rng(seed), *xs)     # continuous values: no ties
    res = nb.check_layer(layer, x, tol=TOL_GRAD)
    assert res.ok, res


@pytest.mark.parametrize("shape", [(2, 3, 4, 6), (1, 2, 5, 7)])
def test_maxpool_2x2_gradcheck(shape):
    x = rand(np.random.default_rng(1), *shape)
    res = nb.check_layer(C.MaxPool2D(2), x, tol=TOL_GRAD)
    assert res.ok, res


@pytest.mark.parametrize("cls,shape", [(C.BatchNorm1d, (5, 3)), (C.BatchNorm2d, (3, 2, 3, 4))])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradcheck(cls, shape, training):
    rng = np.random.default_rng(2)
    layer = cls(shape[1], dtype="float64")
    layer.params["gamma"] = rand(rng, shape[1])
    layer.params["beta"] = rand(rng, shape[1])
    layer.buffers["running_mean"] = rand(rng, shape[1])
    layer.buffers["running_var"] = rng.uniform(0.5, 2, shape[1])
    layer.train(training)
    x = rand(rng, *shape) * 2 + 1
    res = nb.check_layer(layer, x, tol=TOL_GRAD)
    assert res.ok, res


def test_flatten_gradcheck_and_order():
    x = rand(np.random.default_rng(3), 2, 3, 2, 4)
    layer = C.Flatten()
    assert np.array_equal(layer.forward(x), x.reshape(2, -1))
    assert nb.check_layer(layer, x, tol=TOL_GRAD).ok


# ------------------------------------------------------------------ PyTorch

def _t(a):
    import torch
    return torch.tensor(np.ascontiguousarray(a), dtype=torch.float64, requires_grad=True)


@given(geom=conv_geometry(), seed=st.integers(0, 99),
       method=st.sampled_from(["naive", "im2col", "fast"]))
def test_conv_vs_torch(geom, seed, method):
    torch = pytest.importorskip("torch")
    rng, x, W, b, s, p = _conv_case(geom, seed)
    layer = C.Conv2D(W.shape[1], W.shape[0], W.shape[2:], stride=s, padding=p,
                     dtype="float64", method=method)
    layer.params["W"], layer.params["b"] = W, b
    out = layer.forward(x)
    dout = rand(rng, *out.shape)
    dx = layer.backward(dout)
    xt, Wt, bt = _t(x), _t(W), _t(b)
    ot = torch.nn.functional.conv2d(xt, Wt, bt, stride=s, padding=p)
    ot.backward(torch.tensor(dout))
    assert_close(out, ot.detach().numpy(), TOL_REF, "out")
    assert_close(dx, xt.grad.numpy(), TOL_REF, "dx")
    assert_close(layer.grads["W"], Wt.grad.numpy(), TOL_REF, "dW")
    assert_close(layer.grads["b"], bt.grad.numpy(), TOL_REF, "db")


@given(geom=pool_geometry(), seed=st.integers(0, 99), ties=st.booleans())
def test_pools_vs_torch(geom, seed, ties):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    xs, k, s = geom
    rng = np.random.default_rng(seed)
    # ties: small integers with many repeats (like ReLU outputs); torch routes the
    # gradient to the first maximum of each window and so must we
    x = rng.integers(0, 3, xs).astype(np.float64) if ties else rand(rng, *xs)
    for cls, fn in ((C.MaxPool2D, F.max_pool2d), (C.AvgPool2D, F.avg_pool2d)):
        layer = cls(k, s)
        out = layer.forward(x)
        dout = rand(rng, *out.shape)
        dx = layer.backward(dout)
        xt = _t(x)
        ot = fn(xt, k, s)
        ot.backward(torch.tensor(dout))
        assert_close(out, ot.detach().numpy(), TOL_REF, f"{cls.__name__} out")
        assert_close(dx, xt.grad.numpy(), TOL_REF, f"{cls.__name__} dx")


@pytest.mark.parametrize("cls,shape", [(C.BatchNorm1d, (6, 4)), (C.BatchNorm2d, (4, 3, 5, 2))])
def test_batchnorm_vs_torch(cls, shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    layer = cls(shape[1], dtype="float64")
    g, bta = rand(rng, shape[1]), rand(rng, shape[1])
    layer.params["gamma"], layer.params["beta"] = g, bta
    tl = (torch.nn.BatchNorm1d if cls is C.BatchNorm1d else torch.nn.BatchNorm2d)(
        shape[1], dtype=torch.float64)
    with torch.no_grad():
        tl.weight.copy_(torch.tensor(g))
        tl.bias.copy_(torch.tensor(bta))
    for step in range(3):                  # training steps: outputs, grads, running stats
        x = rand(rng, *shape) * 3 + step
        dout = rand(rng, *shape)
        layer.zero_grad()
        out = layer.forward(x)
        dx = layer.backward(dout)
        xt = _t(x)
        tl.zero_grad()
        ot = tl(xt)
        ot.backward(torch.tensor(dout))
        assert_close(out, ot.detach().numpy(), TOL_REF, "out")
        assert_close(dx, xt.grad.numpy(), TOL_REF, "dx")
        assert_close(layer.grads["gamma"], tl.weight.grad.numpy(), TOL_REF, "dgamma")
        assert_close(layer.grads["beta"], tl.bias.grad.numpy(), TOL_REF, "dbeta")
        assert_close(layer.buffers["running_mean"], tl.running_mean.numpy(), TOL_REF, "rmean")
        assert_close(layer.buffers["running_var"], tl.running_var.numpy(), TOL_REF, "rvar")
    layer.eval()
    tl.eval()
    x = rand(rng, *shape)
    xt = _t(x)
    ot = tl(xt)
    out = layer.forward(x)
    dout = rand(rng, *shape)
    ot.backward(torch.tensor(dout))
    assert_close(out, ot.detach().numpy(), TOL_REF, "eval out")
    assert_close(layer.backward(dout), xt.grad.numpy(), TOL_REF, "eval dx")


# ------------------------------------------------------------------ layouts, float32, purity
def test_fast_output_layout_feeds_next_layers():
    """The fast path returns an NCHW view of (N, H, C, W) memory; every layer accepts it."""
    rng = np.random.default_rng(5)
    x = rand(rng, 2, 3, 9, 8)
    c1 = C.Conv2D(3, 4, 3, padding=1, dtype="float64")
    c2 = C.Conv2D(4, 2, 3, stride=2, dtype="float64")
    h = c1.forward(x)
    assert h.shape == (2, 4, 9, 8) and not h.flags.c_contiguous
    out = c2.forward(C.MaxPool2D(2).forward(h))
    ref = C.conv2d(C.maxpool2d_forward(np.ascontiguousarray(h), 2)[0],
                   c2.params["W"], c2.params["b"], 2, 0, "naive")
    assert_close(out, ref, 1e-12)


def test_float32_matches_float64():
    rng = np.random.default_rng(6)
    x, W, b = rand(rng, 4, 3, 12, 12), rand(rng, 5, 3, 5, 5), rand(rng, 5)
    ref = C.conv2d(x, W, b, 1, 2, "im2col")
    f = lambda a: a.astype(np.float32)  # noqa: E731
    for m in ("im2col", "fast"):
        out = C.conv2d(f(x), f(W), f(b), 1, 2, m)
        assert out.dtype == np.float32
        assert_close(out, ref, 1e-6, m)


def test_inputs_not_modified():
    rng = np.random.default_rng(7)
    x = rand(rng, 2, 2, 6, 6)
    x0 = x.copy()
    model = nb.Sequential(C.Conv2D(2, 3, 3, padding=1, dtype="float64"), C.BatchNorm2d(3, dtype="float64"),
                          C.MaxPool2D(2), nb.ReLU(), C.AvgPool2D(3), C.Flatten())
    out = model.forward(x)
    dout = np.ones_like(out)
    d0 = dout.copy()
    model.backward(dout)
    assert np.array_equal(x, x0) and np.array_equal(dout, d0)


def test_save_load_roundtrip(tmp_path):
    from nnbook.lenet import LeNet5
    model = LeNet5(dtype="float64")
    x = rand(np.random.default_rng(8), 3, 1, 28, 28)
    path = tmp_path / "lenet.npz"
    model.save(path)
    loaded = nb.load_model(path)
    assert [type(l).__name__ for l in loaded] == [type(l).__name__ for l in model]
    assert_close(loaded.forward(x), model.forward(x), 1e-14)


# ------------------------------------------------------------------ errors
def test_errors_are_clear():
    x = np.zeros((2, 3, 5, 5))
    layer = C.Conv2D(3, 4, 3, dtype="float64")
    with pytest.raises(ValueError, match="input channels|expected shape"):
        layer.forward(np.zeros((2, 2, 5, 5)))
    with pytest.raises(ValueError, match="4-D"):
        layer.forward(np.zeros((2, 75)))
    with pytest.raises(ValueError, match="larger than the padded input"):
        layer.forward(np.zeros((2, 3, 2, 5)))
    with pytest.raises(ValueError, match="larger than the padded input"):
        C.conv2d(x, np.zeros((1, 3, 6, 6)))
    with pytest.raises(ValueError, match="input channels"):
        C.conv2d(x, np.zeros((1, 2, 3, 3)))
    with pytest.raises(ValueError, match="stride"):
        C.Conv2D(3, 4, 3, stride=0)
    with pytest.raises(ValueError, match="padding"):
        C.Conv2D(3, 4, 3, padding=-1)
    with pytest.raises(TypeError, match="stride"):
        C.Conv2D(3, 4, 3, stride=1.5)
    with pytest.raises(ValueError, match="kernel_size"):
        C.Conv2D(3, 4, (3, 3, 3))
    with pytest.raises(ValueError, match="method"):
        C.Conv2D(3, 4, 3, method="winograd")
    with pytest.raises(TypeError, match="dtype"):
        layer.forward(x.astype(np.float32))
    with pytest.raises(ValueError, match="pooling window"):
        C.MaxPool2D(3).forward(np.zeros((1, 1, 2, 5)))
    with pytest.raises(ValueError, match="features/channels"):
        C.BatchNorm2d(4, dtype="float64").forward(x)
    with pytest.raises(ValueError, match="more than one value"):
        C.BatchNorm1d(3, dtype="float64").forward(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="kernel size 6 is larger"):
        C.conv_output_size(4, 6, 1, 0)


@pytest.mark.parametrize("n,k,s,p", [(28, 5, 1, 2), (32, 5, 1, 0), (7, 3, 2, 1), (5, 5, 3, 0)])
def test_output_size_formula(n, k, s, p):
    layer = C.Conv2D(1, 1, k, stride=s, padding=p, dtype="float64")
    out = layer.forward(np.zeros((1, 1, n, n)))
    assert out.shape[2] == C.conv_output_size(n, k, s, p) == (n + 2 * p - k) // s + 1
    assert layer.output_shape((1, 1, n, n)) == out.shape
