"""Exercises of the chapter "Metaheuristics vs gradient descent" (``meta.*``; the checks,
the stored cases are in ``nnbook/exercise_data/metaheuristics.*``).

Populations are matrices whose rows are individuals; index arrays pick rows.
"""
from ..exercises import register

register(
    "meta.de_rand_1",
    "DE/rand/1 mutation: given the population P (NP, D), index arrays r0, r1, r2 (NP,) and "
    "the scale F, return V with V[i] = P[r0[i]] + F (P[r1[i]] - P[r2[i]]).",
)

register(
    "meta.binomial_crossover",
    "Binomial crossover: return U with U[i, j] = V[i, j] if rand[i, j] < CR or j == jrand[i], "
    "else X[i, j] (every trial takes at least coordinate jrand[i] from the mutant).",
)

register(
    "meta.lehmer_mean",
    "Weighted Lehmer mean of the successful F values s with weights w: "
    "sum(w s^2) / sum(w s). Return a float.",
    rtol=1e-12,
)

register(
    "meta.bounce_back",
    "Bounce-back repair of the trial V (parent X, bounds lower, upper, uniform numbers rand, "
    "all broadcastable to V's shape): a coordinate below lower becomes lower + rand (x - lower), "
    "one above upper becomes upper - rand (upper - x), the others stay.",
)

register(
    "meta.shade_memory_update",
    "SHADE's memory update: with successes (S_CR non-empty) and w = delta / sum(delta), set "
    "M_CR[k] = sum(w S_CR), M_F[k] = sum(w S_F^2) / sum(w S_F), and advance k cyclically; "
    "without successes change nothing. Return new copies (M_CR, M_F, k).",
    rtol=1e-12,
)

register(
    "meta.current_to_pbest_1",
    "current-to-pbest/1 mutation: P (NP, D), index arrays pbest and r1 (NP,), the gathered "
    "second difference vectors XR2 (NP, D) and per-individual scales F (NP,): "
    "V[i] = P[i] + F[i] (P[pbest[i]] - P[i]) + F[i] (P[r1[i]] - XR2[i]).",
)

register(
    "meta.shade_budget",
    "Budget arithmetic of a metaheuristic against gradient descent. Under the chapter's "
    "accounting an epoch of gradient descent counts as one FE; the metaheuristic gets "
    "fes_per_epoch FEs for each of the epochs gradient descent gets. SHADE spends popsize "
    "FEs on its initial population and popsize FEs on each generation. An FE's time is "
    "proportional to the number of training digits it evaluates, and took seconds_per_fe "
    "on n_timed digits. Return (max_evals, generations, seconds): the budget, the number "
    "of complete generations it leaves after the initial population, and the time of the "
    "whole budget on n_train digits (the budget is at least popsize).",
    rtol=1e-9, atol=1e-9,
)
