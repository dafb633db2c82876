"""A small automatic-differentiation engine over arrays: forward and reverse mode.

Every value is a :class:`Tensor`: an array plus, optionally,

* a **tangent** (forward mode, a dual number generalised to arrays): the
  directional derivative ``J v`` of the value along the tangents the inputs
  were seeded with.  Each primitive pushes tangents through its JVP rule as it
  runs, so one evaluation of ``f`` gives ``f(x)`` and ``J_f(x) v``;
* its **parents** and the primitive that made it (reverse mode): evaluating
  ``f`` records the computation graph, a DAG whose nodes are listed in
  topological order by :func:`topological_order`; :meth:`Tensor.backward`
  walks it in reverse and applies each primitive's VJP rule, summing the
  contributions of all children of a node, which gives ``u^T J_f(x)``.

Both modes share one table of primitives (``PRIMITIVES``): for each, the
forward function, the JVP rule and the VJP rule sit next to each other.

>>> import numpy as np, nnbook.autodiff as ad
>>> f = lambda x: (ad.tanh(x) ** 2).sum()
>>> g = ad.grad(f)(np.array([0.5, -1.0]))             # reverse mode
>>> y, t = ad.jvp(f, np.array([0.5, -1.0]), np.array([1.0, 0.0]))  # forward mode
>>> bool(np.isclose(t, g[0]))
True

Public functions: :func:`grad`, :func:`value_and_grad`, :func:`vjp`,
:func:`jvp`, :func:`jacobian`, :func:`chain_jacobian` (the thesis's
Algorithms 1 and 2), :func:`backprop` (Algorithm 3), :func:`trace`,
:func:`graph`, :func:`replay` (a recorded graph frozen into a function), and the operations ``exp, log, sqrt, tanh, sigmoid, relu,
abs, softmax, log_softmax, cross_entropy, matmul, reshape, transpose, stack,
sum, mean`` (also reachable as operators and
methods: ``+ - * / ** @``, ``-x``, ``x.sum()``, ``x.T``, ``x[i]`` ...).
Arrays come from :func:`nnbook.get_xp`, so the engine runs on NumPy and CuPy.
:func:`nnbook.explorers.draw_graph` draws a graph.
"""
from __future__ import annotations

import dataclasses
import numbers
from typing import Callable

import numpy as np

from ._checks import describe
from .backend import get_xp

__all__ = ["Tensor", "PRIMITIVES", "STATS", "reset_stats",
           "grad", "value_and_grad", "vjp", "jvp", "jacobian", "chain_jacobian", "backprop",
           "trace", "graph", "topological_order",
           "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs", "softmax", "log_softmax",
           "cross_entropy", "matmul", "reshape", "transpose", "stack", "sum", "mean"]

#: Counts of primitive applications since the last :func:`reset_stats`:
#: ``forward`` (primitive evaluations), ``jvp`` and ``vjp`` (rule applications).
STATS = {"forward": 0, "jvp": 0, "vjp": 0}


def reset_stats():
    """Set the counters in :data:`STATS` to zero."""
    for k in STATS:
        STATS[k] = 0


# ----------------------------------------------------------------------------------------
# the node class
# ----------------------------------------------------------------------------------------
class Tensor:
    """An array in a computation: ``value`` plus the bookkeeping of both AD modes.

    ``value``: the array (NumPy or CuPy).  ``tangent``: forward-mode
    derivative (same shape as ``value``) or None.  ``grad``: filled by
    :meth:`backward` on tensors created with ``requires_grad=True``.
    ``op``/``parents``/``kw``: the primitive that produced the tensor and its
    inputs (None/() for leaves).  ``name``: a label for :func:`graph`.
    """

    __array_ufunc__ = None             # so that ndarray + Tensor calls Tensor.__radd__

    def __init__(self, value, requires_grad=False, name=None, tangent=None):
        self.value = _as_value("value", value)
        self.requires_grad = bool(requires_grad)
        if requires_grad and self.value.dtype.kind != "f":
            raise TypeError(f"value: a tensor to differentiate must be floating point "
                            f"(float32 or float64), got dtype {self.value.dtype}")
        self.tangent = None
        if tangent is not None:
            self.tangent = _as_tangent("tangent", tangent, self.value)
        self.grad = None
        self.op = None
        self.parents = ()
        self.kw = {}
        self.name = None if name is None else str(name)

    # --- properties ----------------------------------------------------------------
    @property
    def shape(self):
        return tuple(self.value.shape)

    @property
    def ndim(self):
        return self.value.ndim

    @property
    def size(self):
        return int(self.value.size)

    @property
    def dtype(self):
        return self.value.dtype

    @property
    def T(self):
        return transpose(self)

    def item(self):
        return self.value.item()

    def numpy(self):
        from .backend import to_numpy  # noqa: PLC0415
        return to_numpy(self.value)

    def named(self, name):
        """Set the label shown by :func:`graph`; returns ``self``."""
        self.name = str(name)
        return self

    def __repr__(self):
        what = f"op={self.op}" if self.op else ("leaf, requires_grad" if self.requires_grad
                                                  else "constant")
        label = f"{self.name!r}, " if self.name else ""
        v = self.value
        body = f"{v.item():.6g}" if v.size == 1 else f"shape={tuple(v.shape)}"
        return f"Tensor({label}{body}, dtype={v.dtype}, {what})"

    def __len__(self):
        return len(self.value)

    def __bool__(self):
        raise TypeError("Tensor: the truth value of a tensor is ambiguous inside a "
                        "differentiated function; compare .value instead")

    # --- operators -------------------------------------------------------------------
    def __add__(self, o):
        return _apply("add", self, o)

    def __radd__(self, o):
        return _apply("add", o, self)

    def __sub__(self, o):
        return _apply("sub", self, o)

    def __rsub__(self, o):
        return _apply("sub", o, self)

    def __mul__(self, o):
        return _apply("mul", self, o)

    def __rmul__(self, o):
        return _apply("mul", o, self)

    def __truediv__(self, o):
        return _apply("div", self, o)

    def __rtruediv__(self, o):
        return _apply("div", o, self)

    def __pow__(self, p):
        if isinstance(p, Tensor):
            return exp(p * log(self))
        if isinstance(p, bool) or not isinstance(p, numbers.Real):
            raise TypeError(f"exponent: expected a real number or a Tensor, got "
                            f"{type(p).__name__}")
        return _apply("pow", self, p=float(p))

    def __rpow__(self, b):
        if isinstance(b, bool) or not isinstance(b, numbers.Real) or b <= 0:
            raise ValueError(f"base: expected a positive real number for base ** tensor, "
                             f"got {b!r}")
        return exp(self * float(np.log(b)))

    def __neg__(self):
        return _apply("neg", self)

    def __matmul__(self, o):
        return matmul(self, o)

    def __rmatmul__(self, o):
        return matmul(o, self)

    def __getitem__(self, idx):
        if isinstance(idx, Tensor):
            raise TypeError("index: use an integer, slice or integer array, not a Tensor")
        return _apply("getitem", self, idx=idx)

    # --- methods -----------------------------------------------------------------------
    def sum(self, axis=None, keepdims=False):
        return sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return mean(self, axis, keepdims)

    def exp(self):
        return exp(self)

    def log(self):
        return log(self)

    def sqrt(self):
        return sqrt(self)

    def tanh(self):
        return tanh(self)

    def sigmoid(self):
        return sigmoid(self)

    def relu(self, at_zero=0.0):
        return relu(self, at_zero)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return reshape(self, shape)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return transpose(self, axes or None)

    # --- reverse mode --------------------------------------------------------------------
    def backward(self, seed=None):
        """Reverse sweep: accumulate d(seed . self)/d(leaf) into ``leaf.grad``.

        ``seed`` (the cotangent u) defaults to 1 for a tensor with one element;
        for any other shape it must be given, with the shape of ``self``.
        Gradients *add* into ``.grad`` of every leaf with ``requires_grad``
        (set ``leaf.grad = None`` to start afresh), as in PyTorch.
        """
        xp = get_xp()
        if seed is None:
            if self.size != 1:
                raise ValueError(f"seed: backward() without a seed needs a tensor with one "
                                 f"element, got shape {self.shape}; pass a cotangent of that "
                                 f"shape (or reduce with .sum())")
            seed = xp.ones(self.value.shape, dtype=self.value.dtype)
        else:
            seed = _as_tangent("seed", seed, self.value)
        grads = _reverse(self, seed)
        for node in _leaves_requiring_grad(self):
            g = grads.get(id(node))
            if g is None:
                g = xp.zeros_like(node.value)
            node.grad = _result(g) if node.grad is None else node.grad + g
        return self


