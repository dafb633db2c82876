"""Weight initialisers.

Each takes ``(shape, fan_in, fan_out, rng)`` and returns a NumPy float64 array;
layers cast it to their dtype and move it to the active backend.  Drawing on
the host keeps a seed's weights identical on CPU and GPU.

===================  ========================================  ==========================
name                 distribution                              keeps stable
===================  ========================================  ==========================
``"he"``             N(0, 2 / fan_in)                          ReLU forward variance
``"he_uniform"``     U(-a, a), a = sqrt(6 / fan_in)            same variance
``"glorot"``         U(-a, a), a = sqrt(6 / (fan_in+fan_out))  tanh/sigmoid, both passes
``"glorot_normal"``  N(0, 2 / (fan_in + fan_out))              same variance
``"lecun"``          N(0, 1 / fan_in)                          linear/SELU forward
``"normal"``         N(0, 0.01^2)                              nothing (the naive choice)
``"zeros"``          0                                         nothing (symmetry!)
===================  ========================================  ==========================
"""
from __future__ import annotations

import numpy as np


def he(shape, fan_in, fan_out, rng):
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)


def he_uniform(shape, fan_in, fan_out, rng):
    a = np.sqrt(6.0 / fan_in)
    return rng.uniform(-a, a, size=shape)


def glorot(shape, fan_in, fan_out, rng):
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape)


def glorot_normal(shape, fan_in, fan_out, rng):
    return rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), size=shape)


def lecun(shape, fan_in, fan_out, rng):
    return rng.normal(0.0, np.sqrt(1.0 / fan_in), size=shape)


def normal(shape, fan_in, fan_out, rng, std=0.01):
    return rng.normal(0.0, std, size=shape)


def zeros(shape, fan_in, fan_out, rng):
    return np.zeros(shape)


INITS = {"he": he, "he_uniform": he_uniform, "glorot": glorot, "glorot_normal": glorot_normal,
         "lecun": lecun, "normal": normal, "zeros": zeros}


def get(init):
    """Return the initialiser called ``init`` (or ``init`` itself if callable)."""
    if callable(init):
        return init
    if not isinstance(init, str) or init not in INITS:
        raise ValueError(f"init: expected one of {tuple(INITS)} or a callable, got {init!r}")
    return INITS[init]
