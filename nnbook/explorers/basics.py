"""Explorers of "Machine-learning basics": activation functions and gradient descent.

Each explorer is a pair: a pure callback that draws a matplotlib figure
(:func:`activation_figure`, :func:`gd_figure`) and a widget panel wired to it
(:func:`activation_explorer`, :func:`gd_explorer`).
"""
from __future__ import annotations

import numpy as np

from .. import functional as F

__all__ = ["ACTIVATIONS", "activation_values", "activation_figure", "activation_explorer",
           "SURFACES", "gradient_descent_path", "gd_figure", "gd_explorer"]


# --- activation functions -----------------------------------------------------------

def _leaky_relu(x, slope=0.1):
    return np.where(x > 0, x, slope * x)


def _leaky_relu_grad(x, slope=0.1):
    return np.where(x > 0, 1.0, slope)


ACTIVATIONS = ("relu", "leaky_relu", "sigmoid", "tanh", "softmax")


def activation_values(name, x, others=(1.0, -1.0), slope=0.1):
    """Return ``(f, df)``: an activation and its derivative on the points ``x``.

    For ``"softmax"`` the input is the 3-vector ``(x, others[0], others[1])``:
    ``f`` has shape ``(len(x), 3)`` (the three outputs as the first component
    moves) and ``df`` holds their derivatives with respect to that component,
    ``dO_k/dz_0 = O_k (delta_k0 - O_0)``.  ``slope`` is leaky ReLU's slope for
    x < 0.  Raises ValueError for an unknown name.
    """
    x = np.asarray(x, dtype=np.float64)
    if name == "relu":
        return F.relu(x), F.relu_grad(x)
    if name == "leaky_relu":
        return _leaky_relu(x, slope), _leaky_relu_grad(x, slope)
    if name == "sigmoid":
        return F.sigmoid(x), F.sigmoid_grad(x)
    if name == "tanh":
        return F.tanh(x), F.tanh_grad(x)
    if name == "softmax":
        if len(others) != 2:
            raise ValueError(f"others: expected the 2 fixed softmax inputs, got {others!r}")
        z = np.column_stack([x, np.full_like(x, others[0]), np.full_like(x, others[1])])
        o = F.softmax(z, axis=1)
        d = -o * o[:, :1]
        d[:, 0] += o[:, 0]
        return o, d
    raise ValueError(f"name: expected one of {ACTIVATIONS}, got {name!r}")


def activation_figure(name="relu", x_range=(-5.0, 5.0), n=401, others=(1.0, -1.0), slope=0.1,
                      fig=None):
    """Draw an activation (left) and its derivative (right) on ``x_range``.

    Returns the figure.  See :func:`activation_values` for ``others`` and ``slope``.
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415
    lo, hi = float(x_range[0]), float(x_range[1])
    if not lo < hi:
        raise ValueError(f"x_range: expected (low, high) with low < high, got {x_range!r}")
    x = np.linspace(lo, hi, int(n))
    f, df = activation_values(name, x, others=others, slope=slope)
    if fig is None:
        fig = plt.figure(figsize=(8, 3))
    fig.clf()
    ax1, ax2 = fig.subplots(1, 2)
    if name == "softmax":
        for k in range(3):
            lab = "$z_0$ (moving)" if k == 0 else f"$z_{k}$ = {others[k - 1]:g}"
            ax1.plot(x, f[:, k], label=f"$O_{k}$, {lab}")
            ax2.plot(x, df[:, k], label=rf"$\partial O_{k}/\partial z_0$")
        ax1.set_xlabel("$z_0$")
        ax2.set_xlabel("$z_0$")
        ax1.set_title("softmax of $(z_0, z_1, z_2)$")
        ax2.set_title(r"derivatives w.r.t. $z_0$")
        ax1.legend(fontsize=7)
        ax2.legend(fontsize=7)
    else:
        ax1.plot(x, f, color="C0")
        ax2.plot(x, df, color="C1")
        ax1.set_title(f"{name}(x)")
        ax2.set_title(f"{name}'(x)")
        ax1.set_xlabel("x")
        ax2.set_xlabel("x")
    for ax in (ax1, ax2):
        ax.axhline(0, color="0.7", lw=0.6, zorder=0)
        ax.axvline(0, color="0.7", lw=0.6, zorder=0)
    fig.tight_layout()
    return fig


def activation_explorer():
    """A widget panel: pick an activation and a range; see f and f'."""
    import ipywidgets as W  # noqa: PLC0415
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from IPython.display import display  # noqa: PLC0415

    out = W.Output()
    name = W.Dropdown(options=list(ACTIVATIONS), value="relu", description="activation")
    width = W.FloatSlider(value=5.0, min=1.0, max=20.0, step=0.5, description="|x| up to")
    slope = W.FloatSlider(value=0.1, min=0.0, max=0.5, step=0.01, description="leaky slope")
    z1 = W.FloatSlider(value=1.0, min=-5.0, max=5.0, step=0.1, description="softmax z1")
    z2 = W.FloatSlider(value=-1.0, min=-5.0, max=5.0, step=0.1, description="softmax z2")

    def update(_=None):
        with out:
            out.clear_output(wait=True)
            activation_figure(name.value, x_range=(-width.value, width.value),
                              others=(z1.value, z2.value), slope=slope.value)
            plt.show()

    for c in (name, width, slope, z1, z2):
        c.observe(update, names="value")
    box = W.VBox([W.HBox([W.VBox([name, width, slope]), W.VBox([z1, z2])]), out])
    display(box)
    update()
    return box


