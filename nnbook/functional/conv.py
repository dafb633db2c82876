"""The mathematics of convolution: three implementations of one function, with backward passes.

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

Pooling is in :mod:`nnbook.functional.pool`; the layers that use both are
:class:`nnbook.Conv2D`, :class:`nnbook.MaxPool2D` and friends.  In training loops
:mod:`nnbook.engine` runs a stride-1 ``fast`` convolution and the 2x2 max-pool
after it as one operation (same values, gradients and tie rule).

Every function takes its array module from :func:`nnbook.get_xp`, so the same
code runs on NumPy and CuPy.
"""
from __future__ import annotations

import numpy as np

from .._checks import check_array, check_int, describe
from ..backend import asarray, get_xp

__all__ = [
    "conv_output_size", "pad2d", "im2col", "col2im",
    "conv2d", "conv2d_forward", "conv2d_backward",
    "conv2d_naive", "conv2d_naive_backward",
    "conv2d_backward_input_full", "conv2d_backward_weight_corr", "CONV_METHODS",
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
    loops (:mod:`nnbook.engine`) then finds the two horizontal partners of every
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
