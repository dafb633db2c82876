"""Numerical gradient checks: centred differences and relative errors.

The analytic gradient of a layer is compared with
(f(x + h e_i) - f(x - h e_i)) / (2h) for every entry i, where f is the scalar
``sum(layer(x) * R)`` for a fixed random R (so dE/dout = R).  In float64 with
h = 1e-6 the truncation error is O(h^2) and the round-off O(eps/h), so a
correct gradient gives a relative error around 1e-9 and a wrong one 1e-2 or
worse; 1e-7 separates them.
"""
from __future__ import annotations

import numpy as np

from .backend import get_xp, to_numpy

__all__ = ["numerical_gradient", "rel_error", "check_layer", "check_model", "check_loss",
           "GradcheckResult"]


def rel_error(a, b) -> float:
    """||a - b|| / max(||a|| + ||b||, 1e-300): 0 for equal arrays, 1 for opposite ones.

    A norm-wise ratio, so entries that are (nearly) zero in both arrays do not
    blow it up the way an entry-wise ratio would.
    """
    a = np.asarray(to_numpy(a), dtype=np.float64)
    b = np.asarray(to_numpy(b), dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a, b: expected equal shapes, got {a.shape} and {b.shape}")
    den = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / max(den, 1e-300))


def numerical_gradient(f, x, h=1e-6):
    """Centred-difference gradient of the scalar function ``f`` at ``x``.

    ``f`` is called on a private copy of ``x`` whose entries are nudged one at
    a time; ``x`` itself is never modified.
    """
    xp = get_xp()
    xc = xp.array(x, dtype=x.dtype, copy=True)
    g = np.zeros(xc.shape, dtype=np.float64)
    flat = xc.reshape(-1)
    for i in range(flat.size):
        old = flat[i].item()
        flat[i] = old + h
        fp = float(f(xc))
        flat[i] = old - h
        fm = float(f(xc))
        flat[i] = old
        g.reshape(-1)[i] = (fp - fm) / (2 * h)
    return g


class GradcheckResult(dict):
    """``{"x": err, "W": err, ...}`` relative errors; ``.ok`` if all are below tol."""

    def __init__(self, errors, tol):
        super().__init__(errors)
        self.tol = tol

    @property
    def ok(self):
        return all(v < self.tol for v in self.values())

    @property
    def max_error(self):
        return max(self.values())

    def __repr__(self):
        items = ", ".join(f"{k}: {v:.2e}" for k, v in self.items())
        return f"GradcheckResult({items}; tol={self.tol:g}, ok={self.ok})"


def _named_params(layer, prefix=""):
    """(key, layer, name) for every parameter of ``layer`` and of the layers inside it:
    its own under their names, a child's under "<child index>.<name>"."""
    out = [(prefix + k, layer, k) for k in layer.params]
    for j, c in enumerate(layer.children()):
        out += _named_params(c, f"{prefix}{j}.")
    return out


def _param_error(layer, name, f, h):
    """Numerical gradient of f() w.r.t. layer.params[name], restoring the value exactly."""
    p = layer.params[name]
    flat = p.reshape(-1)
    g = np.zeros(p.shape, dtype=np.float64)
    for i in range(flat.size):
        old = flat[i].item()
        flat[i] = old + h
        fp = f()
        flat[i] = old - h
        fm = f()
        flat[i] = old
        g.reshape(-1)[i] = (fp - fm) / (2 * h)
    return g


def check_layer(layer, x, h=1e-6, tol=1e-7, seed=0, params=True):
    """Compare ``layer.backward`` with centred differences for input and parameters.

    Returns a :class:`~nnbook.gradcheck.GradcheckResult`.  Use float64 layers and inputs: float32
    cannot resolve differences of size h.  The layer's parameters are nudged
    and restored bit for bit; ``x`` is not modified.
    """
    xp = get_xp()
    rng = np.random.default_rng(seed)
    out = layer.forward(x)
    R = xp.asarray(rng.standard_normal(out.shape).astype(out.dtype))

    def f_x(xx):
        return float((layer.forward(xx) * R).sum())

    layer.zero_grad()
    layer.forward(x)
    dx = layer.backward(R)
    errors = {}
    if dx is not None:
        errors["x"] = rel_error(dx, numerical_gradient(f_x, x, h))
    if params:
        named = _named_params(layer)
        analytic = {key: to_numpy(l.grads[k]).copy() for key, l, k in named}
        for key, l, k in named:
            errors[key] = rel_error(analytic[key], _param_error(l, k, lambda: f_x(x), h))
        layer.zero_grad()
    return GradcheckResult(errors, tol)


def check_model(model, loss, x, y, h=1e-6, tol=1e-7):
    """Gradient check of ``loss(model(x), y)`` w.r.t. the input and every parameter.

    Keys are ``"x"`` and ``"<layer index>.<param>"`` (inside blocks and nested models
    ``"<layer index>.<child index>.<param>"``).
    """
    def f_x(xx):
        return loss.forward(model.forward(xx), y)

    model.zero_grad()
    loss.forward(model.forward(x), y)
    dx = model.backward(loss.backward())
    errors = {"x": rel_error(dx, numerical_gradient(f_x, x, h))}
    named = _named_params(model)
    analytic = {key: to_numpy(l.grads[k]).copy() for key, l, k in named}
    for key, l, k in named:
        errors[key] = rel_error(analytic[key], _param_error(l, k, lambda: f_x(x), h))
    model.zero_grad()
    return GradcheckResult(errors, tol)


def check_loss(loss, pred, y, h=1e-6, tol=1e-7):
    """Gradient check of a loss w.r.t. its prediction argument."""
    loss.forward(pred, y)
    g = loss.backward()
    num = numerical_gradient(lambda p: loss.forward(p, y), pred, h)
    return GradcheckResult({"pred": rel_error(g, num)}, tol)
