"""The operators of differential evolution and SHADE as pure functions of
arrays (the book's formulas): mutation, binomial crossover, bounds repair,
SHADE's success-history memory update and parameter sampling, and the index
sampling and external archive the algorithms share.
"""
from __future__ import annotations

import numpy as np


# ---------------------------------------------------------------------------------------
# DE operators (pure functions: the book's formulas)
# ---------------------------------------------------------------------------------------
def de_rand_1(P, r0, r1, r2, F):
    """Mutant vectors v_i = x_{r0} + F (x_{r1} - x_{r2}) (rows of P; F scalar or (pop,))."""
    F = np.asarray(F, dtype=np.float64).reshape(-1, 1) if np.ndim(F) else float(F)
    return P[r0] + F * (P[r1] - P[r2])


def current_to_pbest_1(P, pbest, r1, xr2, F):
    """v_i = x_i + F_i (x_pbest - x_i) + F_i (x_r1 - x~_r2); xr2 already gathered
    (from the population or the archive)."""
    F = np.asarray(F, dtype=np.float64).reshape(-1, 1) if np.ndim(F) else float(F)
    return P + F * (P[pbest] - P) + F * (P[r1] - xr2)


def binomial_crossover(X, V, CR, rand, jrand):
    """u_ij = v_ij if rand_ij < CR_i or j == jrand_i else x_ij."""
    CR = np.asarray(CR, dtype=np.float64).reshape(-1, 1) if np.ndim(CR) else float(CR)
    mask = rand < CR
    mask[np.arange(X.shape[0]), jrand] = True
    return np.where(mask, V, X)


def bounce_back(V, X, lower, upper, rand):
    """Bounce-back repair: a coordinate below ``lower`` becomes
    lower + rand (x - lower), above ``upper`` upper - rand (upper - x), where x is
    the parent's coordinate (so the point lands between the bound and the parent)."""
    lo = np.broadcast_to(lower, V.shape)
    hi = np.broadcast_to(upper, V.shape)
    out = V.copy()
    below, above = V < lo, V > hi
    out[below] = (lo + rand * (X - lo))[below]
    out[above] = (hi - rand * (hi - X))[above]
    return out


def midpoint_repair(V, X, lower, upper):
    """SHADE's repair (Tanabe & Fukunaga 2013): (lower + x)/2 or (upper + x)/2."""
    return bounce_back(V, X, lower, upper, 0.5)


# ---------------------------------------------------------------------------------------
# SHADE's parameter adaptation (pure functions)
# ---------------------------------------------------------------------------------------
def weighted_mean(s, w):
    """sum_k w_k s_k / sum_k w_k."""
    s, w = np.asarray(s, dtype=np.float64), np.asarray(w, dtype=np.float64)
    return float((w * s).sum() / w.sum())


def lehmer_mean(s, w):
    """Weighted Lehmer mean sum_k w_k s_k^2 / sum_k w_k s_k (pulls towards large values)."""
    s, w = np.asarray(s, dtype=np.float64), np.asarray(w, dtype=np.float64)
    return float((w * s * s).sum() / (w * s).sum())


def shade_memory_update(M_CR, M_F, k, S_CR, S_F, delta):
    """One SHADE memory update.  Returns new (M_CR, M_F, k) (inputs unchanged).

    If there were successes (S_CR non-empty), with weights
    w_j = delta_j / sum delta (``delta_j = |f(u_j) - f(x_j)|``, the improvement):
    M_CR[k] = sum w_j S_CR_j (weighted arithmetic mean),
    M_F[k] = sum w_j S_F_j^2 / sum w_j S_F_j (weighted Lehmer mean), k -> (k+1) mod H.
    Otherwise nothing changes.
    """
    M_CR, M_F = np.array(M_CR, dtype=np.float64), np.array(M_F, dtype=np.float64)
    S_CR, S_F, delta = (np.asarray(a, dtype=np.float64) for a in (S_CR, S_F, delta))
    if S_CR.size == 0:
        return M_CR, M_F, int(k)
    if np.isinf(delta).any():          # a parent with an infinite (diverged) loss
        w = np.isinf(delta) / np.isinf(delta).sum()
    elif delta.sum() > 0:
        w = delta / delta.sum()
    else:
        w = np.full(delta.size, 1.0 / delta.size)
    M_CR[k] = weighted_mean(S_CR, w)
    M_F[k] = lehmer_mean(S_F, w)
    return M_CR, M_F, (int(k) + 1) % M_CR.size


def sample_cr_f(M_CR, M_F, rng, n):
    """SHADE's per-individual parameters: r_i ~ U{0..H-1};
    CR_i ~ N(M_CR[r_i], 0.1) clipped to [0, 1]; F_i ~ Cauchy(M_F[r_i], 0.1),
    redrawn while <= 0, truncated to 1.  Returns (CR, F, r)."""
    H = len(M_CR)
    r = rng.integers(H, size=n)
    CR = np.clip(rng.normal(M_CR[r], 0.1), 0.0, 1.0)
    F = M_F[r] + 0.1 * np.tan(np.pi * (rng.random(n) - 0.5))
    bad = F <= 0
    while bad.any():
        F[bad] = M_F[r[bad]] + 0.1 * np.tan(np.pi * (rng.random(int(bad.sum())) - 0.5))
        bad = F <= 0
    return CR, np.minimum(F, 1.0), r


# ---------------------------------------------------------------------------------------
# index sampling, bounds handling by name and the external archive
# ---------------------------------------------------------------------------------------
def _distinct_from(rng, n_choices, exclude):
    """For each row i, an index in [0, n_choices) different from every exclude[k][i]."""
    n = exclude[0].shape[0]
    r = rng.integers(n_choices, size=n)
    bad = np.zeros(n, bool)
    for e in exclude:
        bad |= r == e
    while bad.any():
        r[bad] = rng.integers(n_choices, size=int(bad.sum()))
        bad[:] = False
        for e in exclude:
            bad |= r == e
    return r


def _repair(U, X, lo, hi, how, rng):
    if lo is None:
        return U
    if how == "clip":
        return np.clip(U, lo, hi)
    if how == "midpoint":
        return midpoint_repair(U, X, lo, hi)
    return bounce_back(U, X, lo, hi, rng.random(U.shape))


def _archive_push(A, new, cap, rng):
    A = np.vstack([A, new]) if len(new) else A
    if len(A) > cap:
        keep = rng.choice(len(A), size=cap, replace=False)
        A = A[np.sort(keep)]
    return A
