"""Residual blocks (He et al. 2016): ``out = relu(F(x) + shortcut(x))``.

The block's main path ``F`` is a short stack of convolutions with batch
normalisation; the shortcut is the identity, or a 1x1 convolution with stride and
batch normalisation (He et al.'s *projection*, option B) when the block changes the
number of channels or the resolution.  Backward is the sum rule: the gradient that
reaches the addition goes down *both* paths unchanged, and their input gradients
add::

    d = relu'(s) * dout                      (s = F(x) + shortcut(x))
    dx = dF/dx^T d + dshortcut/dx^T d        (identity shortcut: + d itself)

so the identity path hands ``d`` to the block below without any product with
weights — why gradients survive in deep residual networks.

:class:`BasicBlock`: 3x3 conv, BN, ReLU, 3x3 conv, BN.  :class:`Bottleneck`: 1x1 conv
down to ``width`` channels, BN, ReLU, 3x3 conv (carrying the stride), BN, ReLU, 1x1
conv up to ``out_channels``, BN.
"""
from __future__ import annotations

from ._checks import check_int
from .conv import Conv2D
from .layers import Layer, ReLU
from .norm import BatchNorm2d

__all__ = ["BasicBlock", "Bottleneck"]


def _conv_bn(cin, cout, k, stride, dtype, relu):
    layers = [Conv2D(cin, cout, k, stride=stride, padding=k // 2, bias=False, dtype=dtype),
              BatchNorm2d(cout, dtype=dtype)]
    return layers + [ReLU()] if relu else layers


class _Residual(Layer):
    """``relu(main(x) + shortcut(x))``; subclasses build ``main``, a list of layers.
    ``shortcut`` is an empty list for the identity."""

    def __init__(self, in_channels, out_channels, stride, dtype):
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, minimum=1)
        self.out_channels = check_int("out_channels", out_channels, minimum=1)
        self.stride = check_int("stride", stride, minimum=1)
        self.dtype = dtype
        self.shortcut = []
        if self.stride != 1 or self.in_channels != self.out_channels:
            self.shortcut = _conv_bn(self.in_channels, self.out_channels, 1, self.stride,
                                     dtype, relu=False)
        self.relu = ReLU()

    def children(self):
        return [*self.main, *self.shortcut, self.relu]

    def check_input(self, x):
        self.main[0].check_input(x)

    def forward(self, x):
        h = x
        for l in self.main:
            h = l.forward(h)
        s = x
        for l in self.shortcut:
            s = l.forward(s)
        return self.relu.forward(h + s)

    def backward(self, dout):
        d = self.relu.backward(dout)
        dx = d
        for l in reversed(self.main):
            dx = l.backward(dx)
        ds = d
        for l in reversed(self.shortcut):
            ds = l.backward(ds)
        return dx + ds

    def _config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "stride": self.stride,
                "dtype": None if self.dtype is None else str(self.dtype)}

    @staticmethod
    def _shortcut_shapes(cin, cout, stride, at):
        """The projection's parameter shapes; ``at``: its first child index."""
        if stride == 1 and cin == cout:
            return {}
        return {f"{at}.W": (cout, cin, 1, 1), f"{at + 1}.gamma": (cout,),
                f"{at + 1}.beta": (cout,)}


class BasicBlock(_Residual):
    """Two 3x3 convolutions with batch normalisation and a shortcut (ResNet-18/34's
    block).  ``stride`` (on the first convolution) halves the resolution when 2."""

    def __init__(self, in_channels, out_channels, stride=1, dtype=None):
        super().__init__(in_channels, out_channels, stride, dtype)
        c = self.out_channels
        self.main = [*_conv_bn(self.in_channels, c, 3, self.stride, dtype, True),
                     *_conv_bn(c, c, 3, 1, dtype, False)]

    def config(self):
        return self._config()

    @classmethod
    def _shapes_from_config(cls, in_channels, out_channels, stride=1, **_):
        c = out_channels
        return {"0.W": (c, in_channels, 3, 3), "3.W": (c, c, 3, 3),
                **cls._shortcut_shapes(in_channels, out_channels, stride, 5)}


class Bottleneck(_Residual):
    """1x1 down to ``width`` channels, 3x3 (with the stride), 1x1 up to
    ``out_channels``, each with batch normalisation, and a shortcut (ResNet-50's
    block).  ``width`` defaults to ``out_channels // 4``, He et al.'s expansion of 4.
    The stride sits on the 3x3 convolution, as in torchvision's ResNet ("v1.5"); the
    original paper put it on the first 1x1."""

    def __init__(self, in_channels, out_channels, stride=1, width=None, dtype=None):
        super().__init__(in_channels, out_channels, stride, dtype)
        self.width = (max(1, self.out_channels // 4) if width is None
                      else check_int("width", width, minimum=1))
        w = self.width
        self.main = [*_conv_bn(self.in_channels, w, 1, 1, dtype, True),
                     *_conv_bn(w, w, 3, self.stride, dtype, True),
                     *_conv_bn(w, self.out_channels, 1, 1, dtype, False)]

    def config(self):
        return {**self._config(), "width": self.width}

    @classmethod
    def _shapes_from_config(cls, in_channels, out_channels, stride=1, width=None, **_):
        w = max(1, out_channels // 4) if width is None else width
        return {"0.W": (w, in_channels, 1, 1), "3.W": (w, w, 3, 3),
                "6.W": (out_channels, w, 1, 1),
                **cls._shortcut_shapes(in_channels, out_channels, stride, 8)}
