"""LeNet-5: architecture of the thesis's Table 2, gradients against PyTorch, and learning."""
import numpy as np
import pytest

import nnbook as nb
from helpers import assert_close
from nnbook import conv as C
from nnbook.lenet import LeNet5


def _shapes(model, x):
    shapes = []
    for layer in model:
        x = layer.forward(x)
        shapes.append((type(layer).__name__, tuple(x.shape[1:])))
    return shapes


def test_table2_shapes_and_parameters():
    x = np.zeros((2, 1, 28, 28), dtype=np.float32)
    model = LeNet5()
    assert model.num_parameters() == 61706
    convs = [s for n, s in _shapes(model, x) if n in ("Conv2D", "MaxPool2D", "Dense")]
    assert convs == [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120,), (84,), (10,)]
    bn = LeNet5(batch_norm=True)
    # the thesis: "62 thousand parameters" (BN adds gamma/beta; biases before BN are dropped)
    assert 61000 < bn.num_parameters() < 63000
    assert sum(isinstance(l, (C.BatchNorm1d, C.BatchNorm2d)) for l in bn) == 4
    x32 = np.zeros((2, 1, 32, 32), dtype=np.float32)
    assert LeNet5(pad_input=False).forward(x32).shape == (2, 10)
    with pytest.raises(ValueError):
        LeNet5(pad_input=False).forward(np.zeros((2, 1, 20, 20), dtype=np.float32))


@pytest.mark.parametrize("method", ["fast", "im2col"])
def test_gradients_match_pytorch(method):
    torch = pytest.importorskip("torch")
    from nnbook.bench.lenet5 import torch_lenet5
    nb.seed(1)
    model = LeNet5(dtype="float64", method=method)
    rng = np.random.default_rng(1)
    for i in (0, 3):
        model[i].params["b"] = rng.normal(size=model[i].params["b"].shape) * 0.1
    x = rng.random((5, 1, 28, 28))
    y = rng.integers(0, 10, 5)
    loss = nb.SoftmaxCrossEntropy()
    tm = torch_lenet5(model)
    xt = torch.tensor(x, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(tm(xt), torch.tensor(y))
    lt.backward()
    model.zero_grad()
    l = loss.forward(model.forward(x), y)
    dx = model.backward(loss.backward())
    assert abs(l - lt.item()) < 1e-10
    assert_close(dx, xt.grad.numpy(), 1e-6, "dx")
    pairs = [(0, 0, False), (3, 3, False), (7, 7, True), (9, 9, True), (11, 11, True)]
    for ni, ti, dense in pairs:
        gW = model[ni].grads["W"]
        tW = tm[ti].weight.grad.numpy()
        assert_close(gW, tW.T if dense else tW, 1e-6, f"layer {ni} W")
        assert_close(model[ni].grads["b"], tm[ti].bias.grad.numpy(), 1e-6, f"layer {ni} b")


def test_lenet_learns_mnist_subset():
    (X, y), (Xt, yt) = nb.data.load_mnist()
    X = (X[:2000].astype(np.float32) / 255).reshape(-1, 1, 28, 28)
    Xt = (Xt[:1000].astype(np.float32) / 255).reshape(-1, 1, 28, 28)
    nb.seed(0)
    model = LeNet5()
    loss = nb.SoftmaxCrossEntropy()
    opt = nb.SGD(model.parameters(), lr=0.05, momentum=0.9)
    before = nb.evaluate(model, loss, Xt, yt[:1000])[1]
    hist = nb.fit(model, loss, opt, X, y[:2000], epochs=3, progress=False)
    _, acc = nb.evaluate(model, loss, Xt, yt[:1000])
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]
    assert before < 0.3 and acc > 0.85, (before, acc)


def test_batchnorm_variant_trains_and_evaluates():
    (X, y), _ = nb.data.load_mnist()
    X = (X[:512].astype(np.float32) / 255).reshape(-1, 1, 28, 28)
    nb.seed(0)
    model = LeNet5(batch_norm=True)
    loss = nb.SoftmaxCrossEntropy()
    hist = nb.fit(model, loss, nb.Adam(model.parameters(), lr=2e-3), X, y[:512], epochs=3,
                  progress=False)
    assert hist["loss"][-1] < hist["loss"][0]
    bn = model[1]
    assert float(np.abs(bn.buffers["running_mean"]).sum()) > 0    # running stats moved
    vl, va = nb.evaluate(model, loss, X, y[:512])            # eval mode: running statistics
    assert np.isfinite(vl) and va > 0.5