# ----------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------
def _as_value(name, v):
    xp = get_xp()
    if isinstance(v, Tensor):
        return v.value
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a number or an array, got a bool")
    if isinstance(v, np.generic):
        v = xp.asarray(v)
    elif isinstance(v, numbers.Number):
        if isinstance(v, complex):
            raise TypeError(f"{name}: complex numbers are not supported, got {v!r}")
        return xp.asarray(v, dtype=np.float64 if isinstance(v, (float, np.floating)) else None)
    if isinstance(v, (list, tuple)):
        v = np.asarray(v)
        if v.dtype.kind == "O":
            raise TypeError(f"{name}: could not make a numeric array from the nested sequence")
    if isinstance(v, np.ndarray) and xp is not np:
        v = xp.asarray(v)
    if not isinstance(v, xp.ndarray):
        raise TypeError(f"{name}: expected a number, an array or a Tensor, got {describe(v)}")
    if v.dtype.kind not in "fiub":
        raise TypeError(f"{name}: expected a real numeric array, got dtype {v.dtype}")
    return v


def _as_tangent(name, t, value):
    """A direction (tangent or cotangent) matching ``value``'s shape, in its dtype."""
    xp = get_xp()
    if isinstance(t, Tensor):
        t = t.value
    if isinstance(t, numbers.Number) and not isinstance(t, bool):
        t = xp.full(value.shape, t, dtype=value.dtype if value.dtype.kind == "f"
                    else np.float64)
    elif isinstance(t, (list, tuple)):
        t = xp.asarray(np.asarray(t, dtype=np.float64))
    elif isinstance(t, np.ndarray) and xp is not np:
        t = xp.asarray(t)
    if not isinstance(t, xp.ndarray):
        raise TypeError(f"{name}: expected an array, got {describe(t)}")
    if t.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected a real numeric array, got dtype {t.dtype}")
    if tuple(t.shape) != tuple(value.shape):
        raise ValueError(f"{name}: expected shape {tuple(value.shape)} (the shape of the value "
                         f"it goes with), got {describe(t)}")
    dt = value.dtype if value.dtype.kind == "f" else np.dtype(np.float64)
    return t.astype(dt, copy=False)


def _wrap(x, like=None):
    """A Tensor for ``x``; Python scalars take the dtype of ``like`` (weak scalars)."""
    if isinstance(x, Tensor):
        return x
    xp = get_xp()
    if (isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_)) and like is not None
            and like.value.dtype.kind == "f"):
        return Tensor(xp.asarray(x, dtype=like.value.dtype))
    return Tensor(x)


# ----------------------------------------------------------------------------------------
# primitives: forward, JVP and VJP side by side
# ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Primitive:
    """One operation.  ``fwd(*values, **kw) -> out``;
    ``jvp(tangents, out, *values, **kw) -> tangent of out`` (entries of
    ``tangents`` are None for inputs without a tangent);
    ``vjp(g, out, *values, **kw) -> tuple`` of cotangents, one per input
    (None where an input is not differentiable), before un-broadcasting."""
    name: str
    fwd: Callable
    jvp: Callable
    vjp: Callable
    symbol: str = ""


PRIMITIVES: dict[str, Primitive] = {}


