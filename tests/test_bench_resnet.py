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


def test_conv_layers_lists_every_geometry_once_and_leaves_the_model_alone():
    from nnbook.bench.resnet import conv_layers
    model = nb.models.ResNet15(input_size=28, dtype="float32")
    before = model.state_dict()
    geoms = conv_layers(model, np.zeros((4, 1, 28, 28), np.float32))
    assert list(geoms) == ["7x7/1 1->64 @28x28", "3x3/1 16->16 @11x11",
                           "3x3/2 32->32 @11x11", "3x3/2 64->64 @6x6",
                           "3x3/2 128->128 @3x3"]
    assert geoms["7x7/1 1->64 @28x28"] == ((4, 1, 28, 28), (64, 1, 7, 7), (1, 1), (0, 0),
                                           True)
    assert geoms["3x3/2 64->64 @6x6"][2:] == ((2, 2), (1, 1), False)
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)   # eval mode: no update
    assert model.training
    assert not any("forward" in vars(l) for l in nb.models.all_layers(model))


def test_conv_times_reports_both_paths_and_the_engines_choice():
    from nnbook.bench._util import conv_times
    from nnbook.engine import cpu_kernels
    r = conv_times((2, 4, 9, 9), (4, 4, 3, 3), (2, 2), (1, 1), reps=1)
    assert r["engine"] == "numpy"
    kinds = ["kernel", "numpy"] if cpu_kernels.HAVE_NUMBA else ["numpy"]
    assert sorted(k for k in r if k != "engine") == kinds
    assert all(r[k]["forward_s"] > 0 and r[k]["backward_s"] > 0 for k in kinds)
    assert cpu_kernels.CHOICE == "auto"                      # restored


def test_train_test_epoch_gives_the_figures_a_record_keeps():
    from nnbook.bench._util import train_test_epoch
    rng = np.random.default_rng(1)
    X, y = rng.random((64, 8)), rng.integers(0, 3, 64)
    nb.seed(0)
    model = nb.Sequential(nb.Dense(8, 3))
    loss = nb.SoftmaxCrossEntropy()
    before = model.state_dict()
    e = train_test_epoch(model, loss, nb.SGD(model.parameters(), lr=0.1), X, y, X[:10],
                         y[:10], 16)
    assert set(e) == {"train_loss", "train_acc", "test_loss", "test_acc",
                      "seconds_per_epoch", "seconds_test", "load_average_1min"}
    assert not np.array_equal(model.state_dict()["0.W"], before["0.W"])    # it trained
    tl, ta = nb.evaluate(model, loss, X[:10], y[:10])
    assert (e["test_loss"], e["test_acc"]) == (tl, ta)
    assert e["seconds_per_epoch"] > 0 and e["seconds_test"] > 0
