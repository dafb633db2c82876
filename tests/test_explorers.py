"""Explorer callbacks run once with non-default values."""
import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nnbook import explorers  # noqa: E402
from nnbook.conv import conv_output_size  # noqa: E402


def test_playground_callback_non_default():
    fig, hist = explorers.playground_figure(dataset="moons", layers=1, width=8, activation="tanh",
                                            lr=0.05, epochs=30, optimizer="sgd", seed=3, n=200)
    assert len(fig.axes) == 2 and len(hist["loss"]) == 30
    assert hist["loss"][-1] < hist["loss"][0]


def test_playground_learns_xor():
    _, hist = explorers.playground_figure(dataset="xor", epochs=40)
    assert hist["acc"][-1] > 0.9


def test_playground_errors():
    with pytest.raises(ValueError, match="dataset: expected one of"):
        explorers.playground_figure(dataset="iris")
    with pytest.raises(ValueError, match="activation"):
        explorers.playground_figure(activation="gelu")


def test_playground_widget_builds():
    pytest.importorskip("ipywidgets")
    box = explorers.network_playground()
    assert box.children


def test_convolution_explorer_callback():
    img = np.random.default_rng(9).random((12, 10))
    fig, out = explorers.convolution_figure(img, kernel="laplacian", stride=2, padding=1)
    assert out.shape == (conv_output_size(12, 3, 2, 1), conv_output_size(10, 3, 2, 1))
    k = np.array(explorers.KERNELS["laplacian"])
    assert np.isclose(out[1, 1], (np.pad(img, 1)[2:5, 2:5] * k).sum())
    with pytest.raises(ValueError, match="kernel"):
        explorers.convolution_figure(img, kernel="nope")
    pytest.importorskip("ipywidgets")
    w = explorers.convolution_explorer(img)
    descriptions = {c.description for c in w.children if hasattr(c, "description")}
    assert descriptions >= {"kernel", "stride", "padding"}
