"""Forward values and gradients against PyTorch CPU (the on-disk wheel), float64, 1e-6."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnbook as nb
from helpers import assert_close, rand

torch = pytest.importorskip("torch")
TOL = 1e-6


def _t(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


@given(n=st.integers(1, 8), d=st.integers(1, 8), m=st.integers(1, 8), seed=st.integers(0, 999))
def test_dense_vs_torch(n, d, m, seed):
    rng = np.random.default_rng(seed)
    nb.seed(seed)
    layer = nb.Dense(d, m, dtype="float64")
    layer.params["b"] = rand(rng, m)
    x, dout = rand(rng, n, d), rand(rng, n, m)
    out = layer.forward(x)
    dx = layer.backward(dout)
    xt, Wt, bt = _t(x), _t(layer.params["W"].T.copy()), _t(layer.params["b"])
    ot = torch.nn.functional.linear(xt, Wt, bt)
    ot.backward(torch.tensor(dout))
    assert_close(out, ot.detach().numpy(), TOL, "out")
    assert_close(dx, xt.grad.numpy(), TOL, "dx")
    assert_close(layer.grads["W"], Wt.grad.numpy().T, TOL, "dW")
    assert_close(layer.grads["b"], bt.grad.numpy(), TOL, "db")


@pytest.mark.parametrize("layer,fn", [(nb.ReLU, torch.relu), (nb.Sigmoid, torch.sigmoid),
                                      (nb.Tanh, torch.tanh),
                                      (nb.Softmax, lambda t: torch.softmax(t, dim=1))])
def test_activations_vs_torch(layer, fn):
    rng = np.random.default_rng(0)
    x, dout = rand(rng, 6, 5) * 4, rand(rng, 6, 5)
    l = layer()
    out, dx = l.forward(x), None
    dx = l.backward(dout)
    xt = _t(x)
    ot = fn(xt)
    ot.backward(torch.tensor(dout))
    assert_close(out, ot.detach().numpy(), TOL, "out")
    assert_close(dx, xt.grad.numpy(), TOL, "dx")


@given(n=st.integers(1, 8), k=st.integers(2, 7), seed=st.integers(0, 999),
       scale=st.sampled_from([0.1, 1.0, 30.0]))
def test_losses_vs_torch(n, k, seed, scale):
    rng = np.random.default_rng(seed)
    z = rand(rng, n, k) * scale
    y = rng.integers(0, k, n)
    cases = [
        (nb.SoftmaxCrossEntropy(), y, lambda t: torch.nn.functional.cross_entropy(t, torch.tensor(y))),
        (nb.SoftmaxCrossEntropy(), nb.data.one_hot(y, k, np.float64),
         lambda t: torch.nn.functional.cross_entropy(t, torch.tensor(nb.data.one_hot(y, k, np.float64)))),
        (nb.BinaryCrossEntropy(), (z > 0.3).astype(float),
         lambda t: torch.nn.functional.binary_cross_entropy_with_logits(t, torch.tensor((z > 0.3).astype(float)))),
        (nb.MSE(), rand(rng, n, k), None),
    ]
    mse_target = cases[3][1]
    cases[3] = (nb.MSE(), mse_target,
                lambda t: torch.nn.functional.mse_loss(t, torch.tensor(mse_target)))
    for loss, target, tfn in cases:
        L = loss.forward(z, target)
        g = loss.backward()
        zt = _t(z)
        Lt = tfn(zt)
        Lt.backward()
        assert abs(L - Lt.item()) <= TOL * max(1.0, abs(Lt.item())), type(loss).__name__
        assert_close(g, zt.grad.numpy(), TOL, type(loss).__name__)


def test_mlp_training_matches_torch():
    """Several SGD steps of the same MLP on the same batches: weights agree to 1e-8."""
    rng = np.random.default_rng(0)
    nb.seed(0)
    model = nb.mlp([10, 8, 6, 3], dtype="float64")
    tm = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.ReLU(), torch.nn.Linear(8, 6),
                             torch.nn.ReLU(), torch.nn.Linear(6, 3)).double()
    with torch.no_grad():
        for tl, nl in zip([tm[0], tm[2], tm[4]], [model[0], model[2], model[4]]):
            tl.weight.copy_(torch.tensor(nl.params["W"].T))
            tl.bias.copy_(torch.tensor(nl.params["b"]))
    opt = nb.SGD(model.parameters(), lr=0.05, momentum=0.9)
    topt = torch.optim.SGD(tm.parameters(), lr=0.05, momentum=0.9)
    loss = nb.SoftmaxCrossEntropy()
    for _ in range(10):
        x, y = rand(rng, 16, 10), rng.integers(0, 3, 16)
        loss.forward(model.forward(x), y)
        model.backward(loss.backward())
        opt.step()
        opt.zero_grad()
        topt.zero_grad()
        torch.nn.functional.cross_entropy(tm(torch.tensor(x)), torch.tensor(y)).backward()
        topt.step()
    for tl, nl in zip([tm[0], tm[2], tm[4]], [model[0], model[2], model[4]]):
        assert_close(nl.params["W"], tl.weight.detach().numpy().T, 1e-8)
        assert_close(nl.params["b"], tl.bias.detach().numpy(), 1e-8)
