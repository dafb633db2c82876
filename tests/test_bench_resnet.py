"""``python -m nnbook bench resnet`` times nnbook's ResNet against a PyTorch twin: the twin
must compute the same function (logits and every gradient) with the same weights."""
import numpy as np
import pytest

import nnbook as nb
from nnbook.bench import suites


def test_suite_is_listed():
    assert "resnet" in suites()


@pytest.mark.parametrize("block", ["bottleneck", "basic"])
def test_torch_twin_computes_the_same_function(block):
    torch = pytest.importorskip("torch")
    from nnbook.bench.resnet import max_difference, torch_resnet
    nb.seed(0)
    model = nb.models.ResNet((1, 1), channels=(8, 16), block=block, stem_channels=8,
                             input_size=16, dtype="float64")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 1, 16, 16))
    y = rng.integers(0, 10, size=6)
    tm = torch_resnet(model)
    out_err, grad_err = max_difference(model, tm, x, y, torch)
    assert out_err < 1e-12 and grad_err < 1e-10
    # evaluation mode: the running statistics (moved by that training step) copy too
    twin = torch_resnet(model).eval()
    with torch.no_grad():
        assert nb.rel_error(model.predict(x), twin(torch.from_numpy(x)).numpy()) < 1e-12
    # dropout was switched back on afterwards
    assert [l.p for l in model if isinstance(l, nb.Dropout)] == [0.5]
