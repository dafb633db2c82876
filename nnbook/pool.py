"""Pooling layers (NCHW): :class:`MaxPool2D` and :class:`AvgPool2D` over the functions
of :mod:`nnbook.functional.pool`, and the averages over whole maps that end residual
networks, :class:`GlobalAvgPool2D` and :class:`AdaptiveAvgPool2D`."""
from __future__ import annotations

from ._checks import check_array, describe
from .backend import get_xp
from .functional.conv import _pair
from .functional.pool import (_pool_geometry, avgpool2d_backward, avgpool2d_forward,
                              maxpool2d_backward, maxpool2d_forward)
from .layers import Layer

__all__ = ["MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "AdaptiveAvgPool2D"]


class _Pool(Layer):
    def __init__(self, kernel_size=2, stride=None):
        super().__init__()
        self.kernel_size = _pair("kernel_size", kernel_size, 1)
        self.stride = self.kernel_size if stride is None else _pair("stride", stride, 1)

    def check_input(self, x):
        _pool_geometry(x, self.kernel_size, self.stride)

    def config(self):
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride)}


class MaxPool2D(_Pool):
    """Max over kh x kw windows (stride defaults to the window size); backward sends
    each window's gradient to its first maximum (row-major order), as PyTorch."""

    def forward(self, x):
        out, self.cache = maxpool2d_forward(x, self.kernel_size, self.stride)
        return out

    def backward(self, dout):
        return maxpool2d_backward(dout, self.cache)


class AvgPool2D(_Pool):
    """Mean over kh x kw windows (stride defaults to the window size); backward
    spreads each window's gradient evenly over it."""

    def forward(self, x):
        out, self.cache = avgpool2d_forward(x, self.kernel_size, self.stride)
        return out

    def backward(self, dout):
        return avgpool2d_backward(dout, self.cache)


class GlobalAvgPool2D(Layer):
    """The mean of every channel over its whole map: (N, C, H, W) -> (N, C).  Backward
    spreads each channel's gradient evenly over its H*W positions.  (PyTorch:
    ``AdaptiveAvgPool2d(1)`` followed by ``flatten(1)``.)"""

    def check_input(self, x):
        check_array("x", x, ndim=4, floating=True, finite=False)

    def forward(self, x):
        self.shape = x.shape
        return x.mean(axis=(2, 3))

    def backward(self, dout):
        N, C, H, W = self.shape
        dx = get_xp().empty(self.shape, dtype=dout.dtype)
        dx[...] = (dout / (H * W))[:, :, None, None]
        return dx


def _bins(n, out):
    """PyTorch's adaptive-pooling windows along one axis: [floor(i n / out),
    ceil((i + 1) n / out)) for i = 0 .. out - 1 (they overlap when out does not
    divide n)."""
    return [(i * n // out, -(-(i + 1) * n // out)) for i in range(out)]


class AdaptiveAvgPool2D(Layer):
    """Average pooling to a fixed output size ``(oh, ow)`` whatever the input's size,
    with PyTorch's windows (see ``_bins``); (N, C, H, W) -> (N, C, oh, ow)."""

    def __init__(self, output_size=1):
        super().__init__()
        self.output_size = _pair("output_size", output_size, 1)

    def check_input(self, x):
        check_array("x", x, ndim=4, floating=True, finite=False)
        oh, ow = self.output_size
        if x.shape[2] < oh or x.shape[3] < ow:
            raise ValueError(f"x: the input map {x.shape[2]}x{x.shape[3]} is smaller than the "
                             f"output size {oh}x{ow} ({describe(x)})")

    def forward(self, x):
        xp = get_xp()
        self.shape = x.shape
        oh, ow = self.output_size
        self.rows, self.cols = _bins(x.shape[2], oh), _bins(x.shape[3], ow)
        out = xp.empty(x.shape[:2] + (oh, ow), dtype=x.dtype)
        for i, (r0, r1) in enumerate(self.rows):
            for j, (c0, c1) in enumerate(self.cols):
                out[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
        return out

    def backward(self, dout):
        dx = get_xp().zeros(self.shape, dtype=dout.dtype)
        for i, (r0, r1) in enumerate(self.rows):
            for j, (c0, c1) in enumerate(self.cols):
                g = dout[:, :, i, j] / ((r1 - r0) * (c1 - c0))
                dx[:, :, r0:r1, c0:c1] += g[:, :, None, None]
        return dx

    def config(self):
        return {"output_size": list(self.output_size)}
