"""Differential evolution (:func:`de`) and SHADE (:func:`shade`, with its
state and generation step :class:`_Shade`, reused by SHADE-ILS)."""
from __future__ import annotations

import math

import numpy as np

from .._checks import check_choice, check_int, check_positive
from .common import _bounds, _check_budget, _init_population, _objective, _rng, _Tracker
from .operators import (_archive_push, _distinct_from, _repair, binomial_crossover,
                        current_to_pbest_1, de_rand_1, sample_cr_f, shade_memory_update)


# ---------------------------------------------------------------------------------------
# differential evolution
# ---------------------------------------------------------------------------------------
def de(f, dim=None, *, max_evals, bounds=None, popsize=50, F=0.5, CR=0.9,
       strategy="rand/1/bin", p=0.1, archive=True, bound_handling="bounce-back",
       init_pop=None, seed=None, progress=False, callback=None):
    """Differential evolution (Storn & Price 1997) with fixed F and CR.

    ``strategy="rand/1/bin"``: v_i = x_r0 + F (x_r1 - x_r2), r0, r1, r2 distinct
    and different from i.  ``"current-to-pbest/1/bin"`` (JADE): v_i = x_i +
    F (x_pbest - x_i) + F (x_r1 - x~_r2), x_pbest one of the best ceil(p NP),
    x~_r2 drawn from the population united with an ``archive`` of replaced
    parents (size NP).  Binomial crossover with rate CR, greedy one-to-one
    selection (ties go to the trial).  ``bound_handling``: "bounce-back",
    "midpoint" or "clip" (with ``bounds``).  ``callback(nfev, x_best, f_best)``
    after each generation; return True to stop.
    """
    fun, dim = _objective(f, dim)
    rng = _rng(seed)
    popsize = check_int("popsize", popsize, minimum=4)
    max_evals = _check_budget(max_evals, popsize if init_pop is None else len(init_pop))
    F = check_positive("F", F)
    CR = check_positive("CR", CR, allow_zero=True)
    if CR > 1:
        raise ValueError(f"CR: expected a crossover rate in [0, 1], got {CR}")
    check_choice("strategy", strategy, ("rand/1/bin", "current-to-pbest/1/bin"))
    check_choice("bound_handling", bound_handling, ("bounce-back", "midpoint", "clip"))
    p = check_positive("p", p)
    lo, hi = _bounds(bounds, dim)
    P = _init_population(init_pop, popsize, dim, lo, hi, rng, f)
    NP = P.shape[0]
    tr = _Tracker(max_evals, progress, callback, "DE")
    fit = fun(P)
    tr.spend(NP)
    i_best = int(np.argmin(fit))
    tr.offer(P[i_best], fit[i_best])
    tr.record()
    A = np.empty((0, dim))
    idx = np.arange(NP)
    nit = 0
    while tr.left > 0 and not tr.stop:
        if strategy == "rand/1/bin":
            r0 = _distinct_from(rng, NP, [idx])
            r1 = _distinct_from(rng, NP, [idx, r0])
            r2 = _distinct_from(rng, NP, [idx, r0, r1])
            V = de_rand_1(P, r0, r1, r2, F)
        else:
            top = np.argsort(fit, kind="stable")[:max(1, int(math.ceil(p * NP)))]
            pbest = top[rng.integers(len(top), size=NP)]
            r1 = _distinct_from(rng, NP, [idx])
            PA = np.vstack([P, A]) if archive and len(A) else P
            r2 = _distinct_from(rng, PA.shape[0], [idx, r1])
            V = current_to_pbest_1(P, pbest, r1, PA[r2], F)
        U = binomial_crossover(P, V, CR, rng.random((NP, dim)), rng.integers(dim, size=NP))
        U = _repair(U, P, lo, hi, bound_handling, rng)
        m = min(NP, tr.left)
        fu = np.full(NP, np.inf)
        fu[:m] = fun(U[:m])
        tr.spend(m)
        win = fu <= fit
        if archive and strategy != "rand/1/bin":
            A = _archive_push(A, P[fu < fit], NP, rng)
        P[win], fit[win] = U[win], fu[win]
        i_best = int(np.argmin(fit))
        tr.offer(P[i_best], fit[i_best])
        nit += 1
        tr.record()
    return tr.result(f"DE/{strategy}", nit, population=P, fitness=fit)


