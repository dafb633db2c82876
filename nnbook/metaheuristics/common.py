"""What the algorithms share: :class:`OptimizeResult`, argument checks
(seed, objective, bounds, initial population, budget) and :class:`_Tracker`
(budget, best-so-far history, progress bar, callback)."""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from .._checks import check_int, describe
from .population import _check_population


# ---------------------------------------------------------------------------------------
# common machinery
# ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class OptimizeResult:
    """What an algorithm returns: the best point ``x`` and its value ``fun``,
    the evaluations used ``nfev``, iterations ``nit`` (generations), the
    best-so-far value after each generation/local search (``history``) with
    the evaluations used at that moment (``history_nfev``), and ``info``."""

    x: np.ndarray
    fun: float
    nfev: int
    nit: int
    history: list
    history_nfev: list
    algorithm: str
    seconds: float
    info: dict = dataclasses.field(default_factory=dict)

    def __repr__(self):
        return (f"OptimizeResult({self.algorithm}: fun={self.fun:.6g}, nfev={self.nfev}, "
                f"nit={self.nit}, {self.seconds:.2f} s)")


def _rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed: expected a non-negative int, a numpy Generator or None, "
                        f"got {seed!r}")
    return np.random.default_rng(int(seed))


def _objective(f, dim):
    """(batched objective returning float64 with NaN -> inf, D)."""
    if not callable(f):
        raise TypeError(f"f: expected a function of a (popsize, D) array (or a NetProblem), "
                        f"got {type(f).__name__}")
    pd = getattr(f, "dim", None)
    if dim is None:
        if pd is None:
            raise ValueError("dim: give the dimension D of the search space (f has no .dim)")
        dim = pd
    dim = check_int("dim", dim, minimum=1)
    if pd is not None and pd != dim:
        raise ValueError(f"dim: f is a problem of dimension {pd}, got dim={dim}")

    def fun(P):
        v = np.asarray(f(P), dtype=np.float64).reshape(-1)
        if v.shape[0] != P.shape[0]:
            raise ValueError(f"f: expected {P.shape[0]} values for a ({P.shape[0]}, {dim}) "
                             f"population, got shape {v.shape}")
        v = v.copy()
        v[np.isnan(v)] = np.inf
        return v
    return fun, dim


def _bounds(bounds, dim):
    if bounds is None:
        return None, None
    try:
        lo, hi = bounds
    except (TypeError, ValueError):
        raise ValueError(f"bounds: expected (lower, upper) (scalars or length-{dim} arrays), "
                         f"got {bounds!r}") from None
    lo = np.broadcast_to(np.asarray(lo, dtype=np.float64), (dim,)).copy()
    hi = np.broadcast_to(np.asarray(hi, dtype=np.float64), (dim,)).copy()
    if not (np.isfinite(lo).all() and np.isfinite(hi).all() and (lo < hi).all()):
        raise ValueError(f"bounds: expected finite lower < upper, got {bounds!r}")
    return lo, hi


def _init_population(init_pop, popsize, dim, lo, hi, rng, f):
    if init_pop is not None:
        P = _check_population(np.asarray(init_pop, dtype=np.float64), dim, "init_pop").copy()
        if P.shape[0] < 4:
            raise ValueError(f"init_pop: expected at least 4 rows, got {describe(P)}")
        if not np.isfinite(P).all():
            raise ValueError("init_pop: expected finite values")
        return P
    if lo is not None:
        return lo + rng.random((popsize, dim)) * (hi - lo)
    sampler = getattr(f, "init_population", None)
    if sampler is not None:
        return np.asarray(sampler(popsize, rng), dtype=np.float64)
    raise ValueError("bounds: give bounds=(lower, upper) or an initial population init_pop "
                     "(or an objective with .init_population)")


def _check_budget(max_evals, popsize):
    max_evals = check_int("max_evals", max_evals, minimum=1)
    if max_evals < popsize:
        raise ValueError(f"max_evals: expected at least popsize={popsize} evaluations "
                         f"(one per initial individual), got {max_evals}")
    return max_evals


class _Tracker:
    """Budget, history, progress bar and callback shared by the algorithms."""

    def __init__(self, max_evals, progress, callback, name):
        self.max_evals, self.nfev = max_evals, 0
        self.best_f, self.best_x = math.inf, None
        self.history, self.history_nfev = [], []
        self.callback = callback
        self.stop = False
        self.t0 = time.perf_counter()
        self.bar = None
        if progress:
            from tqdm.auto import tqdm  # noqa: PLC0415
            self.bar = tqdm(total=max_evals, unit="FE", desc=name, leave=True)

    @property
    def left(self):
        return self.max_evals - self.nfev

    def spend(self, n):
        self.nfev += int(n)
        if self.bar is not None:
            self.bar.update(int(n))

    def offer(self, x, fx):
        if fx < self.best_f:
            self.best_f, self.best_x = float(fx), np.array(x, dtype=np.float64)

    def record(self):
        self.history.append(self.best_f)
        self.history_nfev.append(self.nfev)
        if self.bar is not None:
            self.bar.set_postfix(best=f"{self.best_f:.4g}")
        if self.callback is not None and self.callback(self.nfev, self.best_x, self.best_f):
            self.stop = True

    def result(self, name, nit, **info):
        if self.bar is not None:
            self.bar.close()
        return OptimizeResult(self.best_x, self.best_f, self.nfev, nit, self.history,
                              self.history_nfev, name, time.perf_counter() - self.t0, info)
