"""Pooling layers: :class:`MaxPool2D` and :class:`AvgPool2D` (NCHW), over the
functions of :mod:`nnbook.functional.pool`."""
from __future__ import annotations

from .functional.conv import _pair
from .functional.pool import (_pool_geometry, avgpool2d_backward, avgpool2d_forward,
                              maxpool2d_backward, maxpool2d_forward)
from .layers import Layer

__all__ = ["MaxPool2D", "AvgPool2D"]


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
