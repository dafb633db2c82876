"""Exercises of the chapter "Machine-learning basics"."""
import numpy as np

from .. import functional as F
from ..exercises import register


def _logit_cases(rng):
    return [rng.normal(size=(4, 5)), rng.normal(size=(1, 3)) * 50,
            np.array([[1000.0, 0.0, -1000.0]]), np.zeros((2, 4)),
            np.array([[-1e4, 1e4]])]


register(
    "basics.softmax",
    "Write softmax(z) for a batch z of shape (N, K), row by row, stable for large |z|.",
    reference=F.softmax,
    cases=_logit_cases,
    wrong=lambda z: np.exp(z) / np.exp(z).sum(),          # normalises over the whole batch
)

register(
    "basics.sigmoid_grad",
    "Write the derivative of the logistic sigmoid, elementwise, for any real x.",
    reference=F.sigmoid_grad,
    cases=lambda rng: [rng.normal(size=7) * 3, np.array([0.0, 40.0, -40.0, 1e-8])],
    wrong=lambda x: F.sigmoid(x) / (1 - F.sigmoid(x)),    # thesis eq. 3.13 erratum
    rtol=1e-6, atol=1e-12,
)
