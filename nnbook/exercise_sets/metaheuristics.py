"""Exercises of the chapter "Metaheuristics vs gradient descent" (``meta.*``).

Populations are matrices whose rows are individuals; index arrays pick rows.
"""
import numpy as np

from .. import metaheuristics as mh
from ..exercises import register


def _pop_cases(rng):
    out = []
    for n, d in ((6, 4), (5, 1), (10, 7)):
        P = rng.normal(size=(n, d))
        idx = np.arange(n)
        r0, r1, r2 = (idx + 1) % n, (idx + 2) % n, (idx + 3) % n
        out.append((P, r0, r1, r2, float(rng.uniform(0.1, 1.0))))
    out.append((np.zeros((4, 2)), np.array([1, 2, 3, 0]), np.array([2, 3, 0, 1]),
                np.array([3, 0, 1, 2]), 0.5))
    return out


register(
    "meta.de_rand_1",
    "DE/rand/1 mutation: given the population P (NP, D), index arrays r0, r1, r2 (NP,) and "
    "the scale F, return V with V[i] = P[r0[i]] + F (P[r1[i]] - P[r2[i]]).",
    reference=mh.de_rand_1,
    cases=_pop_cases,
    wrong=lambda P, r0, r1, r2, F: P + F * (P[r1] - P[r2]),        # base = target, not r0
)


def _xover_cases(rng):
    out = []
    for n, d, cr in ((5, 6, 0.5), (4, 1, 0.0), (6, 3, 1.0), (3, 8, 0.0)):
        X, V = rng.normal(size=(n, d)), rng.normal(size=(n, d))
        out.append((X, V, cr, rng.random((n, d)), rng.integers(d, size=n)))
    return out


register(
    "meta.binomial_crossover",
    "Binomial crossover: return U with U[i, j] = V[i, j] if rand[i, j] < CR or j == jrand[i], "
    "else X[i, j] (every trial takes at least coordinate jrand[i] from the mutant).",
    reference=mh.binomial_crossover,
    cases=_xover_cases,
    wrong=lambda X, V, CR, rand, jrand: np.where(rand < CR, V, X),  # forgets j_rand
)


def _mean_cases(rng):
    return [(rng.uniform(0.1, 1, 5), rng.uniform(0.1, 3, 5)), (np.array([0.5, 0.9]),
            np.array([1.0, 3.0])), (np.array([0.7]), np.array([2.0])),
            (np.array([0.2, 0.2, 0.2]), np.array([1.0, 5.0, 0.5]))]


register(
    "meta.lehmer_mean",
    "Weighted Lehmer mean of the successful F values s with weights w: "
    "sum(w s^2) / sum(w s). Return a float.",
    reference=mh.lehmer_mean,
    cases=_mean_cases,
    wrong=mh.weighted_mean,
    rtol=1e-12,
)


def _bounce_cases(rng):
    out = []
    for n, d in ((8, 3), (5, 1)):
        X = rng.uniform(-1, 1, size=(n, d))
        V = X + rng.normal(size=(n, d)) * 3
        out.append((V, X, -1.0, 1.0, rng.random((n, d))))
    X = rng.uniform(-2, 3, size=(6, 2))
    out.append((X * 4, X, np.array([-2.0, -2.0]), np.array([3.0, 3.0]), rng.random((6, 2))))
    out.append((np.array([[0.5, -0.5]]), np.array([[0.0, 0.0]]), -1.0, 1.0, np.array([[0.3, 0.7]])))
    return out


register(
    "meta.bounce_back",
    "Bounce-back repair of the trial V (parent X, bounds lower, upper, uniform numbers rand, "
    "all broadcastable to V's shape): a coordinate below lower becomes lower + rand (x - lower), "
    "one above upper becomes upper - rand (upper - x), the others stay.",
    reference=mh.bounce_back,
    cases=_bounce_cases,
    wrong=lambda V, X, lo, hi, rand: np.clip(V, lo, hi),            # clipping piles on the bound
)


def _memory_cases(rng):
    return [
        (np.full(4, 0.5), np.full(4, 0.5), 1, np.array([0.2, 0.6]), np.array([0.5, 0.9]),
         np.array([1.0, 3.0])),
        (rng.random(3), rng.random(3), 2, rng.random(4), rng.uniform(0.1, 1, 4),
         rng.uniform(0.01, 2, 4)),
        (np.full(2, 0.5), np.full(2, 0.5), 0, np.array([]), np.array([]), np.array([])),
        (rng.random(5), rng.random(5), 4, np.array([0.9]), np.array([0.3]), np.array([0.1])),
    ]


def _memory_wrong(M_CR, M_F, k, S_CR, S_F, delta):
    M_CR, M_F = np.array(M_CR, dtype=float), np.array(M_F, dtype=float)
    if len(S_CR) == 0:
        return M_CR, M_F, k
    M_CR[k] = np.mean(S_CR)                                          # ignores the weights
    M_F[k] = (np.asarray(S_F) ** 2).sum() / np.sum(S_F)
    return M_CR, M_F, (k + 1) % len(M_CR)


register(
    "meta.shade_memory_update",
    "SHADE's memory update: with successes (S_CR non-empty) and w = delta / sum(delta), set "
    "M_CR[k] = sum(w S_CR), M_F[k] = sum(w S_F^2) / sum(w S_F), and advance k cyclically; "
    "without successes change nothing. Return new copies (M_CR, M_F, k).",
    reference=mh.shade_memory_update,
    cases=_memory_cases,
    wrong=_memory_wrong,
    rtol=1e-12,
)


def _pbest_cases(rng):
    out = []
    for n, d in ((6, 3), (8, 1)):
        P = rng.normal(size=(n, d))
        A = rng.normal(size=(3, d))
        PA = np.vstack([P, A])
        r2 = rng.integers(len(PA), size=n)
        out.append((P, rng.integers(n, size=n), (np.arange(n) + 1) % n, PA[r2],
                    rng.uniform(0.1, 1, n)))
    return out


register(
    "meta.current_to_pbest_1",
    "current-to-pbest/1 mutation: P (NP, D), index arrays pbest and r1 (NP,), the gathered "
    "second difference vectors XR2 (NP, D) and per-individual scales F (NP,): "
    "V[i] = P[i] + F[i] (P[pbest[i]] - P[i]) + F[i] (P[r1[i]] - XR2[i]).",
    reference=mh.current_to_pbest_1,
    cases=_pbest_cases,
    wrong=lambda P, pb, r1, xr2, F: P + F[:, None] * (P[pb] - P) + (P[r1] - xr2),
)
