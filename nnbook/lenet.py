"""LeNet-5 (LeCun et al. 1998) in the modernised form of the second thesis's Table 2.

Two 5x5 convolutions (6 and 16 channels), each followed by a ReLU and a 2x2
max-pool, then three dense layers 400 -> 120 -> 84 -> classes; batch
normalisation after every convolution and hidden dense layer when
``batch_norm=True`` (the thesis's variant; the layers before a batch norm
then have no bias, which the normalisation would cancel).  The original used
sigmoid-like activations and average pooling; the thesis, like most modern
versions, uses ReLU and max-pooling.

Table 2 applies the ReLU before each max-pool; here the pool comes first.
The two commute — max(relu(a), relu(b)) = relu(max(a, b)) because both are
non-decreasing, and the gradients agree too (a window whose maximum is <= 0
gets zero gradient either way) — so the network computes exactly the same
function, with the ReLU applied to 4x fewer numbers.

The network expects 32x32 images.  ``pad_input=True`` (the default) gives
the first convolution ``padding=2``, so 28x28 MNIST digits enter as they are
and the first feature maps are 28x28, as in Table 2.
"""
from __future__ import annotations

from .conv import BatchNorm1d, BatchNorm2d, Conv2D, Flatten, MaxPool2D
from .layers import Dense, ReLU
from .models import Sequential

__all__ = ["LeNet5"]


def LeNet5(batch_norm=False, pad_input=True, num_classes=10, dtype=None, method="fast"):
    """Build LeNet-5 as a :class:`~nnbook.Sequential` for (N, 1, 28, 28) inputs
    (``pad_input=True``) or (N, 1, 32, 32) inputs (``pad_input=False``).

    >>> from nnbook.lenet import LeNet5
    >>> LeNet5().num_parameters()
    61706
    """
    bn = bool(batch_norm)
    bias = not bn
    layers = [Conv2D(1, 6, 5, padding=2 if pad_input else 0, dtype=dtype, method=method,
                     bias=bias)]
    if bn:
        layers.append(BatchNorm2d(6, dtype=dtype))
    layers += [MaxPool2D(2), ReLU(),
               Conv2D(6, 16, 5, dtype=dtype, method=method, bias=bias)]
    if bn:
        layers.append(BatchNorm2d(16, dtype=dtype))
    layers += [MaxPool2D(2), ReLU(), Flatten(), Dense(400, 120, dtype=dtype, bias=bias)]
    if bn:
        layers.append(BatchNorm1d(120, dtype=dtype))
    layers += [ReLU(), Dense(120, 84, dtype=dtype, bias=bias)]
    if bn:
        layers.append(BatchNorm1d(84, dtype=dtype))
    layers += [ReLU(), Dense(84, num_classes, dtype=dtype)]
    return Sequential(*layers)
