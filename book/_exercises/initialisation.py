"""Reference answers of the exercises of "Vanishing and exploding gradients;
initialisation" (``init.*``)."""
import numpy as np

from nnbook.exercises.build import Solution


def glorot_std(fan_in, fan_out):
    return np.sqrt(2.0 / (fan_in + fan_out))


def uniform_limit(variance):
    return np.sqrt(3.0 * np.asarray(variance, dtype=float))      # Var U(-a, a) = a^2 / 3


def relu_second_moments(q0, fan_ins, scale):
    out, q = [], q0
    for i, n in enumerate(fan_ins):
        if i > 0:
            q = q / 2.0                 # E[relu(a)^2] = Var(a) / 2 for symmetric a
        q = n * (scale * 2.0 / n) * q
        out.append(q)
    return np.array(out)


def spectral_radius(J):
    return float(np.max(np.abs(np.linalg.eigvals(J))))


def relu_layer_jacobian(W, a):
    return (a > 0).astype(W.dtype)[:, None] * W.T               # diag(relu'(a)) W^T


def clip_by_norm(g, c):
    n = float(np.linalg.norm(g))
    return g * min(1.0, c / n) if n > 0 else g.copy()


def _nonsym_cases(rng):
    return [rng.normal(size=(4, 4)), np.array([[0.0, 2.0], [0.0, 0.0]]),
            np.array([[0.9, 10.0], [0.0, 0.9]]), np.array([[0.0, -1.0], [1.0, 0.0]]),
            rng.normal(size=(7, 7)) / 3, np.array([[-3.0]])]


SOLUTIONS = {
    "init.glorot_std": Solution(
        glorot_std,
        lambda rng: [(784, 256), (256, 256), (1, 1), (10, 1000),
                     (int(rng.integers(1, 500)), int(rng.integers(1, 500)))],
        wrong={"lost the factor 2": lambda fan_in, fan_out: np.sqrt(1.0 / (fan_in + fan_out)),
               "He's rule, 2 / fan_in": lambda fan_in, fan_out: np.sqrt(2.0 / fan_in)}),
    "init.uniform_limit": Solution(
        uniform_limit,
        lambda rng: [2.0 / 1040, np.array([1.0, 0.5, 1e-6]), rng.uniform(0, 2, size=5), 0.0,
                     np.array([[3.0, 12.0], [0.75, 1e4]])],
        wrong={"that is the standard deviation": lambda variance: np.sqrt(variance)}),
    "init.relu_second_moments": Solution(
        relu_second_moments,
        lambda rng: [(1.0, [784, 256, 128], 1.0), (0.3, [10] * 8, 1.5), (2.0, [5], 0.5),
                     (float(rng.uniform(0.1, 3)), [int(n) for n in rng.integers(1, 100, size=6)], 0.9),
                     (1.0, [3, 1, 2], 2.0)],
        wrong={"no halving at the first layer either":
                   lambda q0, fan_ins, scale: q0 * scale ** np.arange(1, len(fan_ins) + 1),
               "halves at the first layer too":
                   lambda q0, fan_ins, scale: q0 * scale ** np.arange(1, len(fan_ins) + 1) / 2.0 ** np.arange(1, len(fan_ins) + 1)}),
    "init.spectral_radius": Solution(
        spectral_radius, _nonsym_cases,
        wrong={"the spectral norm": lambda J: float(np.linalg.norm(J, 2)),
               "the largest real part": lambda J: float(np.max(np.linalg.eigvals(J).real))}),
    "init.relu_layer_jacobian": Solution(
        relu_layer_jacobian,
        lambda rng: [(rng.normal(size=(3, 4)), rng.normal(size=4)),
                     (rng.normal(size=(5, 5)), rng.normal(size=5)),
                     (rng.normal(size=(2, 3)), np.array([1.0, -1.0, 2.0])),
                     (rng.normal(size=(4, 1)), np.array([-0.5])),
                     (rng.normal(size=(2, 3)), np.array([0.0, 0.0, 3.0]))],           # relu'(0) = 0
        wrong={"forgot relu'(a)": lambda W, a: W.T,
               "W, not its transpose": lambda W, a: (a > 0).astype(W.dtype)[None, :] * W}),
    "init.clip_by_norm": Solution(
        clip_by_norm,
        lambda rng: [(rng.normal(size=6) * 10, 1.0), (rng.normal(size=3) * 0.01, 1.0),
                     (np.zeros(4), 2.0), (np.array([3.0, 4.0]), 5.0),
                     (np.array([30.0, -40.0]), 5.0)],
        wrong={"the thesis's formula, literally":
                   lambda g, c: np.minimum(1.0, c * g / np.linalg.norm(g))}),
}
