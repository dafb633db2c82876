"""The convolution layer, :class:`Conv2D`, and (re-exported from
:mod:`nnbook.functional.conv`) the functions it is built on.

Arrays are NCHW: ``x`` is (N, C, H, W) — batch, channels, height, width — and a
convolution's weights ``W`` are (F, C, kh, kw), one (C, kh, kw) filter per
output channel, as in PyTorch.  The layer computes the cross-correlation (no
kernel flip, like every deep-learning library)

    out[n, f, i, j] = b[f] + sum_{c, r, t} x_pad[n, c, i*s + r, j*s + t] * W[f, c, r, t]

with ``s`` the stride and ``x_pad`` the input with ``padding`` zeros on every
side; the output is (N, F, Ho, Wo) with ``Ho = (H + 2p - kh) // s + 1``.
``method`` picks one of three implementations of that same function ("naive"
loops, "im2col", "fast" row lowering; see :mod:`nnbook.functional.conv`).
"""
from __future__ import annotations

import numpy as np

from . import init as _init
from ._checks import check_array, check_dtype_match, check_int, describe
from .backend import asarray, get_rng
from .functional.conv import (CONV_METHODS, _pair, col2im, conv2d, conv2d_backward,  # noqa: F401
                              conv2d_backward_input_full, conv2d_backward_weight_corr,
                              conv2d_forward, conv2d_naive, conv2d_naive_backward,
                              conv_output_size, im2col, pad2d)
from .functional.pool import (avgpool2d_backward, avgpool2d_forward,  # noqa: F401
                              maxpool2d_backward, maxpool2d_forward)
from .layers import Flatten, Layer, layer_dtype
from .norm import BatchNorm1d, BatchNorm2d  # noqa: F401
from .pool import AvgPool2D, MaxPool2D  # noqa: F401

__all__ = [
    "conv_output_size", "pad2d", "im2col", "col2im",
    "conv2d", "conv2d_forward", "conv2d_backward",
    "conv2d_naive", "conv2d_naive_backward",
    "conv2d_backward_input_full", "conv2d_backward_weight_corr",
    "maxpool2d_forward", "maxpool2d_backward", "avgpool2d_forward", "avgpool2d_backward",
    "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten", "BatchNorm1d", "BatchNorm2d",
    "CONV_METHODS",
]


class Conv2D(Layer):
    """2-D convolution layer (cross-correlation), NCHW in and out.

    ``params["W"]``: (out_channels, in_channels, kh, kw); ``params["b"]``:
    (out_channels,).  Weights are drawn by ``init`` (default He, with
    fan_in = in_channels*kh*kw), biases start at zero.  ``method`` picks the
    implementation ("fast" row lowering by default, "im2col" or "naive").

    Forward ``x: (N, C, H, W) -> (N, F, Ho, Wo)``; backward returns dE/dx and adds
    dE/dW, dE/db (the derivation is in the chapter "Convolutional networks").
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, init="he",
                 dtype=None, method="fast", bias=True):
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, minimum=1)
        self.out_channels = check_int("out_channels", out_channels, minimum=1)
        self.kernel_size = _pair("kernel_size", kernel_size, 1)
        self.stride = _pair("stride", stride, 1)
        self.padding = _pair("padding", padding, 0)
        if method not in CONV_METHODS:
            raise ValueError(f"method: expected one of {CONV_METHODS}, got {method!r}")
        self.method = method
        self.init = init if isinstance(init, str) else getattr(init, "__name__", "custom")
        fn = _init.get(init)
        self.dtype = layer_dtype(dtype)
        kh, kw = self.kernel_size
        fan_in, fan_out = self.in_channels * kh * kw, self.out_channels * kh * kw
        W = fn((self.out_channels, self.in_channels, kh, kw), fan_in, fan_out, get_rng())
        self.params["W"] = asarray(np.asarray(W, dtype=self.dtype))
        self.use_bias = bool(bias)
        if self.use_bias:
            self.params["b"] = asarray(np.zeros(self.out_channels, dtype=self.dtype))
        self.zero_grad()

    @staticmethod
    def _shapes_from_config(in_channels, out_channels, kernel_size, bias=True, **_):
        kh, kw = _pair("kernel_size", kernel_size, 1)
        shapes = {"W": (out_channels, in_channels, kh, kw)}
        if bias:
            shapes["b"] = (out_channels,)
        return shapes

    def output_shape(self, input_shape):
        """(N, F, Ho, Wo) for an input of shape (N, C, H, W)."""
        N, C, H, Wd = input_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (N, self.out_channels, conv_output_size(H, kh, sh, ph),
                conv_output_size(Wd, kw, sw, pw))

    def check_input(self, x):
        check_array("x", x, ndim=4, floating=True, finite=False)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x: expected shape (N, {self.in_channels}, H, W) for {self!r}, "
                             f"got {describe(x)}")
        check_dtype_match("x", x, self.params["W"].dtype)
        kh, kw = self.kernel_size
        (ph, pw) = self.padding
        if kh > x.shape[2] + 2 * ph or kw > x.shape[3] + 2 * pw:
            raise ValueError(f"x: the {kh}x{kw} kernel is larger than the padded input "
                             f"{x.shape[2] + 2 * ph}x{x.shape[3] + 2 * pw} ({describe(x)}, "
                             f"padding {self.padding})")

    def forward(self, x):
        out, self.cache = conv2d_forward(x, self.params["W"], self.params.get("b"),
                                         self.stride, self.padding, self.method)
        return out

    def backward(self, dout):
        dx, dW, db = conv2d_backward(dout, self.cache)
        self.grads["W"] += dW
        if self.use_bias:
            self.grads["b"] += db
        return dx

    def config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": list(self.padding), "init": self.init, "dtype": self.dtype.name,
                "method": self.method, "bias": self.use_bias}
