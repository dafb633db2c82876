"""SHADE-ILS (:func:`shade_ils`) and its hybrids with gradient descent
(:func:`shade_gd`, :func:`shade_ils_gd`)."""
from __future__ import annotations

import numpy as np

from .._checks import check_int, check_positive, describe
from .common import _bounds, _check_budget, _init_population, _objective, _rng, _Tracker
from .evolution import _Shade, _shade_args
from .local_search import LBFGSB, GradientDescentLS, _PoolLast, _ratio


# ---------------------------------------------------------------------------------------
# SHADE-ILS and hybrids
# ---------------------------------------------------------------------------------------
def shade_ils(f, dim=None, *, max_evals, bounds=None, popsize=100, H=None, evals_de=None,
              evals_ls=None, threshold=0.05, max_worse=3, local_searches=None, restart=True,
              p_max=0.2, archive_rate=1.0, bound_handling="midpoint", init_pop=None, x_init=None,
              seed=None, progress=False, callback=None, name="SHADE-ILS"):
    """SHADE-ILS (Molina, LaTorre & Herrera 2018): SHADE explores, a local search exploits.

    1. population <- random; current <- LS(initial solution) (the centre of the
       bounds, or ``x_init``, or the best initial individual).
    2. repeat until the budget is spent:
       previous <- f(current);
       inject current into the population; run SHADE for ``evals_de`` FEs;
       current <- best of the population;
       choose a local search (each tried once, then the one with the best
       last improvement ratio); current <- LS(current) for ``evals_ls`` FEs;
       if (previous - f(current)) / previous < ``threshold`` for ``max_worse``
       consecutive iterations and ``restart``: new random population, SHADE
       memories and archive reset, local searches reset, current <- a random
       individual moved by up to 1% of the range.
    3. return the best solution ever seen.

    ``local_searches``: a list of local-search objects (default: [:class:`LBFGSB`]);
    the original paper pairs L-BFGS-B with MTS-LS1, the source thesis keeps
    L-BFGS-B alone.  ``evals_de`` defaults to min(50 D, 25000) and ``evals_ls``
    to min(10 D, 5000), the paper's values.
    """
    fun, dim = _objective(f, dim)
    rng = _rng(seed)
    popsize, H, p_max, archive_rate = _shade_args(popsize, H, p_max, archive_rate,
                                                  bound_handling)
    max_evals = _check_budget(max_evals, popsize if init_pop is None else len(init_pop))
    evals_de = min(50 * dim, 25000) if evals_de is None else check_int("evals_de", evals_de,
                                                                       minimum=1)
    evals_ls = min(10 * dim, 5000) if evals_ls is None else check_int("evals_ls", evals_ls,
                                                                      minimum=1)
    threshold = check_positive("threshold", threshold, allow_zero=True)
    max_worse = check_int("max_worse", max_worse, minimum=1)
    lo, hi = _bounds(bounds, dim)
    if local_searches is None:
        local_searches = [LBFGSB(f, bounds=bounds)]
    local_searches = list(local_searches)
    if not local_searches or not all(callable(ls) for ls in local_searches):
        raise TypeError("local_searches: expected a non-empty list of local-search objects "
                        "(e.g. [LBFGSB(f)])")
    tr = _Tracker(max_evals, progress, callback, name)
    P = _init_population(init_pop, popsize, dim, lo, hi, rng, f)
    fit = fun(P)
    tr.spend(len(P))
    eng = _Shade(fun, P, fit, lo, hi, H, rng, p_max, archive_rate, bound_handling)
    i_best, cx, cf = eng.best()
    cx = cx.copy()
    start = (lo + hi) / 2 if lo is not None else (None if x_init is None
                                                   else np.asarray(x_init, dtype=np.float64))
    if start is not None and tr.left > 0:
        if start.shape != (dim,):
            raise ValueError(f"x_init: expected a vector of length {dim}, got {describe(start)}")
        sf = float(fun(start[None])[0])
        tr.spend(1)
        if sf < cf:
            cx, cf = start.copy(), sf
            P[i_best], fit[i_best] = cx, cf
    tr.offer(cx, cf)
    tr.record()
    pool = _PoolLast(len(local_searches), rng)
    usage = {ls.name: 0 for ls in local_searches}
    # initial local search on the starting solution
    if tr.left > 0:
        j = pool.get()
        nx, nf, used = local_searches[j](cx, cf, min(evals_ls, tr.left), rng)
        tr.spend(used)
        usage[local_searches[j].name] += 1
        pool.update(j, _ratio(cf, nf))
        cx, cf = np.array(nx), float(nf)
        tr.offer(cx, cf)
        tr.record()
    nit, worse, restarts = 0, 0, 0
    while tr.left > 0 and not tr.stop:
        previous = cf
        i_best = int(np.argmin(eng.fit))
        if cf < eng.fit[i_best]:
            eng.P[i_best], eng.fit[i_best] = cx, cf
        spent = 0
        while spent < evals_de and tr.left > 0 and not tr.stop:
            used = eng.generation(min(tr.left, evals_de - spent))
            spent += used
            tr.spend(used)
            nit += 1
            tr.offer(*eng.best()[1:])
            tr.record()
        _, bx, bf = eng.best()
        if bf <= cf:
            cx, cf = bx.copy(), bf
        if tr.left <= 0 or tr.stop:
            break
        j = pool.get()
        nx, nf, used = local_searches[j](cx, cf, min(evals_ls, tr.left), rng)
        tr.spend(used)
        usage[local_searches[j].name] += 1
        pool.update(j, _ratio(cf, nf))
        if nf <= cf:
            cx, cf = np.array(nx), float(nf)
        tr.offer(cx, cf)
        tr.record()
        if _ratio(previous, cf) >= threshold:
            worse = 0
        else:
            worse += 1
        if restart and worse >= max_worse and tr.left > len(eng.P):
            worse = 0
            restarts += 1
            base = eng.P[rng.integers(len(eng.P))]
            span = (hi - lo) if lo is not None else (eng.P.max(axis=0) - eng.P.min(axis=0))
            cx = base + rng.uniform(-0.01, 0.01, dim) * span
            if lo is not None:
                cx = np.clip(cx, lo, hi)
            NP = len(eng.P)
            if lo is not None:
                eng.P = lo + rng.random((NP, dim)) * (hi - lo)
            elif hasattr(f, "init_population"):
                eng.P = np.asarray(f.init_population(NP, rng), dtype=np.float64)
            else:
                eng.P = base + rng.normal(size=(NP, dim)) * eng.P.std(axis=0)
            eng.fit = fun(eng.P)
            cf = float(fun(cx[None])[0])
            tr.spend(NP + 1)
            eng.reset_memory()
            pool.reset()
            for ls in local_searches:
                ls.reset()
            tr.offer(cx, cf)
            tr.record()
    return tr.result(name, nit, restarts=restarts, ls_usage=usage, M_CR=eng.M_CR, M_F=eng.M_F)