def _prim(name, symbol=""):
    def deco(cls):
        PRIMITIVES[name] = Primitive(name, cls.fwd, cls.jvp, cls.vjp, symbol or name)
        return cls
    return deco


def _unbroadcast(g, shape):
    """Sum ``g`` over the axes that broadcasting added or stretched, to ``shape``."""
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, (gs, s) in enumerate(zip(g.shape, shape)) if s == 1 and gs != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def _tsum(*terms):
    """Sum of the non-None terms (None if all are None)."""
    out = None
    for t in terms:
        if t is not None:
            out = t if out is None else out + t
    return out


@_prim("add", "+")
class _Add:
    fwd = staticmethod(lambda a, b: a + b)
    jvp = staticmethod(lambda t, out, a, b: _tsum(t[0], t[1]))
    vjp = staticmethod(lambda g, out, a, b: (g, g))


@_prim("sub", "−")
class _Sub:
    fwd = staticmethod(lambda a, b: a - b)
    jvp = staticmethod(lambda t, out, a, b: _tsum(t[0], None if t[1] is None else -t[1]))
    vjp = staticmethod(lambda g, out, a, b: (g, -g))


@_prim("mul", "×")
class _Mul:
    fwd = staticmethod(lambda a, b: a * b)
    jvp = staticmethod(lambda t, out, a, b: _tsum(None if t[0] is None else t[0] * b,
                                                  None if t[1] is None else a * t[1]))
    vjp = staticmethod(lambda g, out, a, b: (g * b, g * a))


@_prim("div", "÷")
class _Div:
    fwd = staticmethod(lambda a, b: a / b)
    jvp = staticmethod(lambda t, out, a, b: _tsum(None if t[0] is None else t[0] / b,
                                                  None if t[1] is None else -out * t[1] / b))
    vjp = staticmethod(lambda g, out, a, b: (g / b, -g * out / b))


@_prim("neg", "−x")
class _Neg:
    fwd = staticmethod(lambda a: -a)
    jvp = staticmethod(lambda t, out, a: -t[0])
    vjp = staticmethod(lambda g, out, a: (-g,))


@_prim("pow", "x^p")
class _Pow:
    fwd = staticmethod(lambda a, p: a ** p)
    jvp = staticmethod(lambda t, out, a, p: p * a ** (p - 1) * t[0])
    vjp = staticmethod(lambda g, out, a, p: (g * p * a ** (p - 1),))


@_prim("exp")
class _Exp:
    fwd = staticmethod(lambda a: get_xp().exp(a))
    jvp = staticmethod(lambda t, out, a: out * t[0])
    vjp = staticmethod(lambda g, out, a: (g * out,))


@_prim("log")
class _Log:
    fwd = staticmethod(lambda a: get_xp().log(a))
    jvp = staticmethod(lambda t, out, a: t[0] / a)
    vjp = staticmethod(lambda g, out, a: (g / a,))


@_prim("sqrt", "√")
class _Sqrt:
    fwd = staticmethod(lambda a: get_xp().sqrt(a))
    jvp = staticmethod(lambda t, out, a: t[0] / (2 * out))
    vjp = staticmethod(lambda g, out, a: (g / (2 * out),))


@_prim("tanh")
class _Tanh:
    fwd = staticmethod(lambda a: get_xp().tanh(a))
    jvp = staticmethod(lambda t, out, a: (1 - out * out) * t[0])
    vjp = staticmethod(lambda g, out, a: (g * (1 - out * out),))


def _sigmoid(a):
    xp = get_xp()
    e = xp.exp(-xp.abs(a))
    return xp.where(a >= 0, 1 / (1 + e), e / (1 + e))


@_prim("sigmoid", "σ")
class _Sigmoid:
    fwd = staticmethod(_sigmoid)
    jvp = staticmethod(lambda t, out, a: out * (1 - out) * t[0])
    vjp = staticmethod(lambda g, out, a: (g * out * (1 - out),))


def _relu_slope(a, at_zero):
    """ReLU'(a) with the subgradient ``at_zero`` chosen at a == 0."""
    s = (a > 0).astype(a.dtype)
    if at_zero != 0:
        s = s + at_zero * (a == 0).astype(a.dtype)
    return s


@_prim("relu", "ReLU")
class _Relu:
    fwd = staticmethod(lambda a, at_zero: get_xp().maximum(a, 0))
    jvp = staticmethod(lambda t, out, a, at_zero: _relu_slope(a, at_zero) * t[0])
    vjp = staticmethod(lambda g, out, a, at_zero: (g * _relu_slope(a, at_zero),))


@_prim("abs", "|x|")
class _Abs:
    fwd = staticmethod(lambda a: get_xp().abs(a))
    jvp = staticmethod(lambda t, out, a: get_xp().sign(a) * t[0])
    vjp = staticmethod(lambda g, out, a: (g * get_xp().sign(a),))


def _mm_vjp(g, out, a, b):
    xp = get_xp()
    if a.ndim == 1 and b.ndim == 1:
        return g * b, g * a
    if a.ndim == 1:                      # (k,) @ (k, n) -> (n,)
        return b @ g, xp.outer(a, g)
    if b.ndim == 1:                      # (m, k) @ (k,) -> (m,)
        return xp.outer(g, b), a.T @ g
    return g @ b.T, a.T @ g


@_prim("matmul", "@")
class _Matmul:
    fwd = staticmethod(lambda a, b: a @ b)
    jvp = staticmethod(lambda t, out, a, b: _tsum(None if t[0] is None else t[0] @ b,
                                                  None if t[1] is None else a @ t[1]))
    vjp = staticmethod(_mm_vjp)


def _expand_reduced(g, shape, axis, keepdims):
    """Broadcast the cotangent of a reduction back to the input's ``shape``."""
    xp = get_xp()
    if axis is not None and not keepdims:
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        axes = tuple(ax % len(shape) for ax in axes)
        for ax in sorted(axes):
            g = xp.expand_dims(g, ax)
    return xp.broadcast_to(g, shape)


