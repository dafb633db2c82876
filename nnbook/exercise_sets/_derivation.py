"""How a derivation exercise is checked: the student derives a gradient by hand and
writes it as a function; the check compares it, at every stored point, with centred
finite differences (:func:`nnbook.numerical_gradient`) of the function it differentiates.
Nothing about the answer is stored -- only the points."""
from __future__ import annotations

import numpy as np

from ..exercises import ExerciseError, _fmt
from ..gradcheck import numerical_gradient


def gradient_check(f, wrt=0, tol=1e-6, of="f"):
    """A ``compare(got, want, args)`` that accepts ``got`` when it is the gradient of
    ``f(*args)`` with respect to ``args[wrt]``: ``max|got - fd| <= tol * max(1, max|fd|)``."""
    def compare(got, want, args):
        x = np.asarray(args[wrt], dtype=np.float64)

        def along(v):
            a = list(args)
            a[wrt] = v
            return f(*a)

        fd = numerical_gradient(along, x)
        try:
            g = np.asarray(got, dtype=np.float64)
        except (TypeError, ValueError):
            raise ExerciseError(f"expected an array of the shape of the point, got "
                                f"{type(got).__name__}") from None
        if g.shape != fd.shape:
            raise ExerciseError(f"shape {g.shape}, expected {fd.shape} (the shape of the point)")
        if not np.all(np.isfinite(g)):
            raise ExerciseError(f"your gradient is not finite\n  finite differences: {_fmt(fd)}\n"
                                f"  your gradient:      {_fmt(g)}")
        err = float(np.max(np.abs(g - fd), initial=0.0)) / max(1.0, float(np.max(np.abs(fd), initial=0.0)))
        if err > tol:
            raise ExerciseError(f"your gradient differs from centred finite differences of {of} "
                                f"(error {err:.3g} relative to max(1, |gradient|); tolerance "
                                f"{tol:g})\n  finite differences: {_fmt(fd)}\n  your gradient:      "
                                f"{_fmt(g)}")
    return compare
