"""Reference answers of the exercises of "Metaheuristics vs gradient descent" (``meta.*``)."""
import numpy as np

from nnbook.exercises.build import Solution


def de_rand_1(P, r0, r1, r2, F):
    return P[r0] + F * (P[r1] - P[r2])


def binomial_crossover(X, V, CR, rand, jrand):
    take = rand < CR
    take[np.arange(X.shape[0]), jrand] = True
    return np.where(take, V, X)


def current_to_pbest_1(P, pbest, r1, XR2, F):
    F = F[:, None]
    return P + F * (P[pbest] - P) + F * (P[r1] - XR2)


def lehmer_mean(s, w):
    return float(np.sum(w * s * s) / np.sum(w * s))


def bounce_back(V, X, lower, upper, rand):
    lo, hi = np.broadcast_to(lower, V.shape), np.broadcast_to(upper, V.shape)
    out = V.copy()
    below, above = V < lo, V > hi
    out[below] = (lo + rand * (X - lo))[below]
    out[above] = (hi - rand * (hi - X))[above]
    return out


def shade_memory_update(M_CR, M_F, k, S_CR, S_F, delta):
    M_CR, M_F = np.array(M_CR, dtype=float), np.array(M_F, dtype=float)
    if len(S_CR) == 0:
        return M_CR, M_F, k
    w = np.asarray(delta) / np.sum(delta)
    M_CR[k] = np.sum(w * S_CR)
    M_F[k] = np.sum(w * np.square(S_F)) / np.sum(w * S_F)
    return M_CR, M_F, (k + 1) % len(M_CR)


def _pop_cases(rng):
    out = []
    for n, d in ((6, 4), (5, 1), (10, 7)):
        P = rng.normal(size=(n, d))
        idx = np.arange(n)
        r0, r1, r2 = (idx + 1) % n, (idx + 2) % n, (idx + 3) % n
        out.append((P, r0, r1, r2, float(rng.uniform(0.1, 1.0))))
    out.append((np.zeros((4, 2)), np.array([1, 2, 3, 0]), np.array([2, 3, 0, 1]),
                np.array([3, 0, 1, 2]), 0.5))
    P = rng.normal(size=(5, 3))                                     # random indices, F = 1
    out.append((P, rng.permutation(5), rng.permutation(5), rng.permutation(5), 1.0))
    return out


def _xover_cases(rng):
    out = []
    for n, d, cr in ((5, 6, 0.5), (4, 1, 0.0), (6, 3, 1.0), (3, 8, 0.0)):
        X, V = rng.normal(size=(n, d)), rng.normal(size=(n, d))
        out.append((X, V, cr, rng.random((n, d)), rng.integers(d, size=n)))
    X, V = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))        # rand exactly at CR: not taken
    out.append((X, V, 0.5, np.full((4, 5), 0.5), np.array([0, 4, 2, 2])))
    return out


def _mean_cases(rng):
    return [(rng.uniform(0.1, 1, 5), rng.uniform(0.1, 3, 5)),
            (np.array([0.5, 0.9]), np.array([1.0, 3.0])), (np.array([0.7]), np.array([2.0])),
            (np.array([0.2, 0.2, 0.2]), np.array([1.0, 5.0, 0.5])),
            (np.array([0.1, 1.0]), np.array([1.0, 1.0]))]


def _bounce_cases(rng):
    out = []
    for n, d in ((8, 3), (5, 1)):
        X = rng.uniform(-1, 1, size=(n, d))
        V = X + rng.normal(size=(n, d)) * 3
        out.append((V, X, -1.0, 1.0, rng.random((n, d))))
    X = rng.uniform(-2, 3, size=(6, 2))
    out.append((X * 4, X, np.array([-2.0, -2.0]), np.array([3.0, 3.0]), rng.random((6, 2))))
    out.append((np.array([[0.5, -0.5]]), np.array([[0.0, 0.0]]), -1.0, 1.0, np.array([[0.3, 0.7]])))
    out.append((np.array([[1.0, -1.0, 2.0]]), np.array([[0.0, 0.0, 0.5]]), -1.0, 1.0,
                np.array([[0.5, 0.5, 0.5]])))                        # exactly on a bound: stays
    return out


def _memory_cases(rng):
    return [
        (np.full(4, 0.5), np.full(4, 0.5), 1, np.array([0.2, 0.6]), np.array([0.5, 0.9]),
         np.array([1.0, 3.0])),
        (rng.random(3), rng.random(3), 2, rng.random(4), rng.uniform(0.1, 1, 4),
         rng.uniform(0.01, 2, 4)),
        (np.full(2, 0.5), np.full(2, 0.5), 0, np.array([]), np.array([]), np.array([])),
        (rng.random(5), rng.random(5), 4, np.array([0.9]), np.array([0.3]), np.array([0.1])),
        (rng.random(6), rng.random(6), 0, rng.random(3), rng.uniform(0.1, 1, 3),
         np.array([1.0, 1.0, 1.0]))]


