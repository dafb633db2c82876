"""Small comparison helpers shared by the tests (tinygrad's test_ops style)."""
import numpy as np

from nnbook import rel_error, to_numpy


def assert_close(got, want, rtol, name="value"):
    got, want = to_numpy(got), to_numpy(want)
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
    err = rel_error(got, want)
    assert err < rtol, f"{name}: relative error {err:.3e} >= {rtol:g}"


def rand(rng, *shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)