@_prim("sum", "Σ")
class _Sum:
    fwd = staticmethod(lambda a, axis, keepdims: a.sum(axis=axis, keepdims=keepdims))
    jvp = staticmethod(lambda t, out, a, axis, keepdims: t[0].sum(axis=axis, keepdims=keepdims))
    vjp = staticmethod(lambda g, out, a, axis, keepdims:
                       (_expand_reduced(g, a.shape, axis, keepdims),))


def _count(shape, axis):
    if axis is None:
        return int(np.prod(shape)) if len(shape) else 1
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return int(np.prod([shape[ax] for ax in axes]))


@_prim("mean", "mean")
class _Mean:
    fwd = staticmethod(lambda a, axis, keepdims: a.mean(axis=axis, keepdims=keepdims))
    jvp = staticmethod(lambda t, out, a, axis, keepdims: t[0].mean(axis=axis, keepdims=keepdims))
    vjp = staticmethod(lambda g, out, a, axis, keepdims:
                       (_expand_reduced(g / _count(a.shape, axis), a.shape, axis, keepdims),))


@_prim("reshape", "reshape")
class _Reshape:
    fwd = staticmethod(lambda a, shape: a.reshape(shape))
    jvp = staticmethod(lambda t, out, a, shape: t[0].reshape(shape))
    vjp = staticmethod(lambda g, out, a, shape: (g.reshape(a.shape),))


@_prim("transpose", "ᵀ")
class _Transpose:
    fwd = staticmethod(lambda a, axes: a.transpose(axes))
    jvp = staticmethod(lambda t, out, a, axes: t[0].transpose(axes))
    vjp = staticmethod(lambda g, out, a, axes:
                       (g.transpose(None if axes is None else tuple(np.argsort(axes))),))


def _getitem_vjp(g, out, a, idx):
    xp = get_xp()
    z = xp.zeros(a.shape, dtype=g.dtype)
    if xp is np:
        np.add.at(z, idx, g)
    else:  # pragma: no cover - CuPy
        import cupyx  # noqa: PLC0415
        cupyx.scatter_add(z, idx, g)
    return (z,)


@_prim("getitem", "[ ]")
class _Getitem:
    fwd = staticmethod(lambda a, idx: a[idx])
    jvp = staticmethod(lambda t, out, a, idx: t[0][idx])
    vjp = staticmethod(_getitem_vjp)


def _log_softmax(a, axis):
    xp = get_xp()
    s = a - a.max(axis=axis, keepdims=True)
    return s - xp.log(xp.exp(s).sum(axis=axis, keepdims=True))


@_prim("softmax", "softmax")
class _Softmax:
    fwd = staticmethod(lambda a, axis: get_xp().exp(_log_softmax(a, axis)))
    jvp = staticmethod(lambda t, out, a, axis:
                       out * (t[0] - (out * t[0]).sum(axis=axis, keepdims=True)))
    vjp = staticmethod(lambda g, out, a, axis:
                       (out * (g - (out * g).sum(axis=axis, keepdims=True)),))


@_prim("log_softmax", "log softmax")
class _LogSoftmax:
    fwd = staticmethod(_log_softmax)
    jvp = staticmethod(lambda t, out, a, axis:
                       t[0] - (get_xp().exp(out) * t[0]).sum(axis=axis, keepdims=True))
    vjp = staticmethod(lambda g, out, a, axis:
                       (g - get_xp().exp(out) * g.sum(axis=axis, keepdims=True),))


def _xent_fwd(z, Y):
    """-(1/N) sum_n sum_k Y_nk log softmax(z)_nk for z (N, K), Y (N, K)."""
    return -(Y * _log_softmax(z, -1)).sum() / z.shape[0]


def _xent_grad(z, Y):
    """d xent / dz = (rowsum(Y) p - Y) / N  (= (p - Y)/N for rows of Y summing to 1)."""
    p = get_xp().exp(_log_softmax(z, -1))
    return (Y.sum(axis=1, keepdims=True) * p - Y) / z.shape[0]


@_prim("cross_entropy", "CE")
class _CrossEntropy:
    fwd = staticmethod(_xent_fwd)
    jvp = staticmethod(lambda t, out, z, Y: (_xent_grad(z, Y) * t[0]).sum())
    vjp = staticmethod(lambda g, out, z, Y: (g * _xent_grad(z, Y), None))


# ----------------------------------------------------------------------------------------
# applying a primitive: forward value, forward tangent, graph record
# ----------------------------------------------------------------------------------------
_NONDIFF = {"cross_entropy": (1,)}      # input positions that never carry derivatives


