"""Convolutional layers: convolution, pooling, flatten and batch normalisation.

Arrays are NCHW: ``x`` is (N, C, H, W) — batch, channels, height, width — and a
convolution's weights ``W`` are (F, C, kh, kw), one (C, kh, kw) filter per
output channel, as in PyTorch.  A convolution layer computes the
cross-correlation (no kernel flip, like every deep-learning library)

    out[n, f, i, j] = b[f] + sum_{c, r, t} x_pad[n, c, i*s + r, j*s + t] * W[f, c, r, t]

with ``s`` the stride and ``x_pad`` the input with ``padding`` zeros on every
side; the output is (N, F, Ho, Wo) with ``Ho = (H + 2p - kh) // s + 1``
(:func:`conv_output_size`).

Three implementations of the same function, each with its backward pass,
checked against each other in the tests and in the chapter:

``naive``
    Python loops over the output positions — the formula above, literally.
    For small inputs and for reading.
``im2col``
    Copy every receptive field into a row of a matrix (a loop over the
    kh*kw filter taps, not over pixels), then one matrix product with the
    (F, C*kh*kw) weight matrix.  The classic lowering (Caffe, cs231n).
``fast`` (row lowering)
    Copy whole input *rows*: row (n, i) of the lowered matrix holds the kh
    input rows that output row i reads, all channels, full width
    (kh*C*Wp numbers, contiguous in an (N, H, C, W) layout).  The weights
    become a banded (kh*C*Wp, F*Wo) matrix that applies the filter at every
    horizontal position at once.  It does more arithmetic than im2col (the
    band's zeros) but as one large, square-ish matrix product, which BLAS
    runs near its peak, where im2col's products with K = C*kh*kw and only F
    output columns run at a fraction of it.  The output comes out in an
    (N, Ho, F, Wo) layout, returned as an NCHW-shaped *view*; the next
    convolution reads that layout without a transpose.  Used when the banded
    matrix is small (images up to a few dozen pixels wide); otherwise
    ``fast`` falls back to im2col.

In training loops (``nb.fit``, on NumPy) a stride-1 ``fast`` convolution and
the 2x2 max-pool right after it run as one operation (:class:`_ConvPool`): the
band's columns come in parity order, so the pool reads four contiguous blocks
instead of neighbouring pairs.  Same values, same gradients, same tie rule.

Every function takes its array module from :func:`nnbook.get_xp`, so the same
code runs on NumPy and CuPy.
"""
from __future__ import annotations

import numpy as np

from . import init as _init
from ._checks import check_array, check_dtype_match, check_int, describe
from .backend import asarray, get_default_dtype, get_rng, get_xp
from .layers import Layer
from .models import register_layer

__all__ = [
    "conv_output_size", "pad2d", "im2col", "col2im",
    "conv2d", "conv2d_forward", "conv2d_backward",
    "conv2d_naive", "conv2d_naive_backward",
    "conv2d_backward_input_full", "conv2d_backward_weight_corr",
    "maxpool2d_forward", "maxpool2d_backward", "avgpool2d_forward", "avgpool2d_backward",
    "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten", "BatchNorm1d", "BatchNorm2d",
    "CONV_METHODS", "KERNELS", "convolution_figure", "convolution_explorer",
]

CONV_METHODS = ("naive", "im2col", "fast")
_BAND_LIMIT = 1 << 22     # entries of the banded weight matrix above which "fast" uses im2col


# ----------------------------------------------------------------------------- helpers
def _pair(name, v, minimum):
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name}: expected an int or a pair of ints, got {v!r}")
        return (check_int(name, v[0], minimum=minimum), check_int(name, v[1], minimum=minimum))
    v = check_int(name, v, minimum=minimum)
    return (v, v)


def conv_output_size(n, k, stride=1, padding=0):
    """Output length along one axis: ``(n + 2*padding - k) // stride + 1``.

    Raises ValueError if the kernel does not fit in the padded input.
    """
    n = check_int("n", n, minimum=1)
    k = check_int("k", k, minimum=1)
    stride = check_int("stride", stride, minimum=1)
    padding = check_int("padding", padding, minimum=0)
    if k > n + 2 * padding:
        raise ValueError(f"k: kernel size {k} is larger than the padded input "
                         f"({n} + 2*{padding} = {n + 2 * padding})")
    return (n + 2 * padding - k) // stride + 1


def _check_conv_args(x, W, b, stride, padding):
    check_array("x", x, ndim=4, floating=True, finite=False)
    check_array("W", W, ndim=4, floating=True, finite=False)
    if x.shape[1] != W.shape[1]:
        raise ValueError(f"x: expected {W.shape[1]} input channels (W is {tuple(W.shape)}), "
                         f"got {describe(x)}")
    if b is not None and tuple(b.shape) != (W.shape[0],):
        raise ValueError(f"b: expected shape ({W.shape[0]},), got {describe(b)}")
    sh, sw = _pair("stride", stride, 1)
    ph, pw = _pair("padding", padding, 0)
    H, Wd = x.shape[2:]
    kh, kw = W.shape[2:]
    if kh > H + 2 * ph or kw > Wd + 2 * pw:
        raise ValueError(f"W: kernel {kh}x{kw} is larger than the padded input "
                         f"{H + 2 * ph}x{Wd + 2 * pw} (x {tuple(x.shape)}, padding {padding})")
    return (sh, sw), (ph, pw)


def pad2d(x, padding):
    """Zero-pad the last two axes of ``x`` by ``padding`` (an int or (ph, pw)) on each side."""
    ph, pw = _pair("padding", padding, 0)
    if ph == 0 and pw == 0:
        return x
    xp = get_xp()
    return xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def _taps(x, kh, kw, stride, Ho, Wo):
    """The kh*kw strided views x[:, :, r + s*i, t + s*j] (one per filter tap)."""
    sh, sw = stride
    for r in range(kh):
        for t in range(kw):
            yield r, t, x[:, :, r:r + sh * (Ho - 1) + 1:sh, t:t + sw * (Wo - 1) + 1:sw]


