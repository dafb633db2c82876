"""Residual blocks, global/adaptive average pooling and the thesis's ResNets:
gradient checks in float64 on hypothesis-drawn shapes, PyTorch as a second line,
clear errors, and the shapes and sizes of Tables 3 and 4."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnbook as nb
from helpers import assert_close, rand


@pytest.fixture(autouse=True)
def _float64():
    nb.set_default_dtype("float64")


@settings(max_examples=4, deadline=None)
@given(kind=st.sampled_from(["basic", "bottleneck"]), cin=st.integers(2, 3),
       cout=st.sampled_from([2, 3]), stride=st.sampled_from([1, 2]), size=st.integers(3, 4),
       seed=st.integers(0, 99))
def test_residual_blocks_gradcheck(kind, cin, cout, stride, size, seed):
    # Every path has at least two channels: a batch norm of a single channel followed
    # (after a ReLU) by a convolution and another batch norm does not depend on its
    # scale gamma at all, nor a projection of a single channel on its weight's size,
    # and the gradient there is rounding noise that no relative error can judge.
    n = 2
    nb.seed(seed)
    if kind == "basic":
        block = nb.BasicBlock(cin, cout, stride=stride)
    else:
        block = nb.Bottleneck(cin, 4 * cout, stride=stride, width=cout)
    x = rand(np.random.default_rng(seed), n, cin, size, size)
    res = nb.check_layer(block, x)
    assert res.ok, res
    at = 5 if kind == "basic" else 8                  # the projection's first child
    assert (f"{at}.W" in res) == (stride != 1 or cin != block.out_channels)


def test_identity_shortcut_passes_the_gradient_through():
    """With the main path's last batch norm scaled to zero, the block is relu(x) and
    backward hands dout (masked by the ReLU) straight to the input."""
    nb.seed(0)
    block = nb.BasicBlock(3, 3)
    block.main[-1].params["gamma"][...] = 0
    block.main[-1].params["beta"][...] = 0
    x = rand(np.random.default_rng(1), 4, 3, 5, 5)
    out = block.forward(x)
    assert_close(out, np.maximum(x, 0), 1e-12)
    d = rand(np.random.default_rng(2), *out.shape)
    assert_close(block.backward(d), d * (x > 0), 1e-12)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 3), h=st.integers(1, 7), w=st.integers(1, 7),
       oh=st.integers(1, 4), ow=st.integers(1, 4), seed=st.integers(0, 99))
def test_adaptive_and_global_average_pool_gradcheck(n, c, h, w, oh, ow, seed):
    x = rand(np.random.default_rng(seed), n, c, h, w)
    assert nb.check_layer(nb.GlobalAvgPool2D(), x).ok
    assert_close(nb.GlobalAvgPool2D().forward(x), x.mean(axis=(2, 3)), 1e-14)
    if oh <= h and ow <= w:
        pool = nb.AdaptiveAvgPool2D((oh, ow))
        assert nb.check_layer(pool, x).ok
        # every window is PyTorch's [floor(i H / oh), ceil((i + 1) H / oh))
        out = pool.forward(x)
        for i in range(oh):
            for j in range(ow):
                r0, r1 = i * h // oh, -(-(i + 1) * h // oh)
                c0, c1 = j * w // ow, -(-(j + 1) * w // ow)
                assert_close(out[:, :, i, j], x[:, :, r0:r1, c0:c1].mean(axis=(2, 3)), 1e-14)


def test_pools_and_blocks_against_pytorch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(3)
    x = rand(rng, 2, 3, 7, 5)
    pool = nb.AdaptiveAvgPool2D((3, 2))
    out = pool.forward(x)
    xt = torch.tensor(x, requires_grad=True)
    ot = F.adaptive_avg_pool2d(xt, (3, 2))
    d = rand(rng, *out.shape)
    ot.backward(torch.tensor(d))
    assert_close(out, ot.detach().numpy(), 1e-12)
    assert_close(pool.backward(d), xt.grad.numpy(), 1e-12)
    # a bottleneck block with a projection, in training mode, against torch.nn
    nb.seed(4)
    block = nb.Bottleneck(4, 8, stride=2)
    convs = [l for l in block.children() if isinstance(l, nb.Conv2D)]
    x = rand(rng, 3, 4, 6, 6)
    out = block.forward(x)
    d = rand(rng, *out.shape)
    dx = block.backward(d)
    xt = torch.tensor(x, requires_grad=True)
    Ws = [torch.tensor(c.params["W"], requires_grad=True) for c in convs]

    def bn(h):
        return F.batch_norm(h, None, None, training=True, eps=1e-5)
    h = F.relu(bn(F.conv2d(xt, Ws[0])))
    h = F.relu(bn(F.conv2d(h, Ws[1], stride=2, padding=1)))
    h = bn(F.conv2d(h, Ws[2]))
    s = bn(F.conv2d(xt, Ws[3], stride=2))
    ot = F.relu(h + s)
    ot.backward(torch.tensor(d))
    assert_close(out, ot.detach().numpy(), 1e-10)
    assert_close(dx, xt.grad.numpy(), 1e-9)
    for c, Wt in zip(convs, Ws):
        assert_close(c.grads["W"], Wt.grad.numpy(), 1e-9)


def test_bad_input_gets_clear_errors():
    with pytest.raises(ValueError, match=r"x: expected shape \(N, 4, H, W\)"):
        nb.Bottleneck(4, 8).forward(np.ones((2, 3, 5, 5)))
    with pytest.raises(ValueError, match="smaller than the output size 4x4"):
        nb.AdaptiveAvgPool2D(4).forward(np.ones((1, 1, 3, 5)))
    with pytest.raises(ValueError, match="x: expected a 4-D array"):
        nb.GlobalAvgPool2D().forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match="stride: expected an int >= 1"):
        nb.BasicBlock(2, 2, stride=0)
    with pytest.raises(ValueError, match="channels: expected 2 stage widths"):
        nb.models.ResNet((1, 1), channels=(8,))
    with pytest.raises(ValueError, match="block: expected one of"):
        nb.models.ResNet((1,), channels=(8,), block="dense")


def test_resnets_follow_the_thesis_tables():
    nb.set_default_dtype("float32")
    m = nb.models.ResNet15()
    x = np.zeros((2, 1, 32, 32), np.float32)
    shapes = []
    for l in m.layers:
        x = l.forward(x)
        shapes.append(tuple(x.shape[1:]))
    # Table 3: 26x26x64 after the stem convolution, 13x13 after its pool, then
    # 13x13x64, 7x7x128, 4x4x256, 2x2x512, pooled to 512, 10 classes
    assert shapes[0] == (64, 26, 26) and shapes[3] == (64, 13, 13)
    assert shapes[4:8] == [(64, 13, 13), (128, 7, 7), (256, 4, 4), (512, 2, 2)]
    assert shapes[8:] == [(512,), (512,), (512,), (10,)]
    blocks = [l for l in nb.models.ResNet57().layers if isinstance(l, nb.Bottleneck)]
    assert [b.out_channels for b in blocks] == [64] * 3 + [128] * 4 + [256] * 4 + [512] * 3
    assert 1.3e6 < nb.models.ResNet57().num_parameters() < 1.4e6    # the thesis: 1.3 M
    assert nb.models.ResNet15(input_size=28).predict(np.zeros((3, 1, 28, 28), np.float32)).shape \
        == (3, 10)


def test_resnet_saves_loads_and_refuses_a_forged_config(tmp_path):
    import json
    nb.seed(0)
    m = nb.models.ResNet((1, 1), channels=(8, 16), stem_channels=8)
    x = rand(np.random.default_rng(0), 4, 1, 16, 16)
    m.train()
    m.forward(x)                                     # running statistics move
    path = m.save(tmp_path / "r")
    loaded = nb.load_model(path)
    assert_close(loaded.predict(x), m.predict(x), 1e-12)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    cfg = json.loads(str(arrays["__config__"]))
    cfg["layers"][5]["out_channels"] = 10 ** 5       # a forged block: huge weights
    arrays["__config__"] = np.array(json.dumps(cfg))
    np.savez(tmp_path / "forged.npz", **arrays)
    with pytest.raises(ValueError, match="Bottleneck at 5 expects"):
        nb.load_model(tmp_path / "forged.npz")


def test_fit_trains_a_small_resnet_through_engine_and_reference_alike():
    rng = np.random.default_rng(5)
    X = rng.random((40, 1, 16, 16))
    y = rng.integers(0, 3, 40)
    ws = []
    for engine in (True, False):
        nb.seed(0)
        m = nb.models.ResNet((1, 1), channels=(4, 8), stem_channels=4, num_classes=3,
                             dropout=0.2)
        nb.seed(1)
        nb.fit(m, nb.SoftmaxCrossEntropy(), nb.SGD(m.parameters(), lr=0.05, momentum=0.9),
               X, y, epochs=2, batch_size=16, progress=False, engine=engine)
        ws.append(m.state_dict())
    assert ws[0].keys() == ws[1].keys() and any(".5." in k or k.startswith("5.") for k in ws[0])
    for k in ws[0]:
        assert_close(ws[0][k], ws[1][k], 1e-10, k)