# --- gradient descent ---------------------------------------------------------------

class _Surface:
    """A test function for gradient descent: value, gradient, and how to draw it."""

    def __init__(self, f, grad, dim, start, box, fmin, L=None, text=""):
        self.f, self.grad, self.dim, self.start = f, grad, dim, start
        self.box, self.fmin, self.L, self.text = box, fmin, L, text


def _dw(x):
    return x ** 4 - 3 * x ** 2 + x


# the two minima of the double well, from f'(x) = 4x^3 - 6x + 1 = 0
_DW_ROOTS = np.sort(np.roots([4.0, 0.0, -6.0, 1.0]).real)
_DW_MIN = float(min(_dw(_DW_ROOTS[0]), _dw(_DW_ROOTS[2])))

SURFACES = {
    "quadratic": _Surface(lambda p: p[0] ** 2, lambda p: np.array([2 * p[0]]), 1, (-4.0,),
                          (-5.0, 5.0), 0.0, L=2.0, text="$f(x) = x^2$"),
    "double_well": _Surface(lambda p: _dw(p[0]),
                            lambda p: np.array([4 * p[0] ** 3 - 6 * p[0] + 1]), 1, (2.0,),
                            (-2.2, 2.2), _DW_MIN, text="$f(x) = x^4 - 3x^2 + x$"),
    "ellipse": _Surface(lambda p: 0.5 * (p[0] ** 2 + 10 * p[1] ** 2),
                        lambda p: np.array([p[0], 10 * p[1]]), 2, (-4.0, 1.5),
                        (-5.0, 5.0, -2.5, 2.5), 0.0, L=10.0,
                        text=r"$f(x, y) = \frac{1}{2}(x^2 + 10y^2)$"),
    "rosenbrock": _Surface(lambda p: (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2,
                           lambda p: np.array([-2 * (1 - p[0]) - 400 * p[0] * (p[1] - p[0] ** 2),
                                               200 * (p[1] - p[0] ** 2)]),
                           2, (-1.5, 2.0), (-2.0, 2.0, -1.0, 3.0), 0.0,
                           text="Rosenbrock $(1-x)^2 + 100(y-x^2)^2$"),
}


def _surface(fn):
    if fn not in SURFACES:
        raise ValueError(f"fn: expected one of {tuple(SURFACES)}, got {fn!r}")
    return SURFACES[fn]


def gradient_descent_path(grad, start, lr, steps, momentum=0.0, limit=1e6):
    """Run gradient descent (heavy-ball momentum in PyTorch's form) and return the iterates.

    ``b = momentum * b + grad(x)`` (b = grad at the first step), ``x = x - lr * b``.
    Returns an array of shape ``(k + 1, d)``: the start and every iterate.  The run
    stops early (k < steps) once an iterate leaves ``|x| <= limit`` or stops being
    finite, so a diverging run returns a short path instead of overflowing.
    """
    if lr <= 0:
        raise ValueError(f"lr: expected a positive learning rate, got {lr!r}")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum: expected a number in [0, 1), got {momentum!r}")
    x = np.array(start, dtype=np.float64).reshape(-1)
    path, b = [x.copy()], None
    with np.errstate(over="ignore", invalid="ignore"):   # a diverging run is cut off below
        for _ in range(int(steps)):
            g = np.asarray(grad(x), dtype=np.float64)
            b = g if b is None else momentum * b + g
            x = x - lr * b
            path.append(x.copy())
            if not np.all(np.isfinite(x)) or np.abs(x).max() > limit:
                break
    return np.array(path)


def gd_figure(fn="quadratic", lr=0.1, steps=30, start=None, momentum=0.0, fig=None):
    """Gradient descent on the surface ``fn`` (a key of ``SURFACES``).

    ``lr`` is one learning rate or a list of them: one panel per rate shows the path
    on the function (a curve in 1-D, contours in 2-D), and a last panel shows
    ``f(x_t) - min f`` against the step for all of them.  Returns ``(fig, paths)``,
    ``paths`` a list with one array of iterates per rate
    (see :func:`gradient_descent_path`).
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415
    s = _surface(fn)
    lrs = [float(v) for v in np.atleast_1d(lr)]
    start = s.start if start is None else tuple(np.atleast_1d(start).astype(float))
    if len(start) != s.dim:
        raise ValueError(f"start: expected {s.dim} coordinate(s) for {fn!r}, got {start!r}")
    paths = [gradient_descent_path(s.grad, start, v, steps, momentum) for v in lrs]
    n = len(lrs)
    if fig is None:
        fig = plt.figure(figsize=(2.9 * (n + 1), 2.9))
    fig.clf()
    axes = fig.subplots(1, n + 1)
    for i, (ax, v, path) in enumerate(zip(axes, lrs, paths)):
        color = f"C{i}"
        if s.dim == 1:
            lo, hi = s.box
            xs = np.linspace(lo, hi, 300)
            fx = np.array([s.f((u,)) for u in xs])
            ax.plot(xs, fx, color="0.6", lw=1)
            inside = np.abs(path[:, 0]) <= max(abs(lo), abs(hi))
            p = path[inside, 0]
            ax.plot(p, [s.f((u,)) for u in p], "o-", color=color, ms=3, lw=0.8)
            ax.set_xlim(lo, hi)
            ax.set_ylim(fx.min() - 0.05 * np.ptp(fx), fx.max() + 0.05 * np.ptp(fx))
        else:
            x0, x1, y0, y1 = s.box
            gx, gy = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
            gz = s.f((gx, gy)) - s.fmin
            levels = np.geomspace(max(np.percentile(gz, 0.5), 1e-3), np.percentile(gz, 99), 12)
            ax.contour(gx, gy, gz, levels=levels, colors="0.7", linewidths=0.6)
            ax.plot(path[:, 0], path[:, 1], "o-", color=color, ms=2.5, lw=0.8)
            ax.set_xlim(x0, x1)
            ax.set_ylim(y0, y1)
        ax.plot(*(path[0] if s.dim == 2 else (path[0, 0], s.f(path[0]))), "k*", ms=8)
        with np.errstate(over="ignore", invalid="ignore"):   # a diverging run's f is huge
            diverged = len(path) < int(steps) + 1 or not s.f(path[-1]) <= s.f(path[0])
        tag = "  diverges" if diverged else ""
        ax.set_title(rf"$\eta$ = {v:g}{tag}", fontsize=9, color="C3" if diverged else "k")
        ax.tick_params(labelsize=7)
    ax = axes[-1]
    for i, (v, path) in enumerate(zip(lrs, paths)):
        with np.errstate(over="ignore", invalid="ignore"):   # diverged values are huge
            gap = np.array([s.f(p) for p in path]) - s.fmin
        ax.semilogy(np.arange(len(path)), np.maximum(gap, 1e-16), color=f"C{i}",
                    label=rf"$\eta$={v:g}")
    ax.yaxis.set_minor_formatter(plt.NullFormatter())   # narrow ranges: no cluttered labels
    ax.set_xlabel("step", fontsize=8)
    ax.set_ylabel(r"$f(x_t) - \min f$", fontsize=8)
    ax.set_xlim(0, int(steps))
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    extra = f", momentum {momentum:g}" if momentum else ""
    fig.suptitle(s.text + extra, fontsize=10)
    fig.tight_layout()
    return fig, paths


def gd_explorer():
    """A widget panel: function, learning rate, steps, momentum and starting point."""
    import ipywidgets as W  # noqa: PLC0415
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from IPython.display import display  # noqa: PLC0415

    out = W.Output()
    fn = W.Dropdown(options=list(SURFACES), value="ellipse", description="function")
    lr = W.FloatLogSlider(value=0.1, base=10, min=-3, max=0.5, step=0.02,
                          description="learning rate", readout_format=".3g")
    steps = W.IntSlider(value=40, min=1, max=300, description="steps")
    momentum = W.FloatSlider(value=0.0, min=0.0, max=0.99, step=0.01, description="momentum")
    sx = W.FloatSlider(value=-4.0, min=-5.0, max=5.0, step=0.1, description="start x")
    sy = W.FloatSlider(value=1.5, min=-2.5, max=2.5, step=0.1, description="start y")

    def on_fn(change):
        # move the start sliders to the new function's default starting point
        s = SURFACES[change["new"]]
        sx.value = s.start[0]
        if s.dim == 2:
            sy.value = s.start[1]
        sy.disabled = s.dim == 1

    def update(_=None):
        s = SURFACES[fn.value]
        start = (sx.value, sy.value)[:s.dim]
        with out:
            out.clear_output(wait=True)
            fig = plt.figure(figsize=(7, 3))
            gd_figure(fn.value, lr=lr.value, steps=steps.value, start=start,
                      momentum=momentum.value, fig=fig)
            plt.show()

    fn.observe(on_fn, names="value")
    for c in (fn, lr, steps, momentum, sx, sy):
        c.observe(update, names="value")
    box = W.VBox([W.HBox([W.VBox([fn, lr, steps]), W.VBox([momentum, sx, sy])]), out])
    display(box)
    update()
    return box
