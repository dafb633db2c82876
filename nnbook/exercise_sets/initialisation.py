"""Exercises of the chapter "Vanishing and exploding gradients; initialisation"."""
import numpy as np

from ..exercises import register


def _glorot_std(fan_in, fan_out):
    return np.sqrt(2.0 / (fan_in + fan_out))


register(
    "init.glorot_std",
    "Return the standard deviation of Glorot's normal initialisation for a layer with "
    "fan_in inputs and fan_out outputs.",
    reference=_glorot_std,
    cases=lambda rng: [(784, 256), (256, 256), (1, 1), (10, 1000),
                       (int(rng.integers(1, 500)), int(rng.integers(1, 500)))],
    wrong=lambda fan_in, fan_out: np.sqrt(1.0 / (fan_in + fan_out)),   # lost the factor 2
)


def _uniform_limit(variance):
    return np.sqrt(3.0 * variance)


register(
    "init.uniform_limit",
    "Return a such that U(-a, a) has the given variance (elementwise for an array).",
    reference=_uniform_limit,
    cases=lambda rng: [2.0 / 1040, np.array([1.0, 0.5, 1e-6]), rng.uniform(0, 2, size=5), 0.0],
    wrong=lambda variance: np.sqrt(variance),                          # that is the std
)


def _he_forward_second_moment(q0, fan_ins, scale):
    """E[a^2] of the pre-activations of each layer of a ReLU network with weights
    N(0, scale * 2 / fan_in), starting from inputs with E[x^2] = q0."""
    out = []
    q = q0
    for i, n in enumerate(fan_ins):
        if i > 0:
            q = q / 2.0                 # E[relu(a)^2] = Var(a) / 2 for symmetric a
        q = n * (scale * 2.0 / n) * q
        out.append(q)
    return np.array(out)


register(
    "init.relu_second_moments",
    "A ReLU MLP has weights N(0, scale*2/fan_in) and zero biases; its input has E[x^2] = q0. "
    "Return the predicted E[a_l^2] of the pre-activations of each Dense layer l (the first "
    "Dense layer sees x itself, the later ones see ReLU outputs).",
    reference=_he_forward_second_moment,
    cases=lambda rng: [(1.0, [784, 256, 128], 1.0), (0.3, [10] * 8, 1.5), (2.0, [5], 0.5),
                       (float(rng.uniform(0.1, 3)), list(rng.integers(1, 100, size=6)), 0.9)],
    wrong=lambda q0, fan_ins, scale: q0 * scale ** np.arange(1, len(fan_ins) + 1),  # no /2 at first
)


def _spectral_radius(J):
    return float(np.max(np.abs(np.linalg.eigvals(J))))


def _nonsym_cases(rng):
    return [rng.normal(size=(4, 4)), np.array([[0.0, 2.0], [0.0, 0.0]]),
            np.array([[0.9, 10.0], [0.0, 0.9]]), np.array([[0.0, -1.0], [1.0, 0.0]]),
            rng.normal(size=(7, 7)) / 3]


register(
    "init.spectral_radius",
    "Return the spectral radius of a square matrix J (the largest |eigenvalue|; the "
    "eigenvalues may be complex).",
    reference=_spectral_radius,
    cases=_nonsym_cases,
    wrong=lambda J: float(np.linalg.norm(J, 2)),                       # spectral *norm*
    rtol=1e-8, atol=1e-10,
)


def _relu_layer_jacobian(W, a):
    return (a > 0).astype(W.dtype)[:, None] * W.T


register(
    "init.relu_layer_jacobian",
    "A layer computes z_next = relu(a) with a = z @ W + b (W of shape (n_in, n_out), one "
    "sample). Given W and the pre-activation a (shape (n_out,)), return the Jacobian "
    "d z_next / d z, of shape (n_out, n_in).",
    reference=_relu_layer_jacobian,
    cases=lambda rng: [(rng.normal(size=(3, 4)), rng.normal(size=4)),
                       (rng.normal(size=(5, 5)), rng.normal(size=5)),
                       (rng.normal(size=(2, 3)), np.array([1.0, -1.0, 2.0])),
                       (rng.normal(size=(4, 1)), np.array([-0.5]))],
    wrong=lambda W, a: W.T,                                            # forgot relu'(a)
)


def _clip_by_norm(g, c):
    n = float(np.linalg.norm(g))
    return g * min(1.0, c / n) if n > 0 else g.copy()


register(
    "init.clip_by_norm",
    "Clip a gradient vector g by its norm: return g * min(1, c / ||g||) (and g itself "
    "when g = 0).",
    reference=_clip_by_norm,
    cases=lambda rng: [(rng.normal(size=6) * 10, 1.0), (rng.normal(size=3) * 0.01, 1.0),
                       (np.zeros(4), 2.0), (np.array([3.0, 4.0]), 5.0),
                       (np.array([30.0, -40.0]), 5.0)],
    wrong=lambda g, c: np.minimum(1.0, c * g / np.linalg.norm(g)),     # thesis's formula, literally
)