def _apply(name, *inputs, **kw):
    prim = PRIMITIVES[name]
    first = next((x for x in inputs if isinstance(x, Tensor)), None)
    ts = tuple(_wrap(x, first) for x in inputs)
    vals = tuple(t.value for t in ts)
    with np.errstate(all="ignore") if get_xp() is np else _nullcontext():
        out_val = prim.fwd(*vals, **kw)
    STATS["forward"] += 1
    out = Tensor.__new__(Tensor)
    out.value = get_xp().asarray(out_val)
    out.requires_grad = False
    out.grad = None
    out.name = None
    out.op, out.parents, out.kw = name, ts, kw
    skip = _NONDIFF.get(name, ())
    tans = tuple(None if i in skip else t.tangent for i, t in enumerate(ts))
    if any(t is not None for t in tans):
        STATS["jvp"] += 1
        tan = prim.jvp(tans, out.value, *vals, **kw)
        xp = get_xp()
        out.tangent = xp.broadcast_to(tan, out.value.shape).astype(
            out.value.dtype if out.value.dtype.kind == "f" else np.float64)
    else:
        out.tangent = None
    return out


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def topological_order(out):
    """The nodes of ``out``'s graph, parents before children (iterative DFS)."""
    if not isinstance(out, Tensor):
        raise TypeError(f"out: expected a Tensor, got {describe(out)}")
    order, seen = [], set()
    stack = [(out, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for p in reversed(node.parents):
            if id(p) not in seen:
                stack.append((p, False))
    return order


def _reverse(out, seed):
    """One reverse sweep from ``out`` with cotangent ``seed``.

    Returns the adjoint ``d(seed . out)/d(node)`` of every node reached, as
    ``{id(node): array}``: nodes are visited in reverse topological order, so
    a node's adjoint is complete (summed over all its children) before it is
    passed on to its parents.  Constant leaves receive nothing.
    """
    grads = {id(out): seed}
    for node in reversed(topological_order(out)):
        g = grads.get(id(node))
        if g is None or not node.parents:
            continue
        prim = PRIMITIVES[node.op]
        STATS["vjp"] += 1
        with np.errstate(all="ignore") if get_xp() is np else _nullcontext():
            cots = prim.vjp(g, node.value, *(p.value for p in node.parents), **node.kw)
        for p, c in zip(node.parents, cots):
            if c is None or (not p.parents and not p.requires_grad):
                continue
            c = _unbroadcast(c, p.value.shape)
            k = id(p)
            grads[k] = c if k not in grads else grads[k] + c
    return grads


def _leaves_requiring_grad(out):
    return [n for n in topological_order(out) if not n.parents and n.requires_grad]


def _result(g):
    """A fresh, writeable array for the user (adjoints may be broadcast views)."""
    return get_xp().array(g, copy=True)


# ----------------------------------------------------------------------------------------
# operations (functions)
# ----------------------------------------------------------------------------------------
def exp(x):
    """e^x, elementwise."""
    return _apply("exp", x)


def log(x):
    """Natural logarithm, elementwise (NaN/inf outside (0, inf), as NumPy)."""
    return _apply("log", x)


def sqrt(x):
    """Square root, elementwise."""
    return _apply("sqrt", x)


def tanh(x):
    return _apply("tanh", x)


def sigmoid(x):
    """Logistic function 1/(1 + e^-x), computed stably."""
    return _apply("sigmoid", x)


def relu(x, at_zero=0.0):
    """max(x, 0).  ``at_zero`` is the subgradient used for ReLU'(0), any value in [0, 1]
    (0 is PyTorch's and nnbook's choice)."""
    if isinstance(at_zero, bool) or not isinstance(at_zero, numbers.Real):
        raise TypeError(f"at_zero: expected a number in [0, 1], got {type(at_zero).__name__}")
    if not 0 <= at_zero <= 1:
        raise ValueError(f"at_zero: expected a subgradient of ReLU at 0, i.e. a number in "
                         f"[0, 1], got {at_zero}")
    return _apply("relu", x, at_zero=float(at_zero))


def abs(x):  # noqa: A001 - mirrors numpy's name
    """``|x|``; its derivative is sign(x), i.e. the subgradient 0 at x = 0."""
    return _apply("abs", x)


def _check_axis(name, axis, ndim):
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    for ax in axes:
        if isinstance(ax, bool) or not isinstance(ax, (int, np.integer)):
            raise TypeError(f"{name}: expected an int or a tuple of ints, got {axis!r}")
        if not -ndim <= ax < max(ndim, 1):
            raise ValueError(f"{name}: axis {ax} is out of range for a {ndim}-D tensor")
    return int(axes[0]) if isinstance(axis, (int, np.integer)) else tuple(int(a) for a in axes)


def sum(x, axis=None, keepdims=False):  # noqa: A001
    """Sum over ``axis`` (all axes by default)."""
    x = _wrap(x)
    return _apply("sum", x, axis=_check_axis("axis", axis, x.ndim), keepdims=bool(keepdims))


def mean(x, axis=None, keepdims=False):
    """Mean over ``axis`` (all axes by default)."""
    x = _wrap(x)
    return _apply("mean", x, axis=_check_axis("axis", axis, x.ndim), keepdims=bool(keepdims))


def matmul(a, b):
    """Matrix product of 1-D or 2-D tensors (as ``numpy.matmul``)."""
    a, b = _wrap(a), _wrap(b)
    for nm, t in (("a", a), ("b", b)):
        if t.ndim not in (1, 2):
            raise ValueError(f"{nm}: matmul takes 1-D or 2-D tensors, got shape {t.shape}")
    ka = a.shape[-1]
    kb = b.shape[0]
    if ka != kb:
        raise ValueError(f"a @ b: inner dimensions differ: a has shape {a.shape}, "
                         f"b has shape {b.shape}")
    return _apply("matmul", a, b)


def reshape(x, shape):
    x = _wrap(x)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    try:
        np.empty(x.shape, dtype=np.int8).reshape(shape)
    except ValueError:
        raise ValueError(f"shape: cannot reshape a tensor of shape {x.shape} "
                         f"({x.size} elements) into {shape}") from None
    return _apply("reshape", x, shape=shape)


def transpose(x, axes=None):
    """Reverse the axes (or permute them as ``axes``)."""
    x = _wrap(x)
    if axes is not None:
        axes = tuple(int(a) for a in axes)
        if sorted(a % max(x.ndim, 1) for a in axes) != list(range(x.ndim)):
            raise ValueError(f"axes: expected a permutation of {tuple(range(x.ndim))}, "
                             f"got {axes}")
        axes = tuple(a % x.ndim for a in axes)
    return _apply("transpose", x, axes=axes)


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along ``axis``, shifted so it never overflows."""
    x = _wrap(x)
    return _apply("softmax", x, axis=_check_axis("axis", axis, x.ndim))


def log_softmax(x, axis=-1):
    """log(softmax(x)) computed without forming softmax (stable for large ``|x|``)."""
    x = _wrap(x)
    return _apply("log_softmax", x, axis=_check_axis("axis", axis, x.ndim))


def cross_entropy(logits, y):
    """Mean cross-entropy of softmax(logits) against targets, as nnbook's
    :class:`~nnbook.SoftmaxCrossEntropy`: ``-(1/N) sum_n sum_k Y_nk log p_nk``.

    ``logits``: (N, K) tensor.  ``y``: integer labels (N,) or target rows
    (N, K) (one-hot or probabilities); targets are constants (no derivative
    flows into them).
    """
    xp = get_xp()
    z = _wrap(logits)
    if z.ndim != 2:
        raise ValueError(f"logits: expected a 2-D (N, K) tensor, got shape {z.shape}")
    N, K = z.shape
    yv = y.value if isinstance(y, Tensor) else _as_value("y", y)
    if yv.ndim == 1:
        if yv.dtype.kind not in "iu":
            raise TypeError(f"y: integer class labels expected for a 1-D target, got dtype "
                            f"{yv.dtype}")
        if yv.shape[0] != N:
            raise ValueError(f"y: expected {N} labels to match logits of shape {z.shape}, "
                             f"got shape {tuple(yv.shape)}")
        if int(yv.min()) < 0 or int(yv.max()) >= K:
            raise ValueError(f"y: labels must lie in [0, {K - 1}], got values in "
                             f"[{int(yv.min())}, {int(yv.max())}]")
        Y = xp.zeros((N, K), dtype=z.dtype)
        Y[xp.arange(N), yv] = 1
    elif yv.ndim == 2:
        if tuple(yv.shape) != (N, K):
            raise ValueError(f"y: expected target rows of shape {(N, K)}, got shape "
                             f"{tuple(yv.shape)}")
        Y = yv.astype(z.dtype)
    else:
        raise ValueError(f"y: expected labels (N,) or target rows (N, K), got shape "
                         f"{tuple(yv.shape)}")
    return _apply("cross_entropy", z, Tensor(Y))


def stack(tensors, axis=0):
    """Stack equally shaped tensors along a new axis (e.g. scalars into a vector)."""
    if not isinstance(tensors, (list, tuple)) or not tensors:
        raise ValueError("tensors: expected a non-empty list of tensors")
    ts = [_wrap(t) for t in tensors]
    shapes = {t.shape for t in ts}
    if len(shapes) != 1:
        raise ValueError(f"tensors: expected equal shapes, got {sorted(shapes)}")
    return _apply("stack", *ts, axis=int(axis))


def _stack_jvp(t, out, *vals, axis):
    xp = get_xp()
    parts = [xp.zeros(v.shape, dtype=out.dtype) if ti is None else ti for ti, v in zip(t, vals)]
    return xp.stack(parts, axis=axis)


def _stack_vjp(g, out, *vals, axis):
    xp = get_xp()
    return tuple(xp.take(g, i, axis=axis) for i in range(len(vals)))


PRIMITIVES["stack"] = Primitive("stack", lambda *v, axis: get_xp().stack(v, axis=axis),
                                _stack_jvp, _stack_vjp, "stack")


# ----------------------------------------------------------------------------------------
# transformations: grad, vjp, jvp, jacobian
# ----------------------------------------------------------------------------------------
def _check_f(f):
    if not callable(f):
        raise TypeError(f"f: expected a function, got {type(f).__name__}")


def _primal(name, x, dtype_float=True):
    if isinstance(x, Tensor):
        x = x.value
    v = _as_value(name, x)
    if dtype_float and v.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point array (float32 or float64) to "
                        f"differentiate with respect to, got dtype {v.dtype}; convert with "
                        f".astype(np.float64)")
    return v


def _call(f, args):
    out = f(*args)
    if isinstance(out, (tuple, list)):
        raise TypeError("f: expected a function returning one Tensor (stack several outputs "
                        "with nnbook.autodiff.stack), got a " + type(out).__name__)
    return _wrap(out)


def _argnums(argnums, n):
    single = isinstance(argnums, (int, np.integer))
    nums = (argnums,) if single else tuple(argnums)
    for a in nums:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not -n <= a < n:
            raise ValueError(f"argnums: expected positions among the {n} arguments, "
                             f"got {argnums!r}")
    return tuple(int(a) % n for a in nums), single


def vjp(f, *primals):
    """Reverse mode.  Returns ``(f(*primals) value, vjp_fn)``; ``vjp_fn(u)`` returns
    u^T J, the cotangent of each primal (a single array for one primal, else a tuple).

    The graph is recorded once; each call of ``vjp_fn`` is one reverse sweep,
    so a Jacobian costs one forward pass plus one sweep per output.
    """
    _check_f(f)
    if not primals:
        raise ValueError("primals: expected at least one input array")
    xs = [Tensor(_primal(f"primals[{i}]", p), requires_grad=True, name=f"x{i + 1}")
          for i, p in enumerate(primals)]
    out = _call(f, xs)

    def vjp_fn(u):
        u = _as_tangent("u", u, out.value)
        grads = _reverse(out, u)
        xp = get_xp()
        res = tuple(_result(grads[id(x)]) if id(x) in grads else xp.zeros_like(x.value)
                    for x in xs)
        return res[0] if len(res) == 1 else res

    return out.value, vjp_fn


def value_and_grad(f, argnums=0):
    """Like :func:`grad`, but the returned function gives ``(f(*args), gradient)``."""
    _check_f(f)

    def vg(*args):
        if not args:
            raise ValueError("args: expected at least one input array")
        nums, single = _argnums(argnums, len(args))
        ts = [Tensor(_primal(f"args[{i}]", a), requires_grad=True, name=f"x{i + 1}")
              if i in nums else (a if isinstance(a, Tensor) else a)
              for i, a in enumerate(args)]
        out = _call(f, ts)
        if out.size != 1:
            raise ValueError(f"f: grad needs a function with a scalar output, got shape "
                             f"{out.shape}; use vjp or jacobian for vector outputs")
        xp = get_xp()
        grads = _reverse(out, xp.ones(out.value.shape, dtype=out.value.dtype
                                      if out.value.dtype.kind == "f" else np.float64))
        res = tuple(_result(grads[id(ts[i])]) if id(ts[i]) in grads
                    else xp.zeros_like(ts[i].value) for i in nums)
        val = out.value.item()
        return val, (res[0] if single else res)

    return vg


def grad(f, argnums=0):
    """Reverse mode: ``grad(f)(x, ...)`` is the gradient of the scalar ``f`` at ``x``.

    ``argnums``: which positional argument(s) to differentiate with respect to
    (an int gives one array, a tuple gives a tuple of arrays).  Arguments not
    differentiated are passed through unchanged (labels, hyper-parameters).
    """
    vg = value_and_grad(f, argnums)

    def g(*args):
        return vg(*args)[1]

    return g


def jvp(f, primals, tangents):
    """Forward mode.  Returns ``(f(x) value, J_f(x) v)`` in one evaluation of ``f``.

    ``primals``/``tangents``: an array each, or tuples of arrays of equal
    length (the tangent of each input, with its shape).
    """
    _check_f(f)
    multi = isinstance(primals, (tuple, list))
    ps = tuple(primals) if multi else (primals,)
    if multi != isinstance(tangents, (tuple, list)):
        raise TypeError("tangents: give a tuple of tangents when primals is a tuple, and a "
                        "single array when primals is a single array")
    ts = tuple(tangents) if multi else (tangents,)
    if len(ps) != len(ts):
        raise ValueError(f"tangents: expected {len(ps)} tangents (one per primal), got {len(ts)}")
    if not ps:
        raise ValueError("primals: expected at least one input array")
    xs = []
    for i, (p, t) in enumerate(zip(ps, ts)):
        v = _primal(f"primals[{i}]" if multi else "primals", p)
        xs.append(Tensor(v, name=f"x{i + 1}",
                         tangent=_as_tangent(f"tangents[{i}]" if multi else "tangents", t, v)))
    out = _call(f, xs)
    tan = out.tangent if out.tangent is not None else get_xp().zeros_like(out.value, dtype=float)
    return out.value, tan


def jacobian(f, x, mode="reverse"):
    """The Jacobian of ``f`` at ``x``, shape ``f(x).shape + x.shape``.

    ``mode="forward"``: n = x.size JVPs with the basis vectors e_j (columns);
    ``mode="reverse"``: one forward pass and m = f(x).size VJPs with e_i (rows).
    """
    _check_f(f)
    if mode not in ("forward", "reverse"):
        raise ValueError(f"mode: expected 'forward' or 'reverse', got {mode!r}")
    xp = get_xp()
    xv = _primal("x", x)
    n = xv.size
    if mode == "forward":
        cols, out_shape = [], None
        for j in range(n):
            e = xp.zeros(n, dtype=xv.dtype)
            e[j] = 1
            y, t = jvp(f, xv, e.reshape(xv.shape))
            out_shape = y.shape
            cols.append(t.reshape(-1))
        return xp.stack(cols, axis=1).reshape(tuple(out_shape) + tuple(xv.shape))
    y, fn = vjp(f, xv)
    m = y.size
    rows = []
    for i in range(m):
        e = xp.zeros(m, dtype=y.dtype if y.dtype.kind == "f" else np.float64)
        e[i] = 1
        rows.append(fn(e.reshape(y.shape)).reshape(-1))
    return xp.stack(rows, axis=0).reshape(tuple(y.shape) + tuple(xv.shape))


def chain_jacobian(fs, x, mode="forward"):
    """The thesis's Algorithms 1 and 2: the Jacobian of ``f_k ∘ ... ∘ f_1`` at ``x``.

    ``fs``: the layer functions f_1, ..., f_k (each maps a 1-D tensor to a 1-D
    tensor).  ``"forward"`` (Algorithm 1) pushes the n columns
    v_j = e_j through every layer: v_j := J_{f_i}(x_i) v_j.  ``"reverse"``
    (Algorithm 2) first runs the layers forward, keeping each layer's VJP,
    then pulls the m rows u_i = e_i back: u_i^T := u_i^T J_{f_k}(x_k).
    Returns ``(o, J)`` with J of shape (m, n).
    """
    xi = _check_chain(fs, x, mode)
    xp = get_xp()
    n = xi.size
    if mode == "forward":                                  # Algorithm 1
        vs = [xp.eye(n, dtype=xi.dtype)[:, j] for j in range(n)]   # v_j := e_j
        for f in fs:
            vs = [jvp(f, xi, v)[1] for v in vs]                    # v_j := J_{f_i}(x_i) v_j
            xi = f(Tensor(xi)).value                               # x_{i+1} := f_i(x_i)
        return xi, xp.stack(vs, axis=1)
    pullbacks = []                                         # Algorithm 2
    for f in fs:
        xi, pull = vjp(f, xi)                                      # x_{i+1} := f_i(x_i)
        pullbacks.append(pull)
    m = xi.size
    us = [xp.eye(m, dtype=xi.dtype)[i] for i in range(m)]          # u_i := e_i
    for pull in reversed(pullbacks):
        us = [pull(u) for u in us]                                 # u_i^T := u_i^T J_{f_k}
    return xi, xp.stack(us, axis=0)


def _check_chain(fs, x, mode):
    if not isinstance(fs, (list, tuple)) or not fs:
        raise ValueError("fs: expected a non-empty list of layer functions")
    for i, f in enumerate(fs):
        if not callable(f):
            raise TypeError(f"fs[{i}]: expected a function, got {type(f).__name__}")
    if mode not in ("forward", "reverse"):
        raise ValueError(f"mode: expected 'forward' or 'reverse', got {mode!r}")
    xi = _primal("x", x)
    if xi.ndim != 1:
        raise ValueError(f"x: expected a 1-D input vector, got shape {tuple(xi.shape)}")
    return xi


def backprop(layers, params, x, loss):
    """The thesis's Algorithm 3: backpropagation as a chain of VJPs.

    ``layers``: functions ``f_l(x_l, *W_l) -> x_{l+1}``; ``params``: a list with
    the tuple of parameter arrays W_l of each layer; ``loss``: a function of
    the last output returning a scalar.  The forward sweep keeps one VJP per
    layer; the backward sweep starts from u = 1 and, layer by layer, splits
    u^T ∂f_l/∂(x_l, W_l) into the new u (for x_l) and the gradient g_l (for
    W_l).  Returns ``(loss value, [g_1, ..., g_L])`` with g_l a tuple like W_l.
    """
    xi, params = _check_backprop(layers, params, x, loss)
    pullbacks = []
    for f, W in zip(layers, params):                       # forward propagation
        xi, pull = vjp(f, xi, *W)                          # x_{l+1} = f_l(x_l, W_l)
        pullbacks.append(pull)
    E, pull_loss = vjp(loss, xi)
    if E.size != 1:
        raise ValueError(f"loss: expected a scalar, got shape {tuple(E.shape)}")
    u = pull_loss(1.0)                                     # u_{L+1} = dE/dx_{L+1}
    grads = [None] * len(layers)
    for l in range(len(layers) - 1, -1, -1):               # backward propagation
        res = pullbacks[l](u)
        res = res if isinstance(res, tuple) else (res,)
        u, grads[l] = res[0], tuple(res[1:])               # u_l, g_l
    return E.item(), grads


def _check_backprop(layers, params, x, loss):
    if not isinstance(layers, (list, tuple)) or not layers:
        raise ValueError("layers: expected a non-empty list of layer functions")
    if not isinstance(params, (list, tuple)) or len(params) != len(layers):
        raise ValueError(f"params: expected one tuple of parameters per layer "
                         f"({len(layers)}), got {describe(params)}")
    for i, f in enumerate(layers):
        if not callable(f):
            raise TypeError(f"layers[{i}]: expected a function, got {type(f).__name__}")
    _check_f(loss)
    params = [tuple(W) if isinstance(W, (tuple, list)) else (W,) for W in params]
    return _primal("x", x), params


# ----------------------------------------------------------------------------------------
# graphs: structure (nnbook.explorers.draw_graph draws them)
# ----------------------------------------------------------------------------------------
def trace(f, *args, names=None):
    """Evaluate ``f`` on leaf tensors made from ``args`` and return its output Tensor
    (whose graph :func:`graph` lists and whose ``backward()`` fills the leaves'
    ``.grad``).  ``names`` label the inputs."""
    _check_f(f)
    names = names or [f"x{i + 1}" for i in range(len(args))]
    if len(names) != len(args):
        raise ValueError(f"names: expected {len(args)} names, got {len(names)}")
    xs = [Tensor(_primal(f"args[{i}]", a), requires_grad=True, name=nm)
          for i, (a, nm) in enumerate(zip(args, names))]
    return _call(f, xs)


def graph(out):
    """The computation graph of ``out`` as plain data, in topological order.

    Returns a list of dicts ``{"id", "label", "op", "shape", "value",
    "parents", "leaf"}`` (``parents``: ids of the inputs; ``value``: the
    float for one-element tensors, else None).  Constants that are Python
    numbers appear as leaves labelled with their value.
    """
    nodes = topological_order(out)
    index = {id(n): i for i, n in enumerate(nodes)}
    res = []
    for i, n in enumerate(nodes):
        if n.name:
            label = n.name
        elif n.op:
            label = PRIMITIVES[n.op].symbol
        elif n.size == 1:
            label = f"{n.value.item():.4g}"
        else:
            label = f"const{tuple(n.shape)}"
        res.append({"id": i, "label": label, "op": n.op, "shape": n.shape,
                    "value": n.value.item() if n.size == 1 else None,
                    "parents": [index[id(p)] for p in n.parents],
                    "leaf": not n.parents, "requires_grad": n.requires_grad,
                    "tensor": n})
    return res


def adjoints(out, seed=None):
    """The adjoint d(seed . out)/d(node) of *every* node of ``out``'s graph reached
    by a reverse sweep, as ``{id(node): array}`` (:meth:`Tensor.backward` keeps
    only the leaves')."""
    if not isinstance(out, Tensor):
        raise TypeError(f"out: expected a Tensor, got {describe(out)}")
    xp = get_xp()
    if seed is None:
        if out.size != 1:
            raise ValueError(f"seed: needed for a tensor of shape {out.shape}")
        seed = xp.ones(out.value.shape, dtype=out.value.dtype)
    else:
        seed = _as_tangent("seed", seed, out.value)
    return _reverse(out, seed)


def replay(out, inputs):
    """Freeze the recorded graph of ``out`` into a function of ``inputs`` (define-then-run).

    ``out`` was computed from the leaf tensors ``inputs`` (e.g. by :func:`trace`); the
    returned function ``run(*values)`` evaluates the *same* graph -- the same primitives
    in the same order, as recorded -- on new input values, without running the Python
    code that built it: loops keep the number of iterations and ``if`` statements the
    branch they took when the graph was recorded, as in a static (traced) graph.  Every
    other leaf is a constant with its recorded value.  ``run`` accepts arrays or
    Tensors, so ``grad(run)`` and ``jvp(run, ...)`` differentiate the frozen graph.
    """
    if not isinstance(out, Tensor):
        raise TypeError(f"out: expected a Tensor, got {describe(out)}")
    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    nodes = topological_order(out)
    ids = {id(n) for n in nodes}
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or t.parents:
            raise TypeError(f"inputs[{i}]: expected a leaf Tensor of out's graph, got "
                            f"{describe(t)}")
        if id(t) not in ids:
            raise ValueError(f"inputs[{i}]: this Tensor is not in out's graph")

    def run(*values):
        if len(values) != len(inputs):
            raise TypeError(f"expected {len(inputs)} input values, got {len(values)}")
        env = {id(t): v if isinstance(v, Tensor) else Tensor(_as_value(f"values[{i}]", v))
               for i, (t, v) in enumerate(zip(inputs, values))}
        for n in nodes:
            if id(n) in env:
                continue
            if not n.parents:                      # a constant: its recorded value
                env[id(n)] = Tensor(n.value)
            else:                                  # the recorded primitive, re-applied
                env[id(n)] = _apply(n.op, *(env[id(p)] for p in n.parents), **n.kw)
        return env[id(out)]

    return run


__all__ += ["adjoints", "Primitive", "replay"]
