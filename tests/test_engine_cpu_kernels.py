"""The compiled CPU convolution kernels (nnbook.engine.cpu_kernels) against the
reference layers: Conv2D, then optionally MaxPool2D(2) and ReLU, values and
gradients, float32 and float64, ties in the pools; the engine uses them in nb.fit,
and without numba it runs its NumPy ops with the same results.

The kernels compile once per dtype (cached on disk by numba), so every test here
uses float32 and float64 only and the same two kernel functions.
"""
import numpy as np
import pytest
from helpers import assert_close, rand
from hypothesis import given, settings
from hypothesis import strategies as st

import nnbook as nb
from nnbook.engine import EngineStep, compile_step, cpu_kernels, ops

pytestmark = pytest.mark.skipif(not cpu_kernels.HAVE_NUMBA, reason="numba not installed")


@st.composite
def geometry(draw):
    """A stride-1 convolution (kernel 1..5 wide, so the unrolled 5-tap path and the
    general one both run) whose output has even height and width."""
    n, c, f = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 5)), draw(st.sampled_from([1, 2, 3, 5]))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    ho = 2 * draw(st.integers(max(1, -(-(2 + 2 * ph - kh) // 2)), 4))
    wo = 2 * draw(st.integers(max(1, -(-(2 + 2 * pw - kw) // 2)), 4))
    return (n, c, ho + kh - 1 - 2 * ph, wo + kw - 1 - 2 * pw), (f, c, kh, kw), (ph, pw)


def _data(rng, xs, ws, dtype, ties):
    if ties:        # small integers: many equal outputs in every pooling window
        return tuple(rng.integers(-1, 2, sh).astype(dtype) for sh in (xs, ws, ws[:1]))
    return rand(rng, *xs, dtype=dtype), rand(rng, *ws, dtype=dtype), \
        rand(rng, ws[0], dtype=dtype)


def _reference(x, W, b, pad, pool, relu, dout_rng):
    """Forward and backward through the layers: out, dout, dx, dW, db."""
    dtype = W.dtype
    conv = nb.Conv2D(W.shape[1], W.shape[0], W.shape[2:], padding=pad, dtype=dtype)
    conv.params["W"], conv.params["b"] = W, b
    layers = [conv] + ([nb.MaxPool2D(2)] if pool else []) + ([nb.ReLU()] if relu else [])
    h = x
    for l in layers:
        h = l.forward(h)
    dout = rand(dout_rng, *h.shape, dtype=dtype)
    d = dout
    for l in reversed(layers):
        d = l.backward(d)
    return h, dout, d, conv.grads["W"], conv.grads["b"]


@settings(max_examples=30, deadline=None)
@given(geom=geometry(), seed=st.integers(0, 99), ties=st.booleans(), pool=st.booleans(),
       relu=st.booleans(), dtype=st.sampled_from(["float32", "float64"]))
def test_kernel_equals_reference_layers(geom, seed, ties, pool, relu, dtype):
    xs, ws, pad = geom
    rng = np.random.default_rng(seed)
    x, W, b = _data(rng, xs, ws, dtype, ties)
    out_r, dout, dx_r, dW_r, db_r = _reference(x, W, b, pad, pool, relu,
                                               np.random.default_rng(seed + 1))
    plan = cpu_kernels.ConvPlan(xs, ws, pad, dtype, pool, relu)
    out = plan.forward(x, W, b).copy()
    dx, dW, db = plan.backward(dout, True, True)
    # float32: sums in another order; a bias gradient summed from few terms of both
    # signs loses a few more digits to cancellation
    tol = 1e-4 if dtype == "float32" else 1e-12
    assert_close(out, out_r, tol, "out")
    assert_close(dx, dx_r, tol, "dx")
    assert_close(dW, dW_r, tol, "dW")
    assert_close(db, db_r, tol, "db")
    # a second call on the same buffers (the engine reuses them every step)
    assert_close(plan.forward(x, W, b), out_r, tol, "out again")


def test_kernel_lenet5_shapes_and_ties_against_pytorch():
    """Both LeNet-5 geometries, float64, many ties (blank rows): PyTorch's values and
    gradients (the first maximum of a window takes the gradient)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(3)
    for xs, ws, pad in (((4, 1, 28, 28), (6, 1, 5, 5), 2), ((4, 6, 14, 14), (16, 6, 5, 5), 0)):
        x = rng.integers(-1, 2, xs).astype(np.float64)
        x[:, :, :5] = 0
        W, b = rand(rng, *ws), rand(rng, ws[0])
        plan = cpu_kernels.ConvPlan(xs, ws, (pad, pad), np.float64, True, True)
        out = plan.forward(x, W, b).copy()
        dout = rand(rng, *out.shape)
        dx, dW, db = plan.backward(dout, True, True)
        xt, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, W, b))
        ot = F.relu(F.max_pool2d(F.conv2d(xt, Wt, bt, padding=pad), 2))
        ot.backward(torch.tensor(dout))
        assert_close(out, ot.detach().numpy(), 1e-12, "out")
        for got, t, name in ((dx, xt, "dx"), (dW, Wt, "dW"), (db, bt, "db")):
            assert_close(got, t.grad.numpy(), 1e-12, name)


def test_engine_fuses_conv_pool_relu_and_runs_the_kernels(monkeypatch):
    m = nb.LeNet5(dtype="float32")
    step = compile_step(m, nb.SoftmaxCrossEntropy(), nb.SGD(m.parameters(), lr=0.1))
    assert isinstance(step, EngineStep)
    kinds = [type(op).__name__ for op in step.ops]
    assert kinds[:3] == ["ConvPoolOp", "ConvPoolOp", "FlattenOp"]
    assert step.ops[0].relu is m[2] and step.ops[1].relu is m[5]
    X = np.random.default_rng(0).random((8, 1, 28, 28)).astype(np.float32)
    # the default: the first layer (1 x 6 channels) compiled, the second (6 x 16,
    # above MAX_WORK_CHANNELS) on BLAS (the row-lowered op)
    step(step.gather(X, np.arange(8)), np.arange(8) % 10)
    assert isinstance(step.ops[0].fused, cpu_kernels.ConvPlan)      # 1 x 6
    assert isinstance(step.ops[1].fused, ops._ConvPool)             # 6 x 16
    monkeypatch.setattr(cpu_kernels, "MAX_WORK_CHANNELS", 256)
    step(step.gather(X, np.arange(8)), np.arange(8) % 10)
    assert all(isinstance(op.fused, cpu_kernels.ConvPlan) for op in step.ops[:2])


@pytest.mark.parametrize("numba_present", [True, False])
def test_conv_pool_relu_op_with_and_without_numba(monkeypatch, numba_present):
    """ConvPoolOp with its ReLU: the compiled kernel, or (numba absent) the NumPy
    fused op and the ReLU in place; the same numbers as the three layers."""
    monkeypatch.setattr(cpu_kernels, "HAVE_NUMBA", numba_present)
    rng = np.random.default_rng(5)
    x, W, b = _data(rng, (3, 2, 10, 10), (4, 2, 3, 3), "float64", ties=True)
    out_r, dout, dx_r, dW_r, db_r = _reference(x, W, b, (1, 1), True, True,
                                               np.random.default_rng(6))
    conv = nb.Conv2D(2, 4, 3, padding=1, dtype="float64")
    conv.params["W"], conv.params["b"] = W, b
    op = ops.ConvPoolOp(conv, nb.MaxPool2D(2), first=False, relu=nb.ReLU())
    out = op.forward(x).copy()
    dx = op.backward(dout.copy())
    kind = cpu_kernels.ConvPlan if numba_present else ops._ConvPool
    assert isinstance(op.fused, kind)
    assert_close(out, out_r, 1e-12, "out")
    assert_close(dx, dx_r, 1e-12, "dx")
    assert_close(conv.grads["W"], dW_r, 1e-12, "dW")
    assert_close(conv.grads["b"], db_r, 1e-12, "db")


def test_conv_op_uses_the_kernel_for_stride_1_and_blas_otherwise():
    rng = np.random.default_rng(9)
    for stride, kind in ((1, "kernel"), (2, "fast")):
        layer = nb.Conv2D(2, 3, 3, stride=stride, padding=1, dtype="float64")
        op = ops.ConvOp(layer, first=False)
        x = rand(rng, 2, 2, 9, 8)
        ref = layer.forward(x)
        dout = rand(rng, *ref.shape)
        layer.zero_grad()
        dx_r = layer.backward(dout)
        dW_r = layer.grads["W"].copy()
        out = op.forward(x)
        assert op.cache[0] == kind
        assert_close(out, ref, 1e-12, "out")
        assert_close(op.backward(dout), dx_r, 1e-12, "dx")
        assert_close(layer.grads["W"], dW_r, 1e-12, "dW")


def test_lenet5_fit_with_kernels_equals_without_and_reference(monkeypatch):
    """nb.fit on LeNet-5 with the compiled kernels, with numba 'absent' and through
    the reference layers: the same history and weights (float32 rounding)."""
    rng = np.random.default_rng(12)
    X = rng.random((96, 1, 28, 28)).astype(np.float32)
    X[:, :, :6] = 0                                     # blank rows: ties in the pools
    y = rng.integers(0, 10, 96)
    runs = {}
    for name, present, engine in (("kernels", True, True), ("numpy", False, True),
                                  ("reference", True, False)):
        monkeypatch.setattr(cpu_kernels, "HAVE_NUMBA", present)
        nb.seed(0)
        model = nb.LeNet5(dtype="float32")
        hist = nb.fit(model, nb.SoftmaxCrossEntropy(), nb.SGD(model.parameters(), lr=0.05),
                      X, y, epochs=2, batch_size=32, progress=False, engine=engine)
        runs[name] = hist, model.state_dict()
    h0, w0 = runs["reference"]
    for name in ("kernels", "numpy"):
        h, w = runs[name]
        for k in h:
            assert_close(np.array(h[k]), np.array(h0[k]), 1e-4, f"{name} {k}")
        for k in w:
            assert_close(w[k], w0[k], 1e-4, f"{name} {k}")


def test_row_stride_fills_whole_vectors():
    assert cpu_kernels.row_stride(32, 28) == 32          # 28 * 32 = 896 = 56 * 16
    assert cpu_kernels.row_stride(14, 10) == 16          # 160 = 10 * 16
    assert cpu_kernels.row_stride(9, 7) == 9             # no stride within +25%: unchanged


@st.composite
def strided_geometry(draw):
    """A convolution with stride 2 or 3 (kernel 1..7, so some phases may hold no
    tap), any padding below the kernel size, and at least one output."""
    s = draw(st.integers(2, 3))
    n, c, f = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    ph, pw = draw(st.integers(0, (kh - 1) // 2)), draw(st.integers(0, (kw - 1) // 2))
    h = draw(st.integers(max(1, kh - 2 * ph), kh - 2 * ph + 3 * s))
    w = draw(st.integers(max(1, kw - 2 * pw), kw - 2 * pw + 3 * s))
    return (n, c, h, w), (f, c, kh, kw), s, (ph, pw)


@settings(max_examples=40, deadline=None)
@given(geom=strided_geometry(), seed=st.integers(0, 99),
       dtype=st.sampled_from(["float32", "float64"]))
def test_strided_kernel_equals_the_layer(geom, seed, dtype):
    """The phase-split strided plan: output, input, weight and bias gradients of the
    Conv2D layer, twice on the same buffers."""
    xs, ws, s, pad = geom
    rng = np.random.default_rng(seed)
    x, W, b = _data(rng, xs, ws, dtype, ties=False)
    conv = nb.Conv2D(ws[1], ws[0], ws[2:], stride=s, padding=pad, dtype=dtype)
    conv.params["W"], conv.params["b"] = W, b
    ref = conv.forward(x)
    dout = rand(np.random.default_rng(seed + 1), *ref.shape, dtype=dtype)
    conv.zero_grad()
    dx_r = conv.backward(dout)
    plan = cpu_kernels.StridedConvPlan(xs, ws, s, pad, dtype)
    tol = 1e-4 if dtype == "float32" else 1e-12
    for again in ("", " again"):
        out = plan.forward(x, W, b).copy()
        dx, dW, db = plan.backward(dout, True, True)
        assert_close(out, ref, tol, "out" + again)
        assert_close(dx, dx_r, tol, "dx" + again)
        assert_close(dW, conv.grads["W"], tol, "dW" + again)
        assert_close(db, conv.grads["b"], tol, "db" + again)
    assert plan.backward(dout, False, False)[0::2] == (None, None)


def test_resnet_convolutions_against_pytorch_on_the_kernels():
    """ResNet-15's geometries (7x7 stem, 3x3 stride 1 and 2) on the compiled plans,
    float64: PyTorch's values and gradients."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(4)
    for xs, ws, s, pad in (((3, 1, 28, 28), (8, 1, 7, 7), 1, 0),
                           ((3, 4, 11, 11), (4, 4, 3, 3), 1, 1),
                           ((3, 4, 11, 11), (5, 4, 3, 3), 2, 1),
                           ((3, 6, 6, 6), (6, 6, 3, 3), 2, 1),
                           ((3, 6, 3, 3), (6, 6, 3, 3), 2, 1)):
        x, W, b = rand(rng, *xs), rand(rng, *ws), rand(rng, ws[0])
        plan = cpu_kernels.plan(xs, ws, (s, s), (pad, pad), np.float64)
        out = plan.forward(x, W, b).copy()
        dout = rand(rng, *out.shape)
        dx, dW, db = plan.backward(dout, True, True)
        xt, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, W, b))
        ot = F.conv2d(xt, Wt, bt, stride=s, padding=pad)
        ot.backward(torch.tensor(dout))
        assert_close(out, ot.detach().numpy(), 1e-12, f"out {xs} {ws} s{s}")
        for got, t, name in ((dx, xt, "dx"), (dW, Wt, "dW"), (db, bt, "db")):
            assert_close(got, t.grad.numpy(), 1e-12, f"{name} {xs} {ws} s{s}")


def test_choice_selects_the_kernels_or_blas(monkeypatch):
    """CHOICE: "auto" (stride 1, few channels), "kernel" (every equal-stride
    geometry, the strided plan included) or "blas"; ConvOp follows it and gives the
    layer's numbers either way."""
    rng = np.random.default_rng(10)
    layer = nb.Conv2D(4, 6, 3, stride=2, padding=1, bias=False, dtype="float64")
    x = rand(rng, 2, 4, 9, 9)
    ref = layer.forward(x)
    dout = rand(rng, *ref.shape)
    layer.zero_grad()
    dx_r = layer.backward(dout)
    dW_r = layer.grads["W"].copy()
    for choice, kind in (("auto", "fast"), ("kernel", "kernel"), ("blas", "fast")):
        monkeypatch.setattr(cpu_kernels, "CHOICE", choice)
        op = ops.ConvOp(layer, first=False)
        out = op.forward(x)
        assert op.cache[0] == kind, choice
        if kind == "kernel":
            assert isinstance(op.cache[1], cpu_kernels.StridedConvPlan)
        assert_close(out, ref, 1e-12, f"out {choice}")
        assert_close(op.backward(dout), dx_r, 1e-12, f"dx {choice}")
        assert_close(layer.grads["W"], dW_r, 1e-12, f"dW {choice}")
    assert not cpu_kernels.applies((2, 4, 9, 9), (6, 4, 3, 3), (1, 2), (1, 1))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_resnet_fit_on_the_kernels_equals_reference(monkeypatch, dtype):
    """A small bottleneck ResNet (7x7 stem, stride-2 3x3s) through nb.fit with every
    convolution larger than 1x1 on the compiled kernels: the reference layers'
    history and weights."""
    rng = np.random.default_rng(13)
    X = rng.standard_normal((24, 1, 20, 20)).astype(dtype)
    y = rng.integers(0, 10, 24)
    runs, built = {}, []
    plan = cpu_kernels.plan
    monkeypatch.setattr(cpu_kernels, "plan", lambda *a: built.append(plan(*a)) or built[-1])
    for name, choice, engine in (("kernels", "kernel", True), ("reference", "auto", False)):
        monkeypatch.setattr(cpu_kernels, "CHOICE", choice)
        nb.seed(0)
        m = nb.models.ResNet((1, 1), channels=(8, 16), stem_channels=8, input_size=20,
                             dtype=dtype)
        hist = nb.fit(m, nb.SoftmaxCrossEntropy(), nb.SGD(m.parameters(), lr=0.05,
                                                          momentum=0.9),
                      X, y, epochs=2, batch_size=8, progress=False, engine=engine)
        runs[name] = hist, m.state_dict()
    # the stem (stride 1), the stride-1 and the stride-2 3x3 ran on compiled plans
    geoms = {(type(p).__name__, p.x_shape[1:], p.W_shape) for p in built}
    assert ("ConvPlan", (1, 20, 20), (8, 1, 7, 7)) in geoms
    assert ("ConvPlan", (2, 7, 7), (2, 2, 3, 3)) in geoms
    assert ("StridedConvPlan", (4, 7, 7), (4, 4, 3, 3)) in geoms
    (h1, w1), (h0, w0) = runs["kernels"], runs["reference"]
    tol = 1e-4 if dtype == "float32" else 1e-10
    for k in h1:
        assert_close(np.array(h1[k], float), np.array(h0[k], float), tol, k)
    for k in w1:
        assert_close(w1[k], w0[k], tol, k)
