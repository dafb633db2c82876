"""The activation and gradient-descent explorers of "Machine-learning basics"."""
import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nnbook import explorers  # noqa: E402
from nnbook import functional as F  # noqa: E402


def _central(f, x, h=1e-6):
    return (f(x + h) - f(x - h)) / (2 * h)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "sigmoid", "tanh"])
def test_activation_derivatives_match_finite_differences(name):
    x = np.linspace(-4, 4, 81) + 0.013          # keeps away from ReLU's kink at 0
    f, df = explorers.activation_values(name, x, slope=0.2)
    num = _central(lambda v: explorers.activation_values(name, v, slope=0.2)[0], x)
    assert f.shape == df.shape == x.shape
    assert np.max(np.abs(df - num)) < 1e-7


def test_softmax_values_and_derivative():
    x = np.linspace(-3, 3, 13)
    o, d = explorers.activation_values("softmax", x, others=(0.5, -2.0))
    assert o.shape == d.shape == (13, 3)
    assert np.allclose(o.sum(axis=1), 1) and np.allclose(d.sum(axis=1), 0, atol=1e-15)
    num = _central(lambda v: explorers.activation_values("softmax", v, others=(0.5, -2.0))[0],
                   x)
    assert np.max(np.abs(d - num)) < 1e-8
    J = F.softmax_jacobian(o[4])                # column 0 of the Jacobian
    assert np.allclose(d[4], J[:, 0])


def test_activation_errors():
    with pytest.raises(ValueError, match="name: expected one of"):
        explorers.activation_values("gelu", np.zeros(3))
    with pytest.raises(ValueError, match="others"):
        explorers.activation_values("softmax", np.zeros(3), others=(1.0,))
    with pytest.raises(ValueError, match="x_range"):
        explorers.activation_figure("relu", x_range=(2, -2))


@pytest.mark.parametrize("name", ["leaky_relu", "softmax"])
def test_activation_figure_non_default(name):
    fig = explorers.activation_figure(name, x_range=(-2.5, 7.0), n=51, others=(2.0, 0.0),
                                      slope=0.3)
    assert len(fig.axes) == 2
    line = fig.axes[0].lines[0]
    assert line.get_xdata()[0] == -2.5 and line.get_xdata()[-1] == 7.0
    assert len(fig.axes[0].lines) >= (3 if name == "softmax" else 1)


def test_gradient_descent_path_quadratic_rates():
    grad = explorers.SURFACES["quadratic"].grad           # f = x^2, L = 2: diverges for lr > 1
    for lr in (0.1, 0.45, 0.9, 1.05):
        path = explorers.gradient_descent_path(grad, (3.0,), lr, 10)
        assert np.allclose(path[:, 0], 3.0 * (1 - 2 * lr) ** np.arange(11))
    long = explorers.gradient_descent_path(grad, (3.0,), 1.5, 1000)
    assert len(long) < 1001 and np.all(np.isfinite(long))        # cut off, never overflows


def test_gradient_descent_path_momentum_is_pytorch_sgd():
    torch = pytest.importorskip("torch")
    g = explorers.SURFACES["rosenbrock"].grad
    path = explorers.gradient_descent_path(g, (-1.0, 1.5), 1e-3, 25, momentum=0.8)
    p = torch.tensor([-1.0, 1.5], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=1e-3, momentum=0.8)
    for _ in range(25):
        opt.zero_grad()
        ((1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2).backward()
        opt.step()
    assert np.allclose(path[-1], p.detach().numpy(), rtol=1e-12)


def test_gradient_descent_path_errors():
    g = explorers.SURFACES["quadratic"].grad
    with pytest.raises(ValueError, match="lr"):
        explorers.gradient_descent_path(g, (1.0,), 0.0, 5)
    with pytest.raises(ValueError, match="momentum"):
        explorers.gradient_descent_path(g, (1.0,), 0.1, 5, momentum=1.0)


@pytest.mark.parametrize("name", sorted(explorers.SURFACES))
def test_surface_gradients(name):
    s = explorers.SURFACES[name]
    rng = np.random.default_rng(1)
    for _ in range(3):
        p = rng.uniform(-1.5, 1.5, size=s.dim)
        num = np.array([(s.f(p + e) - s.f(p - e)) / 2e-6 for e in np.eye(s.dim) * 1e-6])
        assert np.allclose(s.grad(p), num, rtol=1e-6, atol=1e-6)
    assert s.f(np.array(s.start)) > s.fmin


def test_gd_figure_non_default():
    fig, paths = explorers.gd_figure("ellipse", lr=[0.05, 0.21], steps=15, start=(2.0, -1.0),
                                     momentum=0.5)
    assert len(fig.axes) == 3 and len(paths) == 2
    assert np.array_equal(paths[0][0], [2.0, -1.0]) and len(paths[0]) == 16
    fig, paths = explorers.gd_figure("double_well", lr=0.02, steps=60, start=-0.4)
    assert len(fig.axes) == 2
    assert abs(paths[0][-1, 0] - explorers._DW_ROOTS[0]) < 1e-3       # the global minimum
    fig, paths = explorers.gd_figure("quadratic", lr=2.0, steps=500)
    assert "diverges" in fig.axes[0].get_title()


def test_gd_figure_errors():
    with pytest.raises(ValueError, match="fn: expected one of"):
        explorers.gd_figure("himmelblau")
    with pytest.raises(ValueError, match="start"):
        explorers.gd_figure("ellipse", start=1.0)


def test_explorer_widgets_build():
    W = pytest.importorskip("ipywidgets")
    box = explorers.activation_explorer()
    assert box.children
    dropdown = box.children[0].children[0].children[0]
    assert isinstance(dropdown, W.Dropdown)
    dropdown.value = "softmax"                    # the callback redraws without error
    box = explorers.gd_explorer()
    fn = box.children[0].children[0].children[0]
    fn.value = "quadratic"                        # 1-D: the start-y slider is disabled
    assert box.children[0].children[1].children[2].disabled
