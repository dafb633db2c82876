"""The training engine's ops for residual networks against the reference layers.

Batch normalisation (1-D and 2-D, with its ReLU, with the stem's max-pool), 1x1
convolutions as one matrix product, residual blocks opened into ops and global
average pooling must give the layers' numbers: outputs, input gradients,
parameter gradients and running statistics, in float32 and float64, training
and evaluation mode, with the numba kernels and with the NumPy passes; and a
small ResNet trained through ``nb.fit`` must end with the same losses, weights
and running statistics as the reference layers.
"""
import copy

import numpy as np
import pytest
from helpers import assert_close

import nnbook as nb
from nnbook.engine import block_ops, compile_step, norm_ops
from nnbook.engine.block_ops import BlockOp, Conv1x1Op, GlobalAvgPoolOp
from nnbook.engine.norm_ops import BatchNormOp, BNReluPoolOp

TOL = {"float32": 2e-5, "float64": 1e-11}
GRAD_TOL = {"float32": 2e-4, "float64": 1e-10}


@pytest.fixture(params=["numba", "numpy"])
def kernels(request, monkeypatch):
    """Both implementations of the batch-norm passes."""
    if request.param == "numba" and not norm_ops.HAVE_NUMBA:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(norm_ops, "ENABLED", request.param == "numba")
    monkeypatch.setattr(norm_ops, "_MIN_CHUNK", 1)     # small arrays split across threads too
    monkeypatch.setenv("NNBOOK_THREADS", "2")
    return request.param


def _layout(x, layout):
    """The same NCHW values stored (N, C, H, W), (N, H, C, W) or (N, H, W, C)."""
    if layout == "nchw":
        return np.ascontiguousarray(x)
    perm = {"nhcw": (0, 2, 1, 3), "nhwc": (0, 2, 3, 1)}[layout]
    back = np.argsort(perm)
    return np.ascontiguousarray(x.transpose(perm)).transpose(back)


def _pair(layer, seed=0):
    """The layer and a copy with perturbed parameters and running statistics."""
    rng = np.random.default_rng(seed)
    for k, v in layer.params.items():
        layer.params[k] = (v + 0.3 * rng.standard_normal(v.shape)).astype(v.dtype)
    for k, v in getattr(layer, "buffers", {}).items():
        layer.buffers[k] = (v + 0.2 * rng.random(v.shape)).astype(v.dtype)
    return layer, copy.deepcopy(layer)


def _compare_grads(ref_layers, op_layers, dtype):
    for a, b in zip(ref_layers, op_layers):
        for k in a.params:
            assert_close(b.grads[k], a.grads[k], GRAD_TOL[dtype], f"{type(a).__name__}.{k}")
        for k in getattr(a, "buffers", {}):
            assert_close(b.buffers[k], a.buffers[k], TOL[dtype], f"{type(a).__name__}.{k}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layout", ["nchw", "nhcw", "nhwc", "1d"])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_op_equals_the_layers(kernels, dtype, layout, relu, training):
    rng = np.random.default_rng(1)
    if layout == "1d":
        ref, lay = _pair(nb.BatchNorm1d(5, dtype=dtype))
        x = (rng.standard_normal((7, 5)) * 2 + 1).astype(dtype)
        d = rng.standard_normal((7, 5)).astype(dtype)
    else:
        ref, lay = _pair(nb.BatchNorm2d(4, dtype=dtype))
        x = _layout((rng.standard_normal((3, 4, 5, 6)) * 2 + 1).astype(dtype), layout)
        d = rng.standard_normal((3, 4, 5, 6)).astype(dtype)
    ref.train(training)
    lay.train(training)
    op = BatchNormOp(lay, relu=relu)
    want = ref.forward(x)
    r = nb.ReLU()
    if relu:
        want = r.forward(want)
    got = op.forward(x)
    assert_close(got, want, TOL[dtype], "out")
    ref.zero_grad()
    want_dx = ref.backward(r.backward(d) if relu else d)
    assert_close(op.backward(d), want_dx, GRAD_TOL[dtype], "dx")
    _compare_grads([ref], [lay], dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("size", [6, 7])            # 7: odd, the pool drops a row
@pytest.mark.parametrize("training", [True, False])
def test_stem_batchnorm_relu_pool_op_equals_the_layers(kernels, dtype, size, training):
    rng = np.random.default_rng(2)
    ref, lay = _pair(nb.BatchNorm2d(3, dtype=dtype))
    ref.train(training)
    lay.train(training)
    relu, pool = nb.ReLU(), nb.MaxPool2D(2)
    x = _layout(rng.standard_normal((4, 3, size, size)).astype(dtype), "nhcw")
    op = BNReluPoolOp(lay, nb.MaxPool2D(2))
    want = pool.forward(relu.forward(ref.forward(x)))
    assert_close(op.forward(x), want, TOL[dtype], "out")
    d = rng.standard_normal(want.shape).astype(dtype)
    ref.zero_grad()
    want_dx = ref.backward(relu.backward(pool.backward(d)))
    assert_close(op.backward(d), want_dx, GRAD_TOL[dtype], "dx")
    _compare_grads([ref], [lay], dtype)


def test_batchnorm_statistics_accumulate_in_float64():
    """Activations far from zero (mean 1000, spread 1): float32 sums of squares would
    lose the variance; the op's statistics are float64 sums."""
    rng = np.random.default_rng(3)
    x = (1000 + rng.standard_normal((64, 2, 16, 16))).astype(np.float32)
    lay = nb.BatchNorm2d(2, dtype="float32")
    op = BatchNormOp(lay)
    op.forward(x)
    x64 = x.astype(np.float64)
    assert_close(op.mean, x64.mean(axis=(0, 2, 3)), 1e-12, "mean")
    assert_close(1 / op.inv ** 2 - lay.eps, x64.var(axis=(0, 2, 3)), 1e-9, "var")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [4, 5])