# ---------------------------------------------------------------------------------------
# SHADE
# ---------------------------------------------------------------------------------------
class _Shade:
    """SHADE's state (population, fitness, memories, archive) and one generation."""

    def __init__(self, fun, P, fit, lo, hi, H, rng, p_max, archive_rate, bound_handling):
        self.fun, self.P, self.fit = fun, P, fit
        self.lo, self.hi, self.rng = lo, hi, rng
        self.H, self.p_max, self.archive_rate = H, p_max, archive_rate
        self.bound_handling = bound_handling
        self.reset_memory()

    def reset_memory(self):
        self.M_CR = np.full(self.H, 0.5)
        self.M_F = np.full(self.H, 0.5)
        self.k = 0
        self.A = np.empty((0, self.P.shape[1]))

    def generation(self, budget):
        """One generation evaluating at most ``budget`` trials; returns evaluations used."""
        P, fit, rng = self.P, self.fit, self.rng
        NP, D = P.shape
        CR, Fs, _ = sample_cr_f(self.M_CR, self.M_F, rng, NP)
        p = rng.uniform(2.0 / NP, max(self.p_max, 2.0 / NP), size=NP)
        order = np.argsort(fit, kind="stable")
        ntop = np.maximum(1, np.round(p * NP).astype(int))
        pbest = order[(rng.random(NP) * ntop).astype(int)]
        idx = np.arange(NP)
        r1 = _distinct_from(rng, NP, [idx])
        PA = np.vstack([P, self.A]) if len(self.A) else P
        r2 = _distinct_from(rng, PA.shape[0], [idx, r1])
        V = current_to_pbest_1(P, pbest, r1, PA[r2], Fs)
        U = binomial_crossover(P, V, CR, rng.random((NP, D)), rng.integers(D, size=NP))
        U = _repair(U, P, self.lo, self.hi, self.bound_handling, rng)
        m = min(NP, budget)
        fu = np.full(NP, np.inf)
        fu[:m] = self.fun(U[:m])
        better = fu < fit
        win = fu <= fit
        cap = int(round(self.archive_rate * NP))
        if cap > 0:
            self.A = _archive_push(self.A, P[better], cap, rng)
        self.M_CR, self.M_F, self.k = shade_memory_update(
            self.M_CR, self.M_F, self.k, CR[better], Fs[better], fit[better] - fu[better])
        P[win], fit[win] = U[win], fu[win]
        return m

    def best(self):
        i = int(np.argmin(self.fit))
        return i, self.P[i], float(self.fit[i])


def _shade_args(popsize, H, p_max, archive_rate, bound_handling):
    popsize = check_int("popsize", popsize, minimum=4)
    H = popsize if H is None else check_int("H", H, minimum=1)
    p_max = check_positive("p_max", p_max)
    if p_max > 1:
        raise ValueError(f"p_max: expected a fraction in (0, 1], got {p_max}")
    archive_rate = check_positive("archive_rate", archive_rate, allow_zero=True)
    check_choice("bound_handling", bound_handling, ("midpoint", "bounce-back", "clip"))
    return popsize, H, p_max, archive_rate


def shade(f, dim=None, *, max_evals, bounds=None, popsize=100, H=None, p_max=0.2,
          archive_rate=1.0, bound_handling="midpoint", init_pop=None, seed=None,
          progress=False, callback=None):
    """SHADE: success-history based adaptive DE (Tanabe & Fukunaga 2013).

    Per generation each individual i draws r_i ~ U{1..H}, CR_i ~ N(M_CR[r_i], 0.1)
    (clipped to [0, 1]), F_i ~ Cauchy(M_F[r_i], 0.1) (redrawn if <= 0, cut at 1)
    and p_i ~ U[2/NP, p_max]; mutation current-to-pbest/1 with the external
    archive, binomial crossover, midpoint bounds repair, greedy selection.
    Successful (CR_i, F_i) update one memory slot per generation
    (:func:`shade_memory_update`).  ``H`` defaults to ``popsize``; the archive
    holds ``archive_rate * popsize`` replaced parents.
    """
    fun, dim = _objective(f, dim)
    rng = _rng(seed)
    popsize, H, p_max, archive_rate = _shade_args(popsize, H, p_max, archive_rate,
                                                  bound_handling)
    max_evals = _check_budget(max_evals, popsize if init_pop is None else len(init_pop))
    lo, hi = _bounds(bounds, dim)
    P = _init_population(init_pop, popsize, dim, lo, hi, rng, f)
    tr = _Tracker(max_evals, progress, callback, "SHADE")
    fit = fun(P)
    tr.spend(len(P))
    eng = _Shade(fun, P, fit, lo, hi, H, rng, p_max, archive_rate, bound_handling)
    tr.offer(*eng.best()[1:])
    tr.record()
    nit = 0
    while tr.left > 0 and not tr.stop:
        tr.spend(eng.generation(tr.left))
        tr.offer(*eng.best()[1:])
        nit += 1
        tr.record()
    return tr.result("SHADE", nit, population=eng.P, fitness=eng.fit, M_CR=eng.M_CR,
                     M_F=eng.M_F, archive_size=len(eng.A))
