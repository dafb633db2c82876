"""Exercises of the chapter "Convolutional networks" (the checks; the stored cases are
in ``nnbook/exercise_data/cnn.*``).  The known-wrong answers the checks reject are
classic mistakes: padding counted on one side, a receptive field flattened in the wrong
order, a tied maximum's gradient sent to every winner, a kernel not flipped."""
from ..exercises import register

register(
    "cnn.output_size",
    "Write output_size(n, k, stride, padding): the number of positions a k-wide kernel "
    "takes along an input of length n padded with `padding` zeros on each side, moving "
    "`stride` steps at a time (an int).",
)

register(
    "cnn.im2col",
    "Write im2col(x, kh, kw) for one image x of shape (C, H, W), stride 1, no padding: a "
    "matrix with one row per output position (i, j) in row-major order, holding the "
    "receptive field x[:, i:i+kh, j:j+kw] flattened in (c, r, t) order — the order of a "
    "flattened filter W[f] — so that im2col(x) @ W.reshape(F, -1).T is the convolution.",
)

register(
    "cnn.maxpool_backward",
    "Write maxpool_backward(x, dout) for 2x2 max-pooling with stride 2 of one channel x "
    "(H, W), H and W even: dE/dx given dE/dout (H/2, W/2). Each output's gradient goes to "
    "the position of its window's maximum; when several entries tie, only to the first "
    "in reading order (row by row), as PyTorch does.",
)

register(
    "cnn.conv_input_grad",
    "Write input_grad(dout, w) for a one-channel convolution with stride 1 and no padding "
    "(out = corr(x, w), w of shape (kh, kw), dout of shape (Ho, Wo)): dE/dx, of shape "
    "(Ho + kh - 1, Wo + kw - 1), as the full convolution of dout with w.",
)
