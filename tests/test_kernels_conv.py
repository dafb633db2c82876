"""Convolution, im2col and pooling kernels (nnbook.kernels.conv2d / im2col / pool).

Every kernel version runs on numba's CUDA simulator (no GPU here) on tiny
shapes -- odd sizes, several strides, paddings and channel counts, tiles that
do not divide the problem -- and is compared with the NumPy reference in
float64.  The references themselves are compared with PyTorch (CPU, float64).
Outputs start as NaN on the simulator, so an element a kernel skips fails.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnbook.kernels import conv2d as K
from nnbook.kernels import im2col as I
from nnbook.kernels import pool as PL

SMALL = K.IGEMM_SMALL
# (x shape, out channels, filter, stride, padding): ragged tiles everywhere
CASES = [((2, 3, 7, 6), 4, (3, 3), 1, 1),
         ((1, 2, 9, 8), 5, (3, 2), 2, 0),
         ((2, 1, 6, 7), 3, (2, 3), (2, 1), (1, 2)),
         ((1, 4, 5, 5), 2, (5, 5), 1, 2)]
IDS = ["s1p1", "s2p0-rect", "mixed-stride-pad", "5x5-same"]


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("version", K.FORWARD_VERSIONS)
def test_forward_versions(version, case):
    shape, k, rs, s, p = case
    assert K.check("forward", version, shape, k, rs, s, p, tile=SMALL) < 1e-5


@pytest.mark.parametrize("case", CASES[:3], ids=IDS[:3])
@pytest.mark.parametrize("version", K.DGRAD_VERSIONS)
def test_dgrad_versions(version, case):
    shape, k, rs, s, p = case
    assert K.check("dgrad", version, shape, k, rs, s, p, tile=SMALL) < 1e-5


@pytest.mark.parametrize("case", CASES[:3], ids=IDS[:3])
@pytest.mark.parametrize("version", K.WGRAD_VERSIONS)
def test_wgrad_versions(version, case):
    shape, k, rs, s, p = case
    assert K.check("wgrad", version, shape, k, rs, s, p, tile=SMALL, splits=1) < 1e-5


def test_wgrad_split_k_atomics():
    # the N·P·Q reduction split over 3 blocks, combined with atomic adds
    assert K.check("wgrad", 3, (2, 2, 6, 5), 3, (3, 3), 1, 1, tile=SMALL, splits=3) < 1e-5


def test_igemm_gpu_tile_on_the_simulator():
    # the 64×64 tile meant for the GPU, once, on a problem far smaller than one tile
    assert K.check("forward", 3, (1, 2, 5, 4), 3, (3, 3), 1, 1) < 1e-5


def test_v2_tile_larger_than_output_and_many_channel_groups():
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (1, 2, 4, 3)).astype(np.float32)
    w = rng.uniform(-1, 1, (7, 2, 2, 2)).astype(np.float32)    # 7 channels: KB=4 leaves a ragged group
    y = K.conv2d_forward(x, w, None, 1, 0, version=2, v2_tile=(4, 4, 4))
    ref = K.conv2d_forward_ref(x.astype(np.float64), w.astype(np.float64))
    assert K.assert_close(y, ref, 1e-5) < 1e-5


@settings(max_examples=6, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 3), h=st.integers(3, 7), w=st.integers(3, 7),
       k=st.integers(1, 3), r=st.integers(1, 3), s=st.integers(1, 3), stride=st.integers(1, 3),
       pad=st.integers(0, 1))
def test_forward_v1_and_dgrad_v1_random_shapes(n, c, h, w, k, r, s, stride, pad):
    if h + 2 * pad < r or w + 2 * pad < s:
        return
    assert K.check("forward", 1, (n, c, h, w), k, (r, s), stride, pad) < 1e-5
    assert K.check("dgrad", 1, (n, c, h, w), k, (r, s), stride, pad) < 1e-5


# ----------------------------------------------------------------------------- im2col path

IM_CASES = [((1, 2, 5, 4), 3, (3, 3), 1, 1), ((2, 1, 6, 5), 2, (2, 3), 2, (0, 1))]


@pytest.mark.parametrize("case", IM_CASES, ids=["s1p1", "s2-rect"])
@pytest.mark.parametrize("op", ["im2col", "col2im", "forward", "dgrad", "wgrad"])
def test_im2col_path(op, case):
    shape, k, rs, s, p = case
    assert I.check(op, shape, k, rs, s, p) < 1e-5


def test_col2im_is_the_adjoint_of_im2col():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 5))
    cols = I.im2col_ref(x, (3, 2), 2, 1)
    c = rng.standard_normal(cols.shape)
    lhs = np.sum(cols * c)
    rhs = np.sum(x * I.col2im_ref(c, x.shape, (3, 2), 2, 1))
    assert abs(lhs - rhs) < 1e-10 * abs(lhs)


# ----------------------------------------------------------------------------- pooling

POOL = [(2, None, 0), (3, 2, 1), (3, 1, 1), ((3, 2), (2, 1), (1, 0))]


@pytest.mark.parametrize("cfg", POOL, ids=["2x2", "3s2p1", "3s1p1-overlap", "rect"])
@pytest.mark.parametrize("op", ["max", "avg"])
def test_pool(op, cfg):
    kernel, stride, pad = cfg
    assert PL.check(op, (2, 2, 7, 6), kernel, stride, pad) < 1e-6


def test_maxpool_ties_pick_the_first_maximum():
    x = np.zeros((1, 1, 4, 4), np.float32)          # every window is a tie
    y, idx = PL.maxpool_forward(x, 2)
    assert np.array_equal(PL.to_device(idx, np.int32), np.array([[[[0, 2], [8, 10]]]]))
    _, idx_ref = PL.maxpool_forward_ref(x, 2)
    assert np.array_equal(idx_ref, np.array([[[[0, 2], [8, 10]]]]))


# ----------------------------------------------------------------------------- errors


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="w: expected 3 input channels"):
        K.conv_output_shape((1, 3, 5, 5), (2, 4, 3, 3))
    with pytest.raises(ValueError, match="does not fit"):
        K.conv_output_shape((1, 1, 2, 2), (1, 1, 5, 5))
    with pytest.raises(ValueError, match="stride"):
        K.conv_output_shape((1, 1, 5, 5), (1, 1, 3, 3), stride=0)
    with pytest.raises(TypeError, match="padding"):
        K.conv_output_shape((1, 1, 5, 5), (1, 1, 3, 3), padding="same")
    x = np.zeros((1, 1, 5, 5), np.float32)
    w = np.zeros((1, 1, 3, 3), np.float32)
    with pytest.raises(ValueError, match="version"):
        K.conv2d_forward(x, w, version=9)
    with pytest.raises(ValueError, match="dy: expected shape"):
        K.conv2d_dgrad(np.zeros((1, 1, 2, 2), np.float32), w, x.shape)
    with pytest.raises(ValueError, match="b: expected shape"):
        K.conv2d_forward(x, w, np.zeros(3, np.float32), version=1)
    with pytest.raises(ValueError, match="padding: expected at most half"):
        PL.pool_output_shape((1, 1, 5, 5), 2, padding=2)
    with pytest.raises(ValueError, match="op"):
        K.make_igemm("backward", 8, 8, 4, 2, 2)


def test_inputs_are_not_modified():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (1, 2, 5, 5)).astype(np.float32)
    w = rng.uniform(-1, 1, (2, 2, 3, 3)).astype(np.float32)
    x0, w0 = x.copy(), w.copy()
    K.conv2d_forward(x, w, None, 1, 1, version=1)
    I.conv2d_forward(x, w, None, 1, 1)
    assert np.array_equal(x, x0) and np.array_equal(w, w0)


def test_flops():
    # LeNet-5 conv1 on one image: 6·28·28 outputs × 25 taps × 2
    assert K.conv2d_flops((1, 1, 28, 28), (6, 1, 5, 5), 1, 2) == 2 * 6 * 28 * 28 * 25


# ----------------------------------------------------------------------------- references vs PyTorch


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_references_match_torch(case):
    torch = pytest.importorskip("torch")
    shape, k, rs, s, p = case
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((k, shape[1], *rs))
    b = rng.standard_normal(k)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=K.pair(s, "s"), padding=K.pair(p, "p"))
    dy = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(K.conv2d_forward_ref(x, w, b, s, p), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(K.conv2d_dgrad_ref(dy, w, shape, s, p), tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(K.conv2d_wgrad_ref(x, dy, w.shape, s, p), tw.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(K.conv2d_bias_grad_ref(dy), tb.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cfg", POOL, ids=["2x2", "3s2p1", "3s1p1-overlap", "rect"])
def test_pool_references_match_torch(cfg):
    torch = pytest.importorskip("torch")
    kernel, stride, pad = cfg
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 7, 6))
    F = torch.nn.functional
    kw = dict(kernel_size=kernel, stride=kernel if stride is None else stride, padding=pad)
    tx = torch.tensor(x, requires_grad=True)
    ty, tidx = F.max_pool2d(tx, return_indices=True, **kw)
    dy = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(dy))
    y, idx = PL.maxpool_forward_ref(x, kernel, stride, pad)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=0)
    np.testing.assert_array_equal(idx, tidx.numpy())
    np.testing.assert_allclose(PL.maxpool_backward_ref(dy, idx, x.shape), tx.grad.numpy(), atol=1e-12)
    tx.grad = None
    ta = F.avg_pool2d(tx, **kw)                      # count_include_pad=True, PyTorch's default
    ta.backward(torch.tensor(dy))
    np.testing.assert_allclose(PL.avgpool_forward_ref(x, kernel, stride, pad), ta.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(PL.avgpool_backward_ref(dy, x.shape, kernel, stride, pad), tx.grad.numpy(),
                               atol=1e-12)


# ----------------------------------------------------------------------------- real GPU, full sizes


@pytest.mark.gpu
@pytest.mark.parametrize("op,versions", [("forward", K.FORWARD_VERSIONS), ("dgrad", K.DGRAD_VERSIONS),
                                         ("wgrad", K.WGRAD_VERSIONS)])
def test_full_size_layers_on_gpu(op, versions):
    for shape, k, rs, s, p in [((32, 64, 56, 56), 64, (3, 3), 1, 1), ((128, 6, 14, 14), 16, (5, 5), 1, 0),
                               ((8, 128, 29, 31), 96, (3, 3), 2, 1)]:
        for v in versions:
            assert K.check(op, v, shape, k, rs, s, p, tol=1e-4) < 1e-4
    assert I.check(op, (32, 64, 56, 56), 64, (3, 3), 1, 1, tol=1e-4) < 1e-4
    assert PL.check("max", (32, 64, 56, 56), 3, 2, 1) < 1e-6
