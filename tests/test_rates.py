"""Gradient descent's convergence rates (nnbook.optim) and frozen graphs (autodiff.replay).

The rates are checked on functions whose constants are known exactly: a quadratic
(mu and L are the extreme eigenvalues) and a separable non-convex function
f(x) = sum_i x_i^2 / 2 + a cos(b x_i), whose Hessian eigenvalues are 1 - a b^2 cos(b x_i),
all in [1 - a b^2, 1 + a b^2], so L = 1 + a b^2.
"""
import math

import numpy as np
import pytest

import nnbook.autodiff as ad
from nnbook.optim import gd_trace, linear_rate_bound, nonconvex_rate_bound


def _quadratic(rng, n=6, mu=0.1, L=3.0):
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    ev = np.r_[mu, L, rng.uniform(mu, L, size=n - 2)]
    A = Q @ np.diag(ev) @ Q.T
    return A, (lambda x: 0.5 * x @ A @ x), (lambda x: A @ x)


def test_gd_trace_is_plain_gradient_descent():
    A, f, g = _quadratic(np.random.default_rng(0))
    x0 = np.ones(6)
    x, fs, gsq = gd_trace(f, g, x0, 0.2, 7)
    ref = np.linalg.matrix_power(np.eye(6) - 0.2 * A, 7) @ x0
    assert np.allclose(x, ref, rtol=1e-13) and np.array_equal(x0, np.ones(6))
    assert fs.shape == (8,) and gsq.shape == (7,)
    assert math.isclose(fs[0], f(x0)) and math.isclose(gsq[0], g(x0) @ g(x0))
    x, fs, gsq = gd_trace(f, g, x0, 0.2, 0)
    assert np.array_equal(x, x0) and fs.shape == (1,) and gsq.shape == (0,)


def test_linear_rate_holds_and_is_attained_in_the_distance_form():
    rng = np.random.default_rng(1)
    mu, L = 0.1, 3.0
    A, f, g = _quadratic(rng, mu=mu, L=L)
    x, fs, _ = gd_trace(f, g, rng.normal(size=6), 1 / L, 300)
    bound = linear_rate_bound(fs[0], mu, L, np.arange(301))
    assert np.all(fs <= bound * (1 + 1e-12))
    # along the eigenvector of mu alone the gap contracts by (1 - mu/L)^2 per step
    w, V = np.linalg.eigh(A)
    x, fs, _ = gd_trace(f, g, V[:, 0], 1 / L, 50)
    assert np.allclose(fs, fs[0] * (1 - mu / L) ** (2 * np.arange(51)), rtol=1e-10)
    assert linear_rate_bound(2.0, 1.0, 1.0, 3) == 0.0          # mu = L: one step
    assert np.isclose(linear_rate_bound(1.0, 1.0, 4.0, 2), 0.5625)


def test_nonconvex_rate_on_a_function_with_known_L():
    a, b = 0.5, 3.0                            # a b^2 = 4.5 > 1: not convex
    L = 1 + a * b * b
    f = lambda x: float(np.sum(0.5 * x * x + a * np.cos(b * x)))
    g = lambda x: x - a * b * np.sin(b * x)
    # f_inf exactly: the 1-D minimum, times the dimension
    t = np.linspace(-3, 3, 600_001)
    f_inf = 5 * float(np.min(0.5 * t * t + a * np.cos(b * t)))
    rng = np.random.default_rng(2)
    for _ in range(5):
        x0 = rng.normal(size=5) * 2
        _, fs, gsq = gd_trace(f, g, x0, 1 / L, 200)
        K = np.arange(1, 201)
        bound = nonconvex_rate_bound(fs[0], f_inf, L, K)
        assert np.all(np.minimum.accumulate(gsq) <= bound)
        assert np.all(np.cumsum(gsq) / K <= bound * (1 + 1e-12))   # even the average
        assert np.all(np.diff(fs) <= 1e-12)                         # descent lemma
    assert nonconvex_rate_bound(3.0, 1.0, 2.0, 4) == 2.0


@pytest.mark.parametrize("call, match", [
    (lambda: linear_rate_bound(1.0, 2.0, 1.0, 3), "mu: expected mu <= L"),
    (lambda: linear_rate_bound(1.0, 0.0, 1.0, 3), "mu: expected a finite number > 0"),
    (lambda: linear_rate_bound(-1.0, 0.5, 1.0, 3), "gap0"),
    (lambda: nonconvex_rate_bound(0.0, 1.0, 1.0, 3), "f_inf"),
    (lambda: nonconvex_rate_bound(1.0, 0.0, 1.0, 0), "K: expected step counts >= 1"),
    (lambda: nonconvex_rate_bound(1.0, 0.0, -1.0, 3), "L: expected a finite number > 0"),
    (lambda: gd_trace(lambda x: 0.0, lambda x: x, np.ones(2), 0.1, -1), "steps"),
    (lambda: gd_trace(lambda x: 0.0, lambda x: x, np.ones(2), 0.0, 1), "lr"),
])
def test_rate_bounds_reject_bad_arguments(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def _newton_sqrt(a):
    y = a
    while abs(float((y * y - a).value)) > 1e-12 * float(a.value):   # data-dependent loop
        y = 0.5 * (y + a / y)
    return y


def test_replay_freezes_the_recorded_graph():
    out = ad.trace(_newton_sqrt, 30.0)
    leaf = next(n["tensor"] for n in ad.graph(out) if n["label"] == "x1")
    run = ad.replay(out, [leaf])
    assert float(run(30.0).value) == float(out.value)
    assert abs(float(run(36.0).value) - 6.0) < 1e-12            # same number of steps suffices
    assert abs(float(run(1e6).value) - 1e3) > 1e3              # the loop count was frozen
    for a in (25.0, 36.0):                                      # gradients through the frozen graph
        assert abs(float(ad.grad(run)(a)) - 0.5 / math.sqrt(a)) < 1e-12
        assert abs(float(ad.jvp(run, a, 1.0)[1]) - 0.5 / math.sqrt(a)) < 1e-12
    # a graph with a constant array and a matrix product
    W = np.random.default_rng(3).normal(size=(3, 4))
    out = ad.trace(lambda x: ad.tanh(W @ x).sum(), np.ones(4))
    x_leaf = next(n["tensor"] for n in ad.graph(out) if n["label"] == "x1")
    x = np.random.default_rng(4).normal(size=4)
    assert np.isclose(float(ad.replay(out, x_leaf)(x).value), np.tanh(W @ x).sum(), rtol=1e-14)


def test_replay_rejects_bad_inputs():
    out = ad.trace(lambda x: x * 2.0, 1.0)
    with pytest.raises(TypeError, match="out: expected a Tensor"):
        ad.replay(1.0, [])
    with pytest.raises(ValueError, match="not in out's graph"):
        ad.replay(out, [ad.Tensor(1.0)])
    with pytest.raises(TypeError, match=r"inputs\[0\]: expected a leaf Tensor"):
        ad.replay(out, [out])
    leaf = out.parents[0]
    with pytest.raises(TypeError, match="expected 1 input values, got 2"):
        ad.replay(out, [leaf])(1.0, 2.0)