@pytest.mark.parametrize("bias", [False, True])
def test_conv1x1_op_is_one_gemm_equal_to_the_layer(dtype, stride, size, bias):
    rng = np.random.default_rng(4)
    ref, lay = _pair(nb.Conv2D(3, 5, 1, stride=stride, bias=bias, dtype=dtype))
    op = Conv1x1Op(lay)
    x = _layout(rng.standard_normal((2, 3, size, size)).astype(dtype), "nchw")
    want = ref.forward(x)
    assert_close(op.forward(x), want, TOL[dtype], "out")
    d = rng.standard_normal(want.shape).astype(dtype)
    ref.zero_grad()
    for _ in range(2):          # twice: the scattered stride-2 gradient keeps its zeros
        got_dx = op.backward(d)
    assert_close(got_dx, ref.backward(d), GRAD_TOL[dtype], "dx")
    _compare_grads([ref], [lay], dtype)


BLOCKS = {
    "basic": lambda dt: nb.BasicBlock(4, 4, dtype=dt),
    "basic-projection": lambda dt: nb.BasicBlock(4, 6, stride=2, dtype=dt),
    "bottleneck": lambda dt: nb.Bottleneck(8, 8, dtype=dt),
    "bottleneck-projection": lambda dt: nb.Bottleneck(4, 8, stride=2, dtype=dt),
    "bottleneck-projection-s1": lambda dt: nb.Bottleneck(4, 8, stride=1, dtype=dt),
}


def _children(block):
    return [*block.main, *block.shortcut]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(BLOCKS))
@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_block_op_equals_the_block(kernels, dtype, name, layout):
    rng = np.random.default_rng(5)
    nb.seed(0)
    ref = BLOCKS[name](dtype)
    for l in _children(ref):
        _pair(l, seed=7)
    lay = copy.deepcopy(ref)
    assert BlockOp.applies(lay)
    op = BlockOp(lay)
    x = _layout(rng.standard_normal((3, ref.in_channels, 7, 7)).astype(dtype), layout)
    for _ in range(2):                              # buffers reused on the second step
        want = ref.forward(x)
        assert_close(op.forward(x), want, TOL[dtype], "out")
        d = rng.standard_normal(want.shape).astype(dtype)
        ref.zero_grad()
        assert_close(op.backward(d), ref.backward(d), GRAD_TOL[dtype], "dx")
        _compare_grads(_children(ref), _children(lay), dtype)


def test_global_avg_pool_op_equals_the_layer():
    rng = np.random.default_rng(6)
    x = _layout(rng.standard_normal((2, 3, 4, 5)), "nhwc")
    ref, op = nb.GlobalAvgPool2D(), GlobalAvgPoolOp(nb.GlobalAvgPool2D())
    assert_close(op.forward(x), ref.forward(x), 1e-14, "out")
    d = rng.standard_normal((2, 3))
    assert_close(op.backward(d), ref.backward(d), 1e-14, "dx")


def _small_resnet(block, dtype):
    return nb.models.ResNet((1, 1), channels=(8, 16), block=block, input_size=14,
                            stem_channels=4, dropout=0.0, dtype=dtype)


def test_engine_opens_a_resnet():
    m = nb.models.ResNet15(input_size=28)
    step = compile_step(m, nb.SoftmaxCrossEntropy(), nb.SGD(m.parameters(), lr=0.1))
    kinds = [type(op).__name__ for op in step.ops]
    assert kinds == ["ConvOp", "BNReluPoolOp", "BlockOp", "BlockOp", "BlockOp", "BlockOp",
                     "GlobalAvgPoolOp", "BatchNormOp", "RefOp", "DenseOp"]
    # 1x1 convolutions as GEMMs, 3x3 through the engine's convolution op
    assert [type(c).__name__ for c, _ in step.ops[3].stages] == ["Conv1x1Op", "ConvOp",
                                                                  "Conv1x1Op"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("block", ["bottleneck", "basic"])
@pytest.mark.parametrize("opt", ["sgd", "momentum"])
def test_fit_small_resnet_engine_equals_reference(kernels, dtype, block, opt):
    """Two epochs of 40 images in batches of 16 (a ragged last batch): same losses,
    weights and running statistics through the engine and the reference layers."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((40, 1, 14, 14)).astype(dtype)
    y = rng.integers(0, 10, 40)
    res = []
    for engine in (True, False):
        nb.seed(1)
        m = _small_resnet(block, dtype)
        o = (nb.SGD(m.parameters(), lr=0.05) if opt == "sgd" else
             nb.SGD(m.parameters(), lr=0.05, momentum=0.9))
        nb.seed(2)
        h = nb.fit(m, nb.SoftmaxCrossEntropy(), o, X, y, epochs=2, batch_size=16,
                   progress=False, engine=engine)
        res.append((h, m.state_dict()))
    (h1, w1), (h0, w0) = res
    tol = 1e-4 if dtype == "float32" else 1e-10
    for k in h1:
        assert_close(np.array(h1[k], float), np.array(h0[k], float), tol, k)
    assert w1.keys() == w0.keys()
    assert any("running_var" in k for k in w1)
    for k in w1:
        assert_close(w1[k], w0[k], tol, k)


def test_resnet_ops_switch_off():
    m = _small_resnet("basic", "float64")
    block_ops.ENABLED = False
    try:
        step = compile_step(m, nb.SoftmaxCrossEntropy(), nb.SGD(m.parameters(), lr=0.1))
    finally:
        block_ops.ENABLED = True
    assert not any(isinstance(op, (BlockOp, BatchNormOp)) for op in step.ops)
