"""Interactive explorers (ipywidgets) and teaching figures (matplotlib) for the chapters.

Each explorer is a pair: a pure *callback* that takes the control values and
draws a matplotlib figure (tests call it once with non-default values), and a
function that wires the callback to widgets.  The HTML book has no kernel, so
the chapters also show a static figure made by the same callback.

All of nnbook's drawing and widget code lives here; the maths modules
(:mod:`nnbook.neurons`, :mod:`nnbook.autodiff`, :mod:`nnbook.schedules`, ...)
never import matplotlib or ipywidgets, and nothing in nnbook imports this
package (imports flow one way).  matplotlib and ipywidgets are imported
inside the functions that draw, so ``import nnbook.explorers`` stays cheap.

* ``explorers.basics`` -- activation functions and gradient descent ("Machine-learning basics")
* ``explorers.playground`` -- the network playground (depth and width of an MLP)
* ``explorers.neurons`` -- :func:`draw_network`, the labelled fully connected network
* ``explorers.autodiff`` -- :func:`draw_graph`, an :mod:`nnbook.autodiff` computation graph
* ``explorers.conv`` -- the convolution explorer (kernel, stride, padding)
* ``explorers.schedules`` -- :func:`plot_lr_finder`, the learning-rate range test
"""
from __future__ import annotations

from .autodiff import draw_graph
from .basics import _DW_ROOTS  # noqa: F401  (the double well's critical points, for the book)
from .basics import (ACTIVATIONS, SURFACES, activation_explorer, activation_figure,
                     activation_values, gd_explorer, gd_figure, gradient_descent_path)
from .conv import KERNELS, convolution_explorer, convolution_figure
from .neurons import draw_network
from .playground import decision_grid, network_playground, playground_figure
from .schedules import plot_lr_finder

__all__ = [
    "ACTIVATIONS", "activation_values", "activation_figure", "activation_explorer",
    "SURFACES", "gradient_descent_path", "gd_figure", "gd_explorer",
    "playground_figure", "network_playground", "decision_grid",
    "draw_network", "draw_graph",
    "KERNELS", "convolution_figure", "convolution_explorer",
    "plot_lr_finder",
]
