"""Explorer callbacks run once with non-default values."""
import matplotlib

matplotlib.use("Agg")
import pytest  # noqa: E402

from nnbook import explorers  # noqa: E402


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