def shade_gd(problem, *, max_evals, optimizer="adam", lr=None, epochs_per_ls=1, batch_size=32,
             popsize=20, evals_de=None, init_pop=None, seed=None, progress=False, callback=None,
             **kw):
    """Memetic SHADE with gradient descent: SHADE for ``evals_de`` FEs, then
    ``epochs_per_ls`` epochs of an nnbook optimizer on the best individual, and
    again (SHADE-ILS's loop with this one local search and no restarts)."""
    ls = GradientDescentLS(problem, optimizer, lr, epochs_per_ls, batch_size)
    evals_de = evals_de if evals_de is not None else 10 * popsize
    return shade_ils(problem, max_evals=max_evals, popsize=popsize, evals_de=evals_de,
                     evals_ls=epochs_per_ls + 1, local_searches=[ls], restart=False,
                     init_pop=init_pop, seed=seed, progress=progress, callback=callback,
                     name=f"SHADE+GD({optimizer})", **kw)


def shade_ils_gd(problem, *, max_evals, optimizer="adam", lr=None, epochs_per_ls=1,
                 batch_size=32, popsize=20, evals_de=None, evals_ls=None, init_pop=None,
                 seed=None, progress=False, callback=None, **kw):
    """SHADE-ILS whose pool holds L-BFGS-B *and* gradient descent (in the place
    of the original's MTS-LS1); the improvement-ratio rule picks between them.
    The gradient local search runs ``epochs_per_ls`` epochs whatever ``evals_ls``."""
    gd = GradientDescentLS(problem, optimizer, lr, epochs_per_ls, batch_size)
    evals_de = evals_de if evals_de is not None else 10 * popsize
    return shade_ils(problem, max_evals=max_evals, popsize=popsize, evals_de=evals_de,
                     evals_ls=evals_ls, local_searches=[LBFGSB(problem), gd], restart=True,
                     init_pop=init_pop, seed=seed, progress=progress, callback=callback,
                     name=f"SHADE-ILS+GD({optimizer})", **kw)
