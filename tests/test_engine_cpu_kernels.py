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
