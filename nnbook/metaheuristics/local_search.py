"""Local searches for SHADE-ILS: :class:`LBFGSB` (scipy, with a hard budget)
and :class:`GradientDescentLS` (epochs of an nnbook optimizer), and the rule
that picks among them (:class:`_PoolLast`)."""
from __future__ import annotations

import math

import numpy as np

from .._checks import check_choice, check_int
from .common import _bounds
from .problems import make_optimizer


# ---------------------------------------------------------------------------------------
# local searches
# ---------------------------------------------------------------------------------------
class _Budget(Exception):
    pass


class LBFGSB:
    """L-BFGS-B (scipy) as a local search with a hard budget of evaluations.

    Uses ``f.value_and_grad`` (backpropagation for a :class:`NetProblem`) when
    the objective has it, else finite differences (each evaluation counted).
    Returns the best point it evaluated.
    """

    name = "L-BFGS-B"

    def __init__(self, f, bounds=None, use_gradient=True):
        self.f = f
        self.vg = getattr(f, "value_and_grad", None) if use_gradient else None
        if self.vg is not None and getattr(f, "grad", 0) is None:
            self.vg = None                  # a FunctionProblem without a gradient
        self.bounds = bounds

    def reset(self):
        pass

    def __call__(self, x, fx, max_evals, rng):
        from scipy.optimize import minimize  # noqa: PLC0415
        state = {"n": 0, "bx": np.array(x, dtype=np.float64), "bf": float(fx)}

        def count(v, val):
            state["n"] += 1
            if val < state["bf"]:
                state["bf"], state["bx"] = float(val), np.array(v, dtype=np.float64)

        def fg(v):
            if state["n"] >= max_evals:
                raise _Budget
            val, g = self.vg(v)
            count(v, val)
            return (val if math.isfinite(val) else 1e300), g

        def fv(v):
            if state["n"] >= max_evals:
                raise _Budget
            val = float(np.asarray(self.f(np.asarray(v)[None]), dtype=np.float64)[0])
            count(v, val)
            return val if math.isfinite(val) else 1e300

        bnds = None
        if self.bounds is not None:
            lo, hi = _bounds(self.bounds, len(x))
            bnds = list(zip(lo, hi))
        try:
            minimize(fg if self.vg else fv, np.array(x, dtype=np.float64), jac=bool(self.vg),
                     method="L-BFGS-B", bounds=bnds,
                     options={"maxfun": max(1, max_evals), "maxiter": max(1, max_evals)})
        except _Budget:
            pass
        return state["bx"], state["bf"], state["n"]


class GradientDescentLS:
    """Local search by gradient descent: ``epochs`` epochs of an nnbook optimizer
    (``"adam"``, ``"nag"``, ``"rmsprop"``, ``"sgd"``) from the given point, then
    one evaluation of the result.  Costs epochs + 1 FEs.  The optimizer's state
    (momenta, moment estimates) is kept between calls, like a training run that
    is interrupted by evolution, and cleared by ``reset()`` (at restarts)."""

    def __init__(self, problem, optimizer="adam", lr=None, epochs=1, batch_size=32):
        if not hasattr(problem, "descend"):
            raise TypeError(f"problem: expected a NetProblem or FunctionProblem (with .descend), "
                            f"got {type(problem).__name__}")
        self.problem = problem
        self.optimizer, self.lr = check_choice("optimizer", optimizer,
                                               ("sgd", "nag", "rmsprop", "adam")), lr
        self.epochs = check_int("epochs", epochs, minimum=1)
        self.batch_size = check_int("batch_size", batch_size, minimum=1) if batch_size else None
        self.name = f"GD({optimizer})"
        self.reset()

    def reset(self):
        params = (self.problem.model.parameters() if hasattr(self.problem, "model")
                  else self.problem.parameters())
        self.opt = make_optimizer(self.optimizer, params, self.lr)

    def __call__(self, x, fx, max_evals, rng):
        epochs = min(self.epochs, max(0, max_evals - 1))
        if epochs < 1:
            return np.array(x), float(fx), 0
        nf0 = self.problem.nfev
        v = self.problem.descend(x, self.opt, epochs, self.batch_size, rng)
        f_new = float(np.asarray(self.problem(v[None]), dtype=np.float64)[0])
        self.problem.nfev = nf0        # counted here instead
        if not f_new < fx:
            return np.array(x), float(fx), epochs + 1
        return v, f_new, epochs + 1


class _PoolLast:
    """SHADE-ILS's choice among local searches: each is tried once (random
    order); then the one whose last improvement ratio was highest is used,
    re-deciding when the one in use yields 0 or less than its previous ratio."""

    def __init__(self, n, rng):
        self.n, self.rng = n, rng
        self.reset()

    def reset(self):
        self.first = [int(i) for i in self.rng.permutation(self.n)]
        self.imp = [0.0] * self.n
        self.current = None

    def _best(self):
        if all(v == 0 for v in self.imp):
            return int(self.rng.integers(self.n))
        return int(np.argmax(self.imp))

    def get(self):
        if self.first:
            return self.first.pop()
        if self.current is None:
            self.current = self._best()
        return self.current

    def update(self, i, ratio):
        if ratio < 0:
            return
        prev, self.imp[i] = self.imp[i], ratio
        if self.first:
            return
        if self.current is None or ratio == 0 or ratio < prev:
            self.current = self._best()


def _ratio(before, after):
    if before == 0 or not math.isfinite(before):
        return 0.0 if before == 0 else 1.0
    return (before - after) / abs(before)