# ----------------------------------------------------------------------------- naive
def conv2d_naive(x, W, b=None, stride=1, padding=0):
    """Cross-correlation by loops over (n, f, i, j): the defining formula."""
    (sh, sw), (ph, pw) = _check_conv_args(x, W, b, stride, padding)
    xp = get_xp()
    N, C, H, Wd = x.shape
    F, _, kh, kw = W.shape
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (Wd + 2 * pw - kw) // sw + 1
    xpad = pad2d(x, (ph, pw))
    out = xp.zeros((N, F, Ho, Wo), dtype=W.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    window = xpad[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    out[n, f, i, j] = (window * W[f]).sum() + (b[f] if b is not None else 0)
    return out


def conv2d_naive_backward(dout, x, W, stride=1, padding=0):
    """Gradients (dx, dW, db) by the chain rule applied to every term of the loop.

    Each output out[n, f, i, j] = b[f] + sum(window * W[f]) sends
    dout[n, f, i, j] * W[f] back to its input window, dout[n, f, i, j] * window
    to W[f], and dout[n, f, i, j] to b[f].
    """
    (sh, sw), (ph, pw) = _check_conv_args(x, W, None, stride, padding)
    xp = get_xp()
    N, C, H, Wd = x.shape
    F, _, kh, kw = W.shape
    Ho, Wo = dout.shape[2:]
    xpad = pad2d(x, (ph, pw))
    dxpad = xp.zeros(xpad.shape, dtype=W.dtype)
    dW = xp.zeros(W.shape, dtype=W.dtype)
    db = xp.zeros(F, dtype=W.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    g = dout[n, f, i, j]
                    rs, cs = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
                    dxpad[n, :, rs, cs] += g * W[f]
                    dW[f] += g * xpad[n, :, rs, cs]
                    db[f] += g
    return dxpad[:, :, ph:ph + H, pw:pw + Wd], dW, db


def _dilate(d, stride):
    """Insert stride-1 zeros between the entries of the last two axes."""
    sh, sw = stride
    if sh == 1 and sw == 1:
        return d
    xp = get_xp()
    N, F, Ho, Wo = d.shape
    out = xp.zeros((N, F, (Ho - 1) * sh + 1, (Wo - 1) * sw + 1), dtype=d.dtype)
    out[:, :, ::sh, ::sw] = d
    return out


def conv2d_backward_input_full(dout, W, x_shape, stride=1, padding=0):
    """dE/dx as a *full* convolution of the output gradient with the flipped kernel.

    dx_pad = corr(pad(dilate(dout), k - 1), flip(W)) with input and output
    channels of W swapped; then the padding is cropped.  (The derivation is in
    the chapter "Convolutional networks".)
    """
    sh, sw = _pair("stride", stride, 1)
    ph, pw = _pair("padding", padding, 0)
    xp = get_xp()
    N, C, H, Wd = x_shape
    F, _, kh, kw = W.shape
    d = pad2d(_dilate(dout, (sh, sw)), (kh - 1, kw - 1))
    Wf = xp.ascontiguousarray(W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))   # (C, F, kh, kw)
    full = _conv_im2col(d, Wf, None, (1, 1), (0, 0))[0]   # (N, C, (Ho-1)s + kh, ...)
    dxpad = xp.zeros((N, C, H + 2 * ph, Wd + 2 * pw), dtype=W.dtype)
    dxpad[:, :, :full.shape[2], :full.shape[3]] = full
    return dxpad[:, :, ph:ph + H, pw:pw + Wd]


def conv2d_backward_weight_corr(x, dout, kernel_size, stride=1, padding=0):
    """dE/dW as a correlation of the (padded) input with the (dilated) output gradient.

    dW[f, c, r, t] = sum_{n,i,j} x_pad[n, c, r + s i, t + s j] dout[n, f, i, j]:
    a convolution whose "batch" is the input channels, whose "channels" are the
    examples and whose kernel is the output gradient.
    """
    kh, kw = _pair("kernel_size", kernel_size, 1)
    xp = get_xp()
    xpad = pad2d(x, padding)
    d = _dilate(dout, _pair("stride", stride, 1))
    xt = xp.ascontiguousarray(xpad.transpose(1, 0, 2, 3))     # (C, N, Hp, Wp)
    dt = xp.ascontiguousarray(d.transpose(1, 0, 2, 3))        # (F, N, Hd, Wd)
    corr = _conv_im2col(xt, dt, None, (1, 1), (0, 0))[0]      # (C, F, >= kh, >= kw)
    return xp.ascontiguousarray(corr[:, :, :kh, :kw].transpose(1, 0, 2, 3))


# ----------------------------------------------------------------------------- im2col
def im2col(x, kh, kw, stride=1, padding=0):
    """Lower x (N, C, H, W) to a (N*Ho*Wo, C*kh*kw) matrix, one receptive field per row.

    Row (n, i, j) holds x_pad[n, c, i*s + r, j*s + t] in (c, r, t) order, the
    order of a flattened filter W[f], so ``im2col(x) @ W.reshape(F, -1).T`` is
    the convolution.  The loop runs over the kh*kw taps (each a strided copy of
    N*C*Ho*Wo numbers), not over the Ho*Wo pixels.
    """
    xp = get_xp()
    sh, sw = _pair("stride", stride, 1)
    ph, pw = _pair("padding", padding, 0)
    N, C, H, Wd = x.shape
    Ho, Wo = conv_output_size(H, kh, sh, ph), conv_output_size(Wd, kw, sw, pw)
    xpad = pad2d(x, (ph, pw))
    cols = xp.empty((N, Ho, Wo, C, kh, kw), dtype=x.dtype)
    for r, t, tap in _taps(xpad, kh, kw, (sh, sw), Ho, Wo):
        cols[:, :, :, :, r, t] = tap.transpose(0, 2, 3, 1)
    return cols.reshape(N * Ho * Wo, C * kh * kw)


def col2im(cols, x_shape, kh, kw, stride=1, padding=0):
    """The adjoint of :func:`im2col`: add every row back onto its receptive field.

    Overlapping fields (stride < kernel) add up, which is exactly what the
    gradient of the input needs.
    """
    xp = get_xp()
    sh, sw = _pair("stride", stride, 1)
    ph, pw = _pair("padding", padding, 0)
    N, C, H, Wd = x_shape
    Ho, Wo = conv_output_size(H, kh, sh, ph), conv_output_size(Wd, kw, sw, pw)
    c6 = cols.reshape(N, Ho, Wo, C, kh, kw)
    dxpad = xp.zeros((N, C, H + 2 * ph, Wd + 2 * pw), dtype=cols.dtype)
    for r, t, tap in _taps(dxpad, kh, kw, (sh, sw), Ho, Wo):
        tap += c6[:, :, :, :, r, t].transpose(0, 3, 1, 2)
    return dxpad[:, :, ph:ph + H, pw:pw + Wd]


def _conv_im2col(x, W, b, stride, padding):
    N, C, H, Wd = x.shape
    F, _, kh, kw = W.shape
    Ho = (H + 2 * padding[0] - kh) // stride[0] + 1
    Wo = (Wd + 2 * padding[1] - kw) // stride[1] + 1
    cols = im2col(x, kh, kw, stride, padding)
    out = cols @ W.reshape(F, -1).T                      # (N*Ho*Wo, F)
    if b is not None:
        out += b
    out = out.reshape(N, Ho, Wo, F).transpose(0, 3, 1, 2)   # an NCHW view of NHWC memory
    return out, ("im2col", cols, x.shape, W, stride, padding, b is not None)


def _conv_im2col_backward(dout, cache, need_dx):
    _, cols, x_shape, W, stride, padding, has_b = cache
    xp = get_xp()
    F, C, kh, kw = W.shape
    d = xp.ascontiguousarray(dout.transpose(0, 2, 3, 1)).reshape(-1, F)   # (N*Ho*Wo, F)
    dW = (d.T @ cols).reshape(W.shape)
    db = d.sum(axis=0) if has_b else None
    dx = col2im(d @ W.reshape(F, -1), x_shape, kh, kw, stride, padding) if need_dx else None
    return dx, dW, db


# ----------------------------------------------------------------------------- row lowering
class _RowLowering:
    """Buffers and index tables of the row-lowered convolution for one geometry.

    The product's columns are the output positions (f, j) in that order, or, with
    ``parity=True`` (even output width), all even columns j before all odd ones:
    (j % 2, f, j // 2).  The 2x2 max-pool fused to a convolution in training
    loops (:class:`_ConvPool`) then finds the two horizontal partners of every
    window in two contiguous halves of a row instead of side by side."""

    def __init__(self, x_shape, W_shape, stride, padding, dtype, parity=False):
        xp = get_xp()
        N, C, H, Wd = x_shape
        F, _, kh, kw = W_shape
        (sh, sw), (ph, pw) = stride, padding
        self.key = self.make_key(x_shape, W_shape, stride, padding, dtype, parity)
        self.N, self.C, self.H, self.Wd, self.F, self.kh, self.kw = N, C, H, Wd, F, kh, kw
        self.sh, self.sw, self.ph, self.pw = sh, sw, ph, pw
        self.Hp, self.Wp = H + 2 * ph, Wd + 2 * pw
        self.Ho, self.Wo = (self.Hp - kh) // sh + 1, (self.Wp - kw) // sw + 1
        self.K = kh * C * self.Wp                       # lowered row length (without the 1)
        # padded input in (N, Hp, C, Wp) layout; its border stays zero
        self.xpad = xp.zeros((N, self.Hp, C, self.Wp), dtype=dtype) if (ph or pw) else None
        # lowered input: K numbers per output row, then a 1 that multiplies the bias row
        self.L = xp.empty((N * self.Ho, self.K + 1), dtype=dtype)
        self.L[:, self.K] = 1
        # banded weights: B[(r, c, x), (f, j)] = W[f, c, r, x - j*s]; last row = bias
        self.B = xp.zeros((self.K + 1, F * self.Wo), dtype=dtype)
        f, c, r, t, j = np.meshgrid(np.arange(F), np.arange(C), np.arange(kh), np.arange(kw),
                                    np.arange(self.Wo), indexing="ij")
        rows = (r * C + c) * self.Wp + j * sw + t
        cols = self._column(f, j, F, parity)
        self.band = asarray((rows * (F * self.Wo) + cols).reshape(-1).astype(np.int64))
        f, j = np.meshgrid(np.arange(F), np.arange(self.Wo), indexing="ij")
        self.bias_idx = asarray((self.K * F * self.Wo + self._column(f, j, F, parity))
                                .reshape(-1).astype(np.int64))

    @staticmethod
    def make_key(x_shape, W_shape, stride, padding, dtype, parity=False):
        """What a plan is built for: a cached plan serves a call with the same key."""
        return (tuple(x_shape), tuple(W_shape), stride, padding, np.dtype(dtype), parity)

    def _column(self, f, j, F, parity):
        """Column of output position (f, j) in the product (see the class docstring)."""
        if not parity:
            return f * self.Wo + j
        half = self.Wo // 2
        return (j % 2) * F * half + f * half + j // 2

    def set_weights(self, W, b):
        xp = get_xp()
        Bf = self.B.reshape(-1)
        Bf[self.band] = xp.repeat(W.reshape(-1), self.Wo)
        if b is not None:
            Bf[self.bias_idx] = xp.repeat(b, self.Wo)

    def lower(self, x):
        """Fill L from x (N, C, H, W) — any strides; (N, H, C, W) memory is read directly."""
        xp = get_xp()
        xt = x.transpose(0, 2, 1, 3)                        # (N, H, C, W) view
        if self.xpad is not None:
            self.xpad[:, self.ph:self.ph + self.H, :, self.pw:self.pw + self.Wd] = xt
            src = self.xpad
        else:
            src = xp.ascontiguousarray(xt)
        sN, sH = src.strides[0], src.strides[1]
        win = xp.lib.stride_tricks.as_strided(
            src, shape=(self.N, self.Ho, self.K), strides=(sN, self.sh * sH, src.itemsize))
        self.L[:, :self.K].reshape(self.N, self.Ho, self.K)[...] = win
        return src

    def fold_dW(self, dB, W_shape, has_b):
        """Sum the banded gradient back onto the (F, C, kh, kw) filter entries."""
        dBf = dB.reshape(-1)
        dW = dBf[self.band].reshape(*W_shape, self.Wo).sum(axis=-1)
        db = dBf[self.bias_idx].reshape(self.F, self.Wo).sum(axis=1) if has_b else None
        return dW, db

    def backward(self, d, W_shape, has_b, need_dx):
        """``(dx, dW, db)`` from the gradient ``d`` of the product (N*Ho, F*Wo), in
        this plan's column order: dW and db from L^T d folded onto the filter
        entries, dx by unlowering d B^T (None unless ``need_dx``)."""
        dW, db = self.fold_dW(self.L.T @ d, W_shape, has_b)
        dx = self.unlower(d @ self.B[:self.K].T) if need_dx else None
        return dx, dW, db

    def unlower(self, dL):
        """Add the rows of dL (N*Ho, K) back onto the input rows they came from: dx."""
        xp = get_xp()
        N, Ho, kh, sh = self.N, self.Ho, self.kh, self.sh
        CW = self.C * self.Wp
        d4 = dL.reshape(N, Ho, kh, CW)
        dpad = xp.zeros((N, self.Hp, CW), dtype=dL.dtype)
        for r in range(kh):
            dpad[:, r:r + sh * (Ho - 1) + 1:sh] += d4[:, :, r]
        dpad = dpad.reshape(N, self.Hp, self.C, self.Wp)
        return dpad[:, self.ph:self.ph + self.H, :, self.pw:self.pw + self.Wd].transpose(0, 2, 1, 3)


def _band_ok(x_shape, W_shape, padding, stride):
    N, C, H, Wd = x_shape
    F, _, kh, kw = W_shape
    Wp = Wd + 2 * padding[1]
    Wo = (Wp - kw) // stride[1] + 1
    return (kh * C * Wp + 1) * F * Wo <= _BAND_LIMIT


def _conv_rows(x, W, b, stride, padding, plan=None, out=None):
    if plan is None or plan.key != _RowLowering.make_key(x.shape, W.shape, stride, padding,
                                                         W.dtype):
        plan = _RowLowering(x.shape, W.shape, stride, padding, W.dtype)
    plan.set_weights(W, b)
    plan.lower(x)
    xp = get_xp()
    res = xp.matmul(plan.L, plan.B, out=out) if out is not None else plan.L @ plan.B
    N, Ho, F, Wo = plan.N, plan.Ho, plan.F, plan.Wo
    return res.reshape(N, Ho, F, Wo).transpose(0, 2, 1, 3), ("fast", plan, W.shape, b is not None)


def _conv_rows_backward(dout, cache, need_dx):
    _, plan, W_shape, has_b = cache
    xp = get_xp()
    d = dout.transpose(0, 2, 1, 3)                           # (N, Ho, F, Wo)
    d = d.reshape(plan.N * plan.Ho, plan.F * plan.Wo) if d.flags.c_contiguous else \
        xp.ascontiguousarray(d).reshape(plan.N * plan.Ho, plan.F * plan.Wo)
    return plan.backward(d, W_shape, has_b, need_dx)


def _max2x2(taps, top, bot, left, upper, first, out):
    """Max of every 2x2 window from its four members ``taps`` (top left, top right,
    bottom left, bottom right; same-shape arrays), into ``out``.  Records which
    member won as 0/1 masks in the data's dtype, the *first* maximum on ties (as
    PyTorch): ``left`` (top row: left beat right), ``upper`` (bottom row: left beat
    right), ``first`` (the top row won).  ``top`` and ``bot`` are scratch."""
    xp = get_xp()
    a00, a01, a10, a11 = taps
    xp.maximum(a00, a01, out=top)
    xp.maximum(a10, a11, out=bot)
    xp.greater_equal(a00, a01, out=left)
    xp.greater_equal(a10, a11, out=upper)
    xp.greater_equal(top, bot, out=first)
    return xp.maximum(top, bot, out=out)


def _route2x2(d, left, upper, first, gtop, gbot, dtaps):
    """Backward of :func:`_max2x2`: each window's gradient ``d`` to the member that
    won, written into the four views ``dtaps``; ``gtop``, ``gbot`` are scratch."""
    xp = get_xp()
    t00, t01, t10, t11 = dtaps
    xp.multiply(d, first, out=gtop)
    xp.subtract(d, gtop, out=gbot)           # exact: each entry is d or 0
    xp.multiply(gtop, left, out=t00)
    xp.subtract(gtop, t00, out=t01)
    xp.multiply(gbot, upper, out=t10)
    xp.subtract(gbot, t10, out=t11)


_FUSE_CONV_POOL = True     # training loops fuse Conv2D + 2x2 MaxPool2D (tests switch it off)
_POOL_PLANS = 4            # fused plans a layer keeps (training batch, last batch, validation)


class _ConvPool:
    """A stride-1 convolution and the 2x2, stride-2 max-pool after it, as one
    operation (NumPy; used by training loops, see :meth:`Conv2D._forward_pooled`).

    The convolution is the row-lowered product with its columns in parity
    order (:class:`_RowLowering`), so each row of the product holds the even
    output columns of all filters, then the odd ones.  The four members of a
    pooling window are then at the same place in four contiguous blocks (even
    or odd row, even or odd column), and the pool runs over long contiguous runs
    instead of pairs of neighbours.  Its result lands in (N, Ho/2, F, Wo/2)
    memory, the layout the next convolution reads directly.  The function, the
    tie rule (the first maximum of a window, as PyTorch) and the gradients are
    those of :class:`Conv2D` followed by :class:`MaxPool2D`."""

    def __init__(self, x_shape, W_shape, padding, dtype):
        rl = self.rl = _RowLowering(x_shape, W_shape, (1, 1), padding, dtype, parity=True)
        self.out = np.empty((rl.N * rl.Ho, rl.F * rl.Wo), dtype)
        half = (rl.N * rl.Ho // 2, rl.F * rl.Wo // 2)
        self.top, self.bot, self.left, self.upper, self.first = (np.empty(half, dtype)
                                                                  for _ in range(5))
        self.pooled = np.empty((rl.N, rl.Ho // 2, rl.F, rl.Wo // 2), dtype)
        self.dconv = np.empty_like(self.out)

    def _taps(self, a):
        """The window members (top left, top right, bottom left, bottom right) as
        (N*Ho/2, F*Wo/2) views of a product-shaped array."""
        v = a.reshape(self.top.shape[0], 2, 2, self.top.shape[1])
        return v[:, 0, 0], v[:, 0, 1], v[:, 1, 0], v[:, 1, 1]

    def forward(self, x, W, b):
        rl = self.rl
        rl.set_weights(W, b)
        rl.lower(x)
        np.matmul(rl.L, rl.B, out=self.out)
        _max2x2(self._taps(self.out), self.top, self.bot, self.left, self.upper, self.first,
                self.pooled.reshape(self.top.shape))
        return self.pooled.transpose(0, 2, 1, 3)

    def backward(self, dpooled, need_dx, W_shape, has_b):
        rl = self.rl
        d = dpooled.transpose(0, 2, 1, 3)
        d = (d if d.flags.c_contiguous else np.ascontiguousarray(d)).reshape(self.top.shape)
        # the forward pass's scratch (top, bot) is free now
        _route2x2(d, self.left, self.upper, self.first, self.top, self.bot,
                  self._taps(self.dconv))
        return rl.backward(self.dconv, W_shape, has_b, need_dx)


# ----------------------------------------------------------------------------- functional API
def conv2d_forward(x, W, b=None, stride=1, padding=0, method="fast"):
    """Convolution (cross-correlation) of x (N, C, H, W) with W (F, C, kh, kw) plus b (F,).

    Returns ``(out, cache)``, out (N, F, Ho, Wo); ``cache`` feeds
    :func:`conv2d_backward`.  ``method``: "naive", "im2col" or "fast" (row
    lowering; im2col when the banded matrix would be large).
    """
    stride, padding = _check_conv_args(x, W, b, stride, padding)
    if method not in CONV_METHODS:
        raise ValueError(f"method: expected one of {CONV_METHODS}, got {method!r}")
    if method == "naive":
        return conv2d_naive(x, W, b, stride, padding), ("naive", x, W, stride, padding,
                                                        b is not None)
    if method == "fast" and _band_ok(x.shape, W.shape, padding, stride):
        return _conv_rows(x, W, b, stride, padding)
    return _conv_im2col(x, W, b, stride, padding)


def conv2d_backward(dout, cache, need_dx=True):
    """Gradients ``(dx, dW, db)`` of a convolution from dE/dout (db None without bias)."""
    kind = cache[0]
    if kind == "naive":
        _, x, W, stride, padding, has_b = cache
        dx, dW, db = conv2d_naive_backward(dout, x, W, stride, padding)
        return (dx if need_dx else None), dW, (db if has_b else None)
    if kind == "fast":
        return _conv_rows_backward(dout, cache, need_dx)
    return _conv_im2col_backward(dout, cache, need_dx)


def conv2d(x, W, b=None, stride=1, padding=0, method="fast"):
    """The convolution's output only (see :func:`conv2d_forward`)."""
    return conv2d_forward(x, W, b, stride, padding, method)[0]


# ----------------------------------------------------------------------------- pooling
def _pool_geometry(x, kernel, stride):
    check_array("x", x, ndim=4, floating=True, finite=False)
    kh, kw = kernel
    H, Wd = x.shape[2:]
    if kh > H or kw > Wd:
        raise ValueError(f"x: pooling window {kh}x{kw} is larger than the input "
                         f"{H}x{Wd} ({describe(x)})")
    return (H - kh) // stride[0] + 1, (Wd - kw) // stride[1] + 1


def _storage_order(x):
    """Axis order in which x's memory is C-contiguous: NCHW or (N, H, C, W), else None."""
    if x.flags.c_contiguous:
        return (0, 1, 2, 3)
    if x.transpose(0, 2, 1, 3).flags.c_contiguous:
        return (0, 2, 1, 3)
    return None


def _pair_view(a, perm):
    """View a (N, C, H, W), H and W even, as (R, 2, inner, 2) over its memory:
    axis 1 picks the row of a 2x2 window, axis 3 its column; both partners of a
    window are at fixed offsets, and the inner loop runs over `inner` windows."""
    st = a.transpose(perm)
    n_before = int(np.prod(st.shape[:perm.index(2)]))     # axes before H in memory
    return st.reshape(n_before * (a.shape[2] // 2), 2, -1, 2)


def _from_pairs(v, like_shape, perm):
    """(R, inner) window results back to an NCHW-shaped view of (N, ..., H/2, ...) memory."""
    N, C_, H, W = like_shape
    shp = [N, C_, H // 2, W // 2]
    return v.reshape([shp[i] for i in perm]).transpose(np.argsort(perm))


def maxpool2d_forward(x, kernel_size=2, stride=None):
    """Max over kh x kw windows moved by ``stride`` (default: the window size).

    Computed with whole-array ``maximum`` calls on the kh*kw tap views (each a
    strided view of x, so the output keeps x's memory layout).  The common 2x2
    stride-2 case reads x's memory as (rows, 2, windows, 2), so the four
    partners of every window sit at fixed offsets and each operation is one
    long loop; it also records, with three comparisons, which tap won (the
    first one on ties, as PyTorch), so the backward pass is four products.
    Returns ``(out, cache)``.
    """
    kernel = _pair("kernel_size", kernel_size, 1)
    stride = kernel if stride is None else _pair("stride", stride, 1)
    Ho, Wo = _pool_geometry(x, kernel, stride)
    xp = get_xp()
    perm = _storage_order(x)
    if kernel == (2, 2) and stride == (2, 2) and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0 \
            and perm is not None:
        v = _pair_view(x, perm)
        taps = v[:, 0, :, 0], v[:, 0, :, 1], v[:, 1, :, 0], v[:, 1, :, 1]
        # 0/1 masks in x's dtype: the backward products then need no type casts
        top, bot, left, upper, first = (xp.empty(taps[0].shape, dtype=x.dtype)
                                        for _ in range(5))
        out = _max2x2(taps, top, bot, left, upper, first, top)
        return _from_pairs(out, x.shape, perm), ("2x2", x.shape, perm, left, upper, first)
    taps = [tap for _, _, tap in _taps(x, *kernel, stride, Ho, Wo)]
    out = taps[0].copy() if len(taps) == 1 else xp.maximum(taps[0], taps[1])
    for tap in taps[2:]:
        xp.maximum(out, tap, out=out)
    return out, ("taps", x.shape, x, out, kernel, stride)


def _zeros_like_uncovered(x, kernel, stride, Ho, Wo):
    """dx for pooling: zeros where no window reads; the covered part is overwritten."""
    xp = get_xp()
    dx = xp.empty_like(x)          # same memory layout as x
    hc, wc = (Ho - 1) * stride[0] + kernel[0], (Wo - 1) * stride[1] + kernel[1]
    dx[:, :, hc:] = 0
    dx[:, :, :hc, wc:] = 0
    return dx


def maxpool2d_backward(dout, cache):
    """Route each output gradient to the *first* maximum of its window (PyTorch's rule)."""
    xp = get_xp()
    if cache[0] == "2x2":
        _, shape, perm, left, upper, first = cache
        dx = xp.empty(tuple(shape[i] for i in perm), dtype=dout.dtype).transpose(
            np.argsort(perm))                               # x's memory layout
        v = _pair_view(dx, perm)
        d = dout.transpose(perm)
        d = (d if d.flags.c_contiguous else xp.ascontiguousarray(d)).reshape(first.shape)
        _route2x2(d, left, upper, first, xp.empty_like(d), xp.empty_like(d),
                  (v[:, 0, :, 0], v[:, 0, :, 1], v[:, 1, :, 0], v[:, 1, :, 1]))
        return dx
    _, shape, x, out, kernel, stride = cache
    Ho, Wo = out.shape[2:]
    overlap = stride != kernel     # windows overlap or leave gaps: accumulate into zeros
    dx = xp.zeros_like(x) if overlap else _zeros_like_uncovered(x, kernel, stride, Ho, Wo)
    rem = dout.copy()              # gradient not yet handed out (ties: first tap wins)
    taps = list(_taps(x, *kernel, stride, Ho, Wo))
    dtaps = [d for _, _, d in _taps(dx, *kernel, stride, Ho, Wo)]
    for k, ((_, _, tap), dtap) in enumerate(zip(taps, dtaps)):
        hit = xp.equal(tap, out)
        if overlap:
            dtap += rem * hit
        else:
            xp.multiply(rem, hit, out=dtap)
        if k + 1 < len(taps):
            xp.logical_not(hit, out=hit)
            rem *= hit
    return dx


def avgpool2d_forward(x, kernel_size=2, stride=None):
    """Mean over kh x kw windows (no padding).  Returns ``(out, cache)``."""
    kernel = _pair("kernel_size", kernel_size, 1)
    stride = kernel if stride is None else _pair("stride", stride, 1)
    Ho, Wo = _pool_geometry(x, kernel, stride)
    taps = [tap for _, _, tap in _taps(x, *kernel, stride, Ho, Wo)]
    out = taps[0].copy()
    for tap in taps[1:]:
        out += tap
    out *= 1.0 / (kernel[0] * kernel[1])
    return out, (x.shape, x.dtype, kernel, stride)


def avgpool2d_backward(dout, cache):
    shape, dtype, kernel, stride = cache
    xp = get_xp()
    dx = xp.zeros(shape, dtype=dtype)
    g = dout * (1.0 / (kernel[0] * kernel[1]))
    for _, _, dtap in _taps(dx, *kernel, stride, *dout.shape[2:]):
        dtap += g
    return dx


# ----------------------------------------------------------------------------- layers
def _layer_dtype(dtype):
    d = np.dtype(dtype) if dtype is not None else get_default_dtype()
    if d not in (np.float32, np.float64):
        raise ValueError(f"dtype: expected float32 or float64, got {d}")
    return d


@register_layer
class Conv2D(Layer):
    """2-D convolution layer (cross-correlation), NCHW in and out.

    ``params["W"]``: (out_channels, in_channels, kh, kw); ``params["b"]``:
    (out_channels,).  Weights are drawn by ``init`` (default He, with
    fan_in = in_channels*kh*kw), biases start at zero.  ``method`` picks the
    implementation ("fast" row lowering by default, "im2col" or "naive").
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
        self.dtype = _layer_dtype(dtype)
        kh, kw = self.kernel_size
        fan_in, fan_out = self.in_channels * kh * kw, self.out_channels * kh * kw
        W = fn((self.out_channels, self.in_channels, kh, kw), fan_in, fan_out, get_rng())
        self.params["W"] = asarray(np.asarray(W, dtype=self.dtype))
        self.use_bias = bool(bias)
        if self.use_bias:
            self.params["b"] = asarray(np.zeros(self.out_channels, dtype=self.dtype))
        self._plan = None
        self.zero_grad()

    def output_shape(self, input_shape):
        """(N, F, Ho, Wo) for an input of shape (N, C, H, W)."""
        N, C, H, Wd = input_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (N, self.out_channels, conv_output_size(H, kh, sh, ph),
                conv_output_size(Wd, kw, sw, pw))

    def _check_input(self, x):
        check_array("x", x, ndim=4, floating=True)
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

    # set by Sequential in training loops: the 2x2 MaxPool2D that follows this layer
    _pool_next = None

    def forward(self, x):
        """The convolution alone, also while a training loop has linked this layer to
        the pool after it (e.g. from a callback of ``nb.fit``)."""
        self._check_input(x)
        pool, self._pool_next = self._pool_next, None
        try:
            return self._forward(x)
        finally:
            self._pool_next = pool

    __call__ = forward

    def __getstate__(self):
        # copies and pickles leave out the training loop's fused plans and link
        state = self.__dict__.copy()
        state.pop("_pool_next", None)
        bufs = dict(state.get("_bufs", {}))
        bufs.pop("conv_pool", None)
        state["_bufs"] = bufs
        return state

    def _set_reuse(self, flag):
        super()._set_reuse(flag)
        if not flag:               # end of a training loop: drop the fused plans
            self._bufs.pop("conv_pool", None)

    def _forward(self, x):
        pool = self._pool_next
        if pool is not None:
            out = pool._passthrough = self._forward_pooled(x)
            if out is not None:
                return out
        W, b = self.params["W"], self.params.get("b")
        if self.method == "fast" and _band_ok(x.shape, W.shape, self.padding, self.stride):
            p = self._plan
            if p is None or p.key != _RowLowering.make_key(x.shape, W.shape, self.stride,
                                                           self.padding, W.dtype):
                p = self._plan = _RowLowering(x.shape, W.shape, self.stride, self.padding,
                                              W.dtype)
            out = (self._buffer("out", (p.N * p.Ho, p.F * p.Wo), W.dtype)
                   if self._reuse else None)
            out, self._cache = _conv_rows(x, W, b, self.stride, self.padding, p, out)
        else:
            out, self._cache = conv2d_forward(x, W, b, self.stride, self.padding,
                                              "im2col" if self.method == "fast" else self.method)
        self._out_shape = out.shape
        return out

    def _forward_pooled(self, x):
        """Convolution and the following 2x2 max-pool in one (:class:`_ConvPool`),
        or None where that does not apply (then both layers run as usual)."""
        W, b = self.params["W"], self.params.get("b")
        if type(x) is not np.ndarray or type(W) is not np.ndarray \
                or not _band_ok(x.shape, W.shape, self.padding, self.stride):
            return None
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        if (x.shape[2] + 2 * ph - kh + 1) % 2 or (x.shape[3] + 2 * pw - kw + 1) % 2:
            return None
        plans = self._bufs.setdefault("conv_pool", {})
        key = (tuple(x.shape), W.dtype)
        p = plans.pop(key, None)             # re-inserted last: least recently used first
        if p is None:
            if len(plans) >= _POOL_PLANS:
                del plans[next(iter(plans))]
            p = _ConvPool(x.shape, W.shape, self.padding, W.dtype)
        plans[key] = p
        out = p.forward(x, W, b)
        self._cache = ("conv_pool", p, W.shape, b is not None)
        self._out_shape = out.shape
        return out

    def _backward(self, dout, need_dx=True):
        if self._cache[0] == "conv_pool":
            _, p, W_shape, has_b = self._cache
            dx, dW, db = p.backward(dout, need_dx, W_shape, has_b)
        else:
            dx, dW, db = conv2d_backward(dout, self._cache, need_dx)
        self._accumulate("W", dW)
        if self.use_bias:
            self._accumulate("b", db)
        self._fresh = False
        return dx

    def config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": list(self.padding), "init": self.init, "dtype": self.dtype.name,
                "method": self.method, "bias": self.use_bias}


class _Pool(Layer):
    def __init__(self, kernel_size=2, stride=None):
        super().__init__()
        self.kernel_size = _pair("kernel_size", kernel_size, 1)
        self.stride = self.kernel_size if stride is None else _pair("stride", stride, 1)

    def _check_input(self, x):
        check_array("x", x, ndim=4, floating=True)
        _pool_geometry(x, self.kernel_size, self.stride)

    def config(self):
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride)}


@register_layer
class MaxPool2D(_Pool):
    """Max pooling over kh x kw windows (stride defaults to the window size)."""

    # in training loops the Conv2D before a 2x2 pool may compute both
    # (Conv2D._forward_pooled); it hands over its result here, and this layer
    # then passes values and gradients through unchanged
    _passthrough = None
    _fused = False

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_passthrough", None)
        return state

    def _forward(self, x):
        self._fused = x is self._passthrough and x is not None
        if self._fused:
            self._out_shape = x.shape
            return x
        out, self._cache = maxpool2d_forward(x, self.kernel_size, self.stride)
        self._out_shape = out.shape
        return out

    def _backward(self, dout, need_dx=True):
        if self._fused:
            return dout
        return maxpool2d_backward(dout, self._cache)


@register_layer
class AvgPool2D(_Pool):
    """Average pooling over kh x kw windows (stride defaults to the window size)."""

    def _forward(self, x):
        out, self._cache = avgpool2d_forward(x, self.kernel_size, self.stride)
        self._out_shape = out.shape
        return out

    def _backward(self, dout, need_dx=True):
        return avgpool2d_backward(dout, self._cache)


@register_layer
class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W) in C, H, W order (PyTorch's ``flatten(1)``)."""

    def _check_input(self, x):
        check_array("x", x, ndim=(2, 3, 4, 5), floating=True)

    def _forward(self, x):
        self._shape = x.shape
        # a strided input (e.g. a fast convolution's (N, H, C, W) memory) is copied
        # here; backward hands the gradient back in the same memory layout, so the
        # layers below work on matching strides
        self._layout = None if x.flags.c_contiguous else x
        out = x.reshape(x.shape[0], -1)
        self._out_shape = out.shape
        return out

    def _backward(self, dout, need_dx=True):
        if not need_dx:
            return None
        d = dout.reshape(self._shape)
        if self._layout is None:
            return d
        dx = get_xp().empty_like(self._layout)
        dx[...] = d
        return dx


class _BatchNorm(Layer):
    """Batch normalisation (Ioffe & Szegedy 2015) with PyTorch's conventions.

    Training: normalise with the batch mean and (biased) variance, then scale
    by ``gamma`` and shift by ``beta``; update the running statistics as
    ``running = (1 - momentum) * running + momentum * batch`` with the
    *unbiased* batch variance.  Evaluation (``layer.eval()``): normalise with
    the running statistics.  The running statistics live in ``buffers``.
    """
    _axes = (0,)
    _ndim = 2

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=None):
        super().__init__()
        self.num_features = check_int("num_features", num_features, minimum=1)
        self.eps = float(eps)
        self.momentum = float(momentum)
        if not (self.eps > 0):
            raise ValueError(f"eps: expected a number > 0, got {eps}")
        if not (0 <= self.momentum <= 1):
            raise ValueError(f"momentum: expected a number in [0, 1], got {momentum}")
        self.dtype = _layer_dtype(dtype)
        self.params["gamma"] = asarray(np.ones(self.num_features, dtype=self.dtype))
        self.params["beta"] = asarray(np.zeros(self.num_features, dtype=self.dtype))
        self.buffers = {"running_mean": asarray(np.zeros(self.num_features, dtype=self.dtype)),
                        "running_var": asarray(np.ones(self.num_features, dtype=self.dtype))}
        self.zero_grad()

    def _shape(self, v):
        return v.reshape((1, -1) + (1,) * (self._ndim - 2))

    def _check_input(self, x):
        check_array("x", x, ndim=self._ndim, floating=True)
        if x.shape[1] != self.num_features:
            raise ValueError(f"x: expected {self.num_features} features/channels on axis 1 for "
                             f"{type(self).__name__}({self.num_features}), got {describe(x)}")
        check_dtype_match("x", x, self.params["gamma"].dtype)
        if self.training and x.size // x.shape[1] < 2:
            raise ValueError(f"x: batch normalisation in training mode needs more than one "
                             f"value per channel, got {describe(x)}")

    def _forward(self, x):
        xp = get_xp()
        gamma, beta = self.params["gamma"], self.params["beta"]
        if self.training:
            m = x.size // x.shape[1]
            mean = x.mean(axis=self._axes)
            xc = x - self._shape(mean)
            var = (xc * xc).mean(axis=self._axes)
            if m > 1:   # one value per channel has no unbiased variance: stats stay
                rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
                mom = self.momentum
                self.buffers["running_mean"] = (1 - mom) * rm + mom * mean
                self.buffers["running_var"] = (1 - mom) * rv + mom * var * (m / (m - 1))
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
            xc = x - self._shape(mean)
        inv = 1.0 / xp.sqrt(var + self.eps)
        xhat = xc * self._shape(inv)
        self._cache = (xhat, inv, self.training)
        out = xhat * self._shape(gamma) + self._shape(beta)
        self._out_shape = out.shape
        return out

    def _backward(self, dout, need_dx=True):
        xhat, inv, training = self._cache
        gamma = self.params["gamma"]
        dbeta = dout.sum(axis=self._axes)
        dgamma = (dout * xhat).sum(axis=self._axes)
        self._accumulate("beta", dbeta)
        self._accumulate("gamma", dgamma)
        self._fresh = False
        if not need_dx:
            return None
        if not training:
            return dout * self._shape(gamma * inv)
        # dx = gamma*inv * (dout - mean(dout) - xhat * mean(dout * xhat))
        m = dout.size // dout.shape[1]
        return self._shape(gamma * inv) * (dout - self._shape(dbeta / m)
                                           - xhat * self._shape(dgamma / m))

    def config(self):
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "dtype": self.dtype.name}


@register_layer
class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, D) activations, per feature."""
    _axes = (0,)
    _ndim = 2


@register_layer
class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) activations, per channel."""
    _axes = (0, 2, 3)
    _ndim = 4



# ----------------------------------------------------------------------------- explorer
KERNELS = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "blur": [[1 / 9] * 3] * 3,
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "edge-x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],       # Sobel: responds to vertical edges
    "edge-y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],       # Sobel: responds to horizontal edges
    "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
}


def convolution_figure(image, kernel="edge-x", stride=1, padding=0, fig=None):
    """Convolve one grey image (H, W) with a named 3x3 kernel and draw input, kernel, output.

    The callback of :func:`convolution_explorer`.  The title states the
    output-size formula with the numbers filled in.  Returns ``(fig, out)``,
    out of shape (Ho, Wo).
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415
    if kernel not in KERNELS:
        raise ValueError(f"kernel: expected one of {tuple(KERNELS)}, got {kernel!r}")
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"image: expected a 2-D grey image, got shape {img.shape}")
    k = np.array(KERNELS[kernel], dtype=np.float64)
    H, Wd = img.shape
    Ho = conv_output_size(H, 3, stride, padding)
    Wo = conv_output_size(Wd, 3, stride, padding)
    out = conv2d(asarray(img[None, None]), asarray(k[None, None]), None, stride, padding,
                 "im2col")
    out = np.asarray(out.get() if hasattr(out, "get") else out)[0, 0]
    if fig is None:
        fig = plt.figure(figsize=(10, 3.4))
    fig.clf()
    axs = fig.subplots(1, 3, gridspec_kw={"width_ratios": [3, 1.2, 3]})
    padded = np.pad(img, padding)
    axs[0].imshow(padded, cmap="gray")
    if padding:
        axs[0].add_patch(plt.Rectangle((padding - 0.5, padding - 0.5), Wd, H, fill=False,
                                       ec="tab:orange", lw=1.5))
    axs[0].add_patch(plt.Rectangle((-0.5, -0.5), 3, 3, fill=False, ec="tab:red", lw=2))
    if stride > 1 and Wo > 1:
        axs[0].add_patch(plt.Rectangle((stride - 0.5, -0.5), 3, 3, fill=False, ec="tab:red",
                                       lw=1, ls="--"))
    axs[0].set_title(f"input {H}x{Wd}, padded to {H + 2 * padding}x{Wd + 2 * padding}")
    axs[1].imshow(k, cmap="coolwarm", vmin=-np.abs(k).max(), vmax=np.abs(k).max())
    for (r, t), v in np.ndenumerate(k):
        axs[1].text(t, r, f"{v:.2g}", ha="center", va="center", fontsize=8)
    axs[1].set_title(f"kernel '{kernel}'")
    axs[2].imshow(out, cmap="gray")
    axs[2].set_title(f"output {Ho}x{Wo} = ({H}+2*{padding}-3)//{stride}+1")
    for a in axs:
        a.set_xticks([])
        a.set_yticks([])
    fig.tight_layout()
    return fig, out


def convolution_explorer(image):
    """Widgets (kernel, stride, padding) driving :func:`convolution_figure` on ``image``."""
    import ipywidgets as w  # noqa: PLC0415
    import matplotlib.pyplot as plt  # noqa: PLC0415

    def show(kernel, stride, padding):
        fig, _ = convolution_figure(image, kernel, stride, padding)
        plt.show()

    return w.interactive(show, kernel=w.Dropdown(options=list(KERNELS), value="edge-x"),
                         stride=w.IntSlider(value=1, min=1, max=4),
                         padding=w.IntSlider(value=0, min=0, max=3))