def _memory_unweighted(M_CR, M_F, k, S_CR, S_F, delta):
    M_CR, M_F = np.array(M_CR, dtype=float), np.array(M_F, dtype=float)
    if len(S_CR) == 0:
        return M_CR, M_F, k
    M_CR[k] = np.mean(S_CR)                                          # ignores the weights
    M_F[k] = (np.asarray(S_F) ** 2).sum() / np.sum(S_F)
    return M_CR, M_F, (k + 1) % len(M_CR)


def _pbest_cases(rng):
    out = []
    for n, d in ((6, 3), (8, 1), (5, 4), (2, 2)):
        P = rng.normal(size=(n, d))
        A = rng.normal(size=(3, d))                                  # an archive
        PA = np.vstack([P, A])
        r2 = rng.integers(len(PA), size=n)
        out.append((P, rng.integers(n, size=n), (np.arange(n) + 1) % n, PA[r2],
                    rng.uniform(0.1, 1, n)))
    P = rng.normal(size=(4, 3))                                      # pbest = self, XR2 = P[r1]: V = P
    r1 = np.array([1, 2, 3, 0])
    out.append((P, np.arange(4), r1, P[r1], np.full(4, 0.7)))
    P = rng.normal(size=(3, 2))                                      # F = 0: V = P
    out.append((P, np.array([2, 2, 2]), np.array([1, 2, 0]), rng.normal(size=(3, 2)), np.zeros(3)))
    return out


def shade_budget(epochs, fes_per_epoch, popsize, seconds_per_fe, n_timed, n_train):
    max_evals = epochs * fes_per_epoch
    generations = (max_evals - popsize) // popsize
    return max_evals, generations, max_evals * seconds_per_fe * n_train / n_timed


def _budget_cases(rng):
    out = [(5, 6, 10, 20.0, 256, 256),               # the recorded ResNet-15 run
           (5, 200, 10, 20.0, 256, 10_000),          # the thesis's budget on 10,000 digits
           (20, 6, 10, 0.5, 10_000, 10_000),         # LeNet-5's 120 FEs
           (1, 10, 10, 3.0, 100, 50),                # only the initial population; fewer digits
           (3, 7, 10, 1.5, 64, 640)]                 # 21 FEs: the last, partial generation
    for _ in range(3):
        popsize = int(rng.integers(5, 50))
        epochs = int(rng.integers(1, 30))
        per_epoch = int(rng.integers(-(-popsize // epochs), 300))   # budget >= popsize
        out.append((epochs, per_epoch, popsize, float(rng.uniform(0.01, 30)),
                    int(rng.integers(32, 2000)), int(rng.integers(100, 60_000))))
    return out


def _budget_initial_as_generation(epochs, fes_per_epoch, popsize, seconds_per_fe, n_timed, n_train):
    m, _, s = shade_budget(epochs, fes_per_epoch, popsize, seconds_per_fe, n_timed, n_train)
    return m, m // popsize, s


def _budget_partial_generation(epochs, fes_per_epoch, popsize, seconds_per_fe, n_timed, n_train):
    m, _, s = shade_budget(epochs, fes_per_epoch, popsize, seconds_per_fe, n_timed, n_train)
    return m, -(-(m - popsize) // popsize), s


def _budget_time_upside_down(epochs, fes_per_epoch, popsize, seconds_per_fe, n_timed, n_train):
    m, g, _ = shade_budget(epochs, fes_per_epoch, popsize, seconds_per_fe, n_timed, n_train)
    return m, g, m * seconds_per_fe * n_timed / n_train


SOLUTIONS = {
    "meta.de_rand_1": Solution(
        de_rand_1, _pop_cases,
        wrong={"base = the target, not r0": lambda P, r0, r1, r2, F: P + F * (P[r1] - P[r2])}),
    "meta.binomial_crossover": Solution(
        binomial_crossover, _xover_cases,
        wrong={"forgets j_rand": lambda X, V, CR, rand, jrand: np.where(rand < CR, V, X),
               "rand <= CR": lambda X, V, CR, rand, jrand: binomial_crossover(X, V, np.nextafter(CR, 2), rand, jrand)}),
    "meta.lehmer_mean": Solution(
        lehmer_mean, _mean_cases,
        wrong={"the weighted arithmetic mean": lambda s, w: float(np.sum(w * s) / np.sum(w))}),
    "meta.bounce_back": Solution(
        bounce_back, _bounce_cases,
        wrong={"clipping piles on the bound": lambda V, X, lo, hi, rand: np.clip(V, lo, hi)}),
    "meta.shade_memory_update": Solution(
        shade_memory_update, _memory_cases,
        wrong={"ignores the weights": _memory_unweighted}),
    "meta.current_to_pbest_1": Solution(
        current_to_pbest_1, _pbest_cases,
        wrong={"F missing on the second difference":
                   lambda P, pb, r1, xr2, F: P + F[:, None] * (P[pb] - P) + (P[r1] - xr2),
               "F not turned into a column (F[:, None])": lambda P, pb, r1, xr2, F:
                   P + F * (P[pb] - P) + F * (P[r1] - xr2)}),
    "meta.shade_budget": Solution(
        shade_budget, _budget_cases,
        wrong={"the initial population counted as a generation": _budget_initial_as_generation,
               "the last, partial generation counted": _budget_partial_generation,
               "the time scaled by n_timed / n_train, upside down": _budget_time_upside_down}),
}
