"""Tests of nnbook.metaheuristics: flattening, batched population evaluation,
DE/SHADE operators and memory update, and the algorithms on test functions."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnbook as nb
from nnbook import metaheuristics as mh


def shifted(f, offset):
    """f(x - offset): moves the optimum away from the centre of the box
    (SHADE-ILS starts at the centre, which would make a centred optimum trivial)."""
    return lambda P: f(np.atleast_2d(P) - offset)


# ---------------------------------------------------------------------------------------
# flatten / unflatten and batched evaluation
# ---------------------------------------------------------------------------------------
def test_flat_round_trip_and_count():
    m = nb.mlp([5, 7, 3])
    assert mh.param_count(m) == 5 * 7 + 7 + 7 * 3 + 3 == m.num_parameters()
    v = mh.get_flat(m)
    assert v.dtype == np.float64 and v.shape == (mh.param_count(m),)
    np.testing.assert_array_equal(v[:35], nb.to_numpy(m[0].params["W"]).ravel())
    w = np.random.default_rng(0).normal(size=v.shape)
    w_copy = w.copy()
    mh.set_flat(m, w)
    np.testing.assert_array_equal(w, w_copy)                       # input untouched
    np.testing.assert_allclose(mh.get_flat(m), w.astype(np.float32), rtol=0, atol=0)
    assert m[2].params["b"].dtype == np.float32                     # dtype kept
    np.testing.assert_allclose(nb.to_numpy(m[2].params["W"]), w[42:42 + 21].reshape(7, 3)
                               .astype(np.float32))


def test_set_flat_errors():
    m = nb.mlp([2, 3, 1])
    with pytest.raises(ValueError, match="length 13"):
        mh.set_flat(m, np.zeros(12))
    with pytest.raises(TypeError, match="floating"):
        mh.set_flat(m, np.zeros(13, dtype=np.int64))
    with pytest.raises(ValueError, match="finite"):
        mh.set_flat(m, np.full(13, np.nan))
    with pytest.raises(TypeError, match="model"):
        mh.get_flat("not a model")


def _one_by_one(model, loss, P, X, y):
    saved = mh.get_flat(model)
    out = []
    for row in P:
        mh.set_flat(model, row)
        out.append(loss.forward(model.forward(X), y))
    mh.set_flat(model, saved)
    return np.array(out)


@given(sizes=st.lists(st.integers(1, 6), min_size=2, max_size=4), pop=st.integers(1, 7),
       n=st.integers(1, 9), act=st.sampled_from(["relu", "tanh", "sigmoid"]),
       kind=st.sampled_from(["labels", "onehot", "mse", "bce"]))
def test_batched_equals_member_by_member(sizes, pop, n, act, kind):
    nb.set_default_dtype("float64")
    try:
        rng = np.random.default_rng(len(sizes) * 100 + pop * 10 + n)
        k = sizes[-1]
        if kind in ("labels", "onehot") and k < 2:
            sizes = sizes[:-1] + [2]
            k = 2
        m = nb.mlp(sizes, activation=act)
        X = rng.normal(size=(n, sizes[0]))
        if kind == "labels":
            loss, y = nb.SoftmaxCrossEntropy(), rng.integers(k, size=n)
        elif kind == "onehot":
            loss, y = nb.SoftmaxCrossEntropy(), np.eye(k)[rng.integers(k, size=n)]
        elif kind == "mse":
            loss, y = nb.MSE(), rng.normal(size=(n, k))
        else:
            loss, y = nb.BinaryCrossEntropy(), rng.integers(0, 2, size=(n, k)).astype(float)
        P = rng.normal(size=(pop, mh.param_count(m)))
        got = mh.population_loss(m, loss, P, X, y)
        want = _one_by_one(m, loss, P, X, y)
        assert got.shape == (pop,)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
        # outputs too, and with a tiny chunk size (several batched passes)
        Z = mh.population_forward(m, P, X, max_elems=1)
        for r in range(pop):
            mh.set_flat(m, P[r])
            np.testing.assert_allclose(Z[r], m.forward(X), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(mh.population_loss(m, loss, P, X, y, max_elems=1), want,
                                   rtol=1e-12, atol=1e-14)
    finally:
        nb.set_default_dtype("float32")


def test_batched_float32_and_fallback_path():
    rng = np.random.default_rng(1)
    m = nb.mlp([4, 16, 3])
    X = rng.normal(size=(50, 4)).astype(np.float32)
    y = rng.integers(3, size=50)
    P = rng.normal(size=(6, mh.param_count(m))) * 0.3
    want = _one_by_one(m, nb.SoftmaxCrossEntropy(), P, X, y)
    got = mh.population_loss(m, nb.SoftmaxCrossEntropy(), P, X, y)
    np.testing.assert_allclose(got, want, rtol=2e-6)

    class Scale(nb.Layer):               # a layer the batched path does not know
        def __init__(self):
            super().__init__()
            self.params["s"] = np.ones(3, dtype=np.float32)
            self.zero_grad()

        def forward(self, x):
            self.x = x
            return x * self.params["s"]

        def backward(self, dout):
            self.grads["s"] += (dout * self.x).sum(axis=0)
            return dout * self.params["s"]

    m2 = nb.Sequential(m[0], m[1], m[2], Scale())
    P2 = np.hstack([P, rng.normal(size=(6, 3))])
    before = mh.get_flat(m2)
    np.testing.assert_allclose(mh.population_loss(m2, nb.SoftmaxCrossEntropy(), P2, X, y),
                               _one_by_one(m2, nb.SoftmaxCrossEntropy(), P2, X, y), rtol=1e-6)
    np.testing.assert_array_equal(mh.get_flat(m2), before)          # weights restored


def test_population_errors():
    m = nb.mlp([2, 3, 2])
    X = np.zeros((4, 2), np.float32)
    y = np.zeros(4, np.int64)
    with pytest.raises(ValueError, match=r"\(popsize, 17\)"):
        mh.population_loss(m, nb.SoftmaxCrossEntropy(), np.zeros((3, 16)), X, y)
    with pytest.raises(TypeError, match="loss"):
        mh.population_loss(m, "mse", np.zeros((3, 17)), X, y)


def test_netproblem_gradient_matches_finite_differences():
    nb.set_default_dtype("float64")
    try:
        rng = np.random.default_rng(2)
        m = nb.mlp([3, 4, 2], activation="tanh")
        prob = mh.NetProblem(m, nb.SoftmaxCrossEntropy(), rng.normal(size=(10, 3)),
                             rng.integers(2, size=10))
        v = rng.normal(size=prob.dim)
        f, g = prob.value_and_grad(v)
        assert f == pytest.approx(float(prob(v[None])[0]), rel=1e-12)
        num = np.zeros_like(v)
        for i in range(v.size):
            e = np.zeros_like(v)
            e[i] = 1e-6
            num[i] = (prob(v + e)[0] - prob(v - e)[0]) / 2e-6
        assert nb.rel_error(g, num) < 1e-7
        P = prob.init_population(5, rng)
        np.testing.assert_array_equal(P[0], prob.x0)
        assert np.all(P[1:, -2:] == 0)                                # output biases zero
    finally:
        nb.set_default_dtype("float32")


# ---------------------------------------------------------------------------------------
# operators and SHADE's adaptation
# ---------------------------------------------------------------------------------------
def test_lehmer_mean_and_memory_update_by_hand():
    # two successes: (CR, F) = (0.2, 0.5) improved f by 1, (0.6, 0.9) by 3 -> w = (1/4, 3/4)
    # M_CR = 0.25*0.2 + 0.75*0.6 = 0.5
    # M_F  = (0.25*0.5^2 + 0.75*0.9^2) / (0.25*0.5 + 0.75*0.9) = 0.67 / 0.8 = 0.8375
    M_CR, M_F = np.full(3, 0.5), np.full(3, 0.5)
    a, b, k = mh.shade_memory_update(M_CR, M_F, 1, [0.2, 0.6], [0.5, 0.9], [1.0, 3.0])
    assert k == 2
    np.testing.assert_allclose(a, [0.5, 0.5, 0.5])
    np.testing.assert_allclose(b, [0.5, 0.8375, 0.5], rtol=1e-15)
    assert M_F[1] == 0.5                                             # input untouched
    assert mh.lehmer_mean([0.5, 0.9], [1, 3]) == pytest.approx(0.8375, rel=1e-15)
    assert mh.lehmer_mean([0.5, 0.9], [1, 1]) > mh.weighted_mean([0.5, 0.9], [1, 1])
    _, _, k = mh.shade_memory_update(a, b, 2, [0.3], [0.4], [2.0])
    assert k == 0                                                     # wraps around H
    a2, b2, k2 = mh.shade_memory_update(a, b, 2, [], [], [])
    assert k2 == 2 and np.array_equal(a2, a) and np.array_equal(b2, b)   # no success


def test_sample_cr_f_ranges_and_centres():
    rng = np.random.default_rng(0)
    CR, F, r = mh.sample_cr_f(np.full(5, 0.5), np.full(5, 0.5), rng, 20000)
    assert CR.min() >= 0 and CR.max() <= 1 and F.min() > 0 and F.max() <= 1
    assert abs(CR.mean() - 0.5) < 0.01
    # redrawing F <= 0 conditions Cauchy(0.5, 0.1) on F > 0, which moves its median up:
    # P(F <= 0) = 1/2 - atan(5)/pi; the median solves cdf(m) = P0 + (1 - P0)/2
    p0 = 0.5 - math.atan(5) / math.pi
    m = 0.5 + 0.1 * math.tan(math.pi * (p0 + (1 - p0) / 2 - 0.5))
    assert abs(np.median(F) - m) < 0.005 and m > 0.505
    assert set(np.unique(r)) == set(range(5))


def test_de_operators():
    rng = np.random.default_rng(0)
    P = rng.normal(size=(6, 4))
    V = mh.de_rand_1(P, np.array([1, 2, 3, 4, 5, 0]), np.array([2, 3, 4, 5, 0, 1]),
                     np.array([3, 4, 5, 0, 1, 2]), 0.5)
    np.testing.assert_allclose(V[0], P[1] + 0.5 * (P[2] - P[3]))
    U = mh.binomial_crossover(P, V, 0.0, rng.random((6, 4)), np.array([0, 1, 2, 3, 0, 1]))
    assert ((U != P).sum(axis=1) <= 1).all() and U[2, 2] == V[2, 2]   # CR=0: only j_rand
    X = rng.uniform(-1, 1, size=(50, 3))
    W = X + rng.normal(size=X.shape) * 5
    for R in (mh.bounce_back(W, X, -1.0, 1.0, rng.random(W.shape)),
              mh.midpoint_repair(W, X, -1.0, 1.0)):
        assert R.min() >= -1 and R.max() <= 1
        inside = np.abs(W) <= 1
        np.testing.assert_array_equal(R[inside], W[inside])
    M = mh.midpoint_repair(np.array([[-3.0, 5.0]]), np.array([[0.5, 0.2]]), -1.0, 1.0)
    np.testing.assert_allclose(M, [[-0.25, 0.6]])


# ---------------------------------------------------------------------------------------
# algorithms on test functions
# ---------------------------------------------------------------------------------------
OFF = np.array([1.3, -0.7, 2.1, 0.4, -1.9, 0.8, -2.6, 1.1, 0.2, -0.3])


@pytest.mark.parametrize("strategy", ["rand/1/bin", "current-to-pbest/1/bin"])
def test_de_sphere_10d(strategy):
    f = shifted(mh.sphere, OFF * 10)
    r = mh.de(f, 10, bounds=(-100, 100), popsize=30, max_evals=25000, strategy=strategy, seed=1)
    assert r.fun < 1e-8 and r.nfev <= 25000
    assert np.all(np.diff(r.history) <= 0)


def test_shade_sphere_rastrigin_rosenbrock():
    r = mh.shade(shifted(mh.sphere, OFF * 10), 10, bounds=(-100, 100), popsize=30,
                 max_evals=15000, seed=0)
    assert r.fun < 1e-8
    # Rastrigin in 5-D: the global basin (every coordinate rounds to the optimum's)
    off5 = np.array([0.6, -1.4, 2.3, -0.2, 1.7])
    r = mh.shade(shifted(mh.rastrigin, off5), 5, bounds=(-5.12, 5.12), popsize=30,
                 max_evals=15000, seed=0)
    assert r.fun < 1e-6 and np.all(np.abs(r.x - off5) < 0.5)
    # Rosenbrock in 5-D: from ~1e5 down by many orders of magnitude
    r = mh.shade(mh.rosenbrock, 5, bounds=(-5, 10), popsize=30, max_evals=15000, seed=0)
    assert r.history[0] > 100 and r.fun < 1e-4


def test_shade_ils_uses_local_search_and_restarts():
    off = OFF[:10] * 2
    prob = mh.FunctionProblem(shifted(mh.rosenbrock, off), 10,
                              grad=lambda x: mh.rosenbrock_grad(x - off), bounds=(-5, 10))
    r = mh.shade_ils(prob, bounds=(-5, 10), popsize=20, max_evals=6000, evals_de=500,
                     evals_ls=200, seed=0)
    assert r.fun < 1e-8 and r.nfev <= 6000
    # (with seed=3, L-BFGS-B lands in 10-D Rosenbrock's local minimum f = 3.9866 and stays)
    assert r.info["ls_usage"]["L-BFGS-B"] >= 1
    # without a gradient L-BFGS-B falls back to counted finite differences
    r2 = mh.shade_ils(shifted(mh.sphere, OFF), 10, bounds=(-5, 5), popsize=10, max_evals=3000,
                      evals_de=300, evals_ls=300, seed=0)
    assert r2.fun < 1e-8 and r2.nfev <= 3000
    # a flat function never improves: restarts must fire
    r3 = mh.shade_ils(lambda P: np.ones(len(P)), 3, bounds=(-1, 1), popsize=10, max_evals=2000,
                      evals_de=50, evals_ls=10, seed=0)
    assert r3.info["restarts"] >= 1 and r3.nfev <= 2000


def test_hybrids_on_a_function_and_a_network():
    off = OFF[:5]
    prob = mh.FunctionProblem(shifted(mh.sphere, off), 5, grad=lambda x: 2 * (x - off),
                              bounds=(-5, 5))
    r = mh.shade_gd(prob, bounds=(-5, 5), max_evals=1000, popsize=10, evals_de=100,
                    optimizer="adam", lr=0.1, epochs_per_ls=20, seed=0)
    assert r.fun < 1e-3 and r.info["ls_usage"]["GD(adam)"] >= 1
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)                       # XOR-like quadrants
    nb.seed(0)
    net = mh.NetProblem(nb.mlp([2, 8, 2], init="glorot"), nb.SoftmaxCrossEntropy(), X, y)
    f0 = float(net(net.x0)[0])
    r = mh.shade_ils_gd(net, max_evals=600, popsize=10, evals_de=100, evals_ls=30, seed=0)
    assert r.fun < 0.6 * f0 and r.nfev <= 600
    assert set(r.info["ls_usage"]) == {"L-BFGS-B", "GD(adam)"}


def test_seeding_budget_and_validation():
    f = shifted(mh.sphere, OFF[:4])
    a = mh.shade(f, 4, bounds=(-5, 5), popsize=8, max_evals=500, seed=7)
    b = mh.shade(f, 4, bounds=(-5, 5), popsize=8, max_evals=500, seed=7)
    c = mh.shade(f, 4, bounds=(-5, 5), popsize=8, max_evals=500, seed=8)
    assert a.fun == b.fun and np.array_equal(a.x, b.x) and a.fun != c.fun
    for alg in (mh.de, mh.shade):
        r = alg(f, 4, bounds=(-5, 5), popsize=8, max_evals=101, seed=0)
        assert r.nfev == 101 and len(r.history) == len(r.history_nfev)
    stopped = mh.shade(f, 4, bounds=(-5, 5), popsize=8, max_evals=5000, seed=0,
                       callback=lambda n, x, fx: n >= 80)
    assert stopped.nfev < 100
    with pytest.raises(ValueError, match="popsize"):
        mh.shade(f, 4, bounds=(-5, 5), popsize=3, max_evals=100)
    with pytest.raises(ValueError, match="max_evals"):
        mh.de(f, 4, bounds=(-5, 5), popsize=10, max_evals=5)
    with pytest.raises(ValueError, match="bounds"):
        mh.de(f, 4, bounds=(1, -1), max_evals=100)
    with pytest.raises(ValueError, match="bounds"):
        mh.shade(f, 4, max_evals=100)                                # no bounds, no init_pop
    with pytest.raises(ValueError, match="strategy"):
        mh.de(f, 4, bounds=(-5, 5), max_evals=100, strategy="best/2/exp")
    with pytest.raises(ValueError, match="CR"):
        mh.de(f, 4, bounds=(-5, 5), max_evals=100, CR=1.5)
    with pytest.raises(TypeError, match="seed"):
        mh.de(f, 4, bounds=(-5, 5), max_evals=100, seed=1.5)
    with pytest.raises(ValueError, match="dim"):
        mh.de(f, bounds=(-5, 5), max_evals=100)
    with pytest.raises(ValueError, match=r"\(popsize, 4\)"):
        mh.shade(f, 4, init_pop=np.zeros((8, 3)), max_evals=100)


def test_nan_objective_is_treated_as_worst():
    def f(P):
        v = mh.sphere(P)
        v[P[:, 0] > 2] = np.nan
        return v
    r = mh.shade(f, 3, bounds=(-5, 5), popsize=10, max_evals=2000, seed=0)
    assert math.isfinite(r.fun) and r.fun < 1e-6


# ---------------------------------------------------------------------------------------
# experiment helpers
# ---------------------------------------------------------------------------------------
def test_thesis_param_counts_and_metrics():
    for L, want in mh.THESIS_PARAM_COUNTS.items():
        assert mh.fastai_tabular_param_count(30, mh.MLP_HIDDEN[L], 2) == want
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    yt, yp = rng.integers(3, size=40), rng.integers(3, size=40)
    assert mh.balanced_accuracy(yt, yp) == pytest.approx(sk.balanced_accuracy_score(yt, yp))
    assert mh.accuracy(yt, yp) == pytest.approx(sk.accuracy_score(yt, yp))
    a, b = rng.normal(size=30), rng.normal(size=30)
    assert mh.r2_score(a, b) == pytest.approx(sk.r2_score(a, b))
    assert mh.mse(a, b) == pytest.approx(sk.mean_squared_error(a, b))


def test_load_dataset_tabular():
    pytest.importorskip("sklearn")
    d = mh.load_dataset("breast_cancer", seed=42)
    assert d["task"] == "classification" and d["n_out"] == 2
    assert abs(d["X_train"].mean(0)).max() < 1e-5 and abs(d["X_train"].std(0) - 1).max() < 1e-4
    assert len(d["X_train"]) + len(d["X_val"]) + len(d["X_test"]) <= 569
    r = mh.load_dataset("diabetes", seed=42)
    assert r["y_train"].shape[1] == 1 and abs(float(r["y_train"].mean())) < 1e-5


# ---------------------------------------------------------------------------------------
# convolutional networks: LeNet-5 with BatchNorm, member by member
# ---------------------------------------------------------------------------------------
def _bn_layers(model):
    return [l for l in model.layers if isinstance(l, (nb.BatchNorm1d, nb.BatchNorm2d))]


def _lenet5_bn_case(seed, n):
    """A float64 LeNet-5 with BatchNorm, n random images with labels, a loss and the rng
    that drew them (conftest restores the float32 default after the test)."""
    nb.set_default_dtype("float64")
    nb.seed(seed)
    m = nb.LeNet5(batch_norm=True)
    rng = np.random.default_rng(seed + 1)
    return m, rng, rng.random((n, 1, 28, 28)), rng.integers(10, size=n), nb.SoftmaxCrossEntropy()


def test_lenet5_flat_round_trip_with_batchnorm():
    nb.seed(0)
    a = nb.LeNet5(batch_norm=True)
    nb.seed(1)
    b = nb.LeNet5(batch_norm=True)
    D = mh.param_count(a)
    assert D == a.num_parameters() == 61932
    v = mh.get_flat(a)
    assert v.shape == (D,) and not np.array_equal(v, mh.get_flat(b))
    # layout: conv1's 6x1x5x5 filters (no bias before BatchNorm), then BatchNorm2d(6)'s
    # gamma and beta, then conv2's filters
    np.testing.assert_array_equal(v[:150], nb.to_numpy(a[0].params["W"]).ravel())
    np.testing.assert_array_equal(v[150:156], np.ones(6))
    np.testing.assert_array_equal(v[156:162], np.zeros(6))
    np.testing.assert_array_equal(v[162:162 + 2400], nb.to_numpy(a[4].params["W"]).ravel())
    w = np.random.default_rng(0).normal(size=D)
    mh.set_flat(b, w)
    np.testing.assert_array_equal(mh.get_flat(b), w.astype(np.float32))
    for la, lb in zip(a.layers, b.layers):
        assert set(la.params) == set(lb.params)
        for k in la.params:
            assert lb.params[k].shape == la.params[k].shape
            assert lb.params[k].dtype == np.float32
    mh.set_flat(b, v)
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(nb.to_numpy(pa.value), nb.to_numpy(pb.value))
    # the running statistics are buffers, not parameters: not in the vector
    assert all(set(l.buffers) == {"running_mean", "running_var"} for l in _bn_layers(a))


@pytest.mark.parametrize("training", [True, False])
def test_population_on_lenet5_equals_direct_forward(training):
    m, rng, X, y, loss = _lenet5_bn_case(3, 11)
    for l in _bn_layers(m):        # running statistics that differ from the batch's
        l.buffers["running_mean"] = rng.normal(size=l.num_features) * 0.1
        l.buffers["running_var"] = rng.uniform(0.5, 2.0, size=l.num_features)
    stats = [{k: v.copy() for k, v in l.buffers.items()} for l in _bn_layers(m)]
    m.train(training)
    P = np.vstack([mh.get_flat(m)[None], rng.normal(size=(2, mh.param_count(m))) * 0.1])
    before = mh.get_flat(m)
    got = mh.population_loss(m, loss, P, X, y, chunk_size=4)     # 3 chunks of the data
    Z = mh.population_forward(m, P, X, chunk_size=4)
    np.testing.assert_array_equal(mh.get_flat(m), before)        # weights restored
    for l, s in zip(_bn_layers(m), stats):                       # statistics untouched
        for k in s:
            np.testing.assert_array_equal(l.buffers[k], s[k])
    for r in range(len(P)):
        mh.set_flat(m, P[r])
        m.train(training)
        out = m.forward(X)                  # training mode: the statistics of all 11
        assert got[r] == pytest.approx(loss.forward(out, y), rel=1e-12)
        np.testing.assert_allclose(Z[r], out, rtol=1e-10, atol=1e-12)
        for l, s in zip(_bn_layers(m), stats):
            l.buffers.update({k: v.copy() for k, v in s.items()})
    assert m.training == training
    # a member with NaN weights is the worst, not an error
    bad = P[1].copy()
    bad[5] = np.nan
    assert mh.population_loss(m, loss, np.vstack([P[0], bad]), X, y)[1] == np.inf


def test_lenet5_gradient_and_calibration():
    m, rng, X, y, loss = _lenet5_bn_case(5, 9)
    prob = mh.NetProblem(m, loss, X, y, chunk_size=4)
    v = prob.init_population(3, rng)[2]
    f, g = prob.value_and_grad(v)
    assert f == pytest.approx(float(prob(v[None])[0]), rel=1e-12)
    # the whole-batch forward and backward of the model itself
    mh.set_flat(m, v)
    m.train()
    m.zero_grad()
    assert loss._forward(m.forward(prob.X), prob.y) == pytest.approx(f, rel=1e-12)
    m.backward(loss._backward())
    want = np.concatenate([nb.to_numpy(p.grad).ravel() for p in m.parameters()])
    assert nb.rel_error(g, want) < 1e-10
    for i in rng.choice(g.size, 4, replace=False):                # and finite differences
        e = np.zeros_like(v)
        e[i] = 1e-6
        num = (prob(v + e)[0] - prob(v - e)[0]) / 2e-6
        assert num == pytest.approx(g[i], rel=1e-4, abs=1e-8)
    # calibrated running statistics: evaluation mode = the training-mode objective
    mh.set_flat(m, v)
    mh.calibrate_batchnorm(m, X, chunk_size=2)
    assert m.training
    m.eval()
    assert loss.forward(m.forward(X), y) == pytest.approx(f, rel=1e-12)
    m.train()
    # new members: Glorot-drawn filters, BatchNorm scales 1 and shifts 0
    P = prob.init_population(4, np.random.default_rng(0))
    np.testing.assert_array_equal(P[0], prob.x0)
    assert np.all(P[1:, 150:156] == 1) and np.all(P[1:, 156:162] == 0)
    assert 0.1 < P[1:, :150].std() < 0.5                # Glorot: sqrt(2/(25+150)) = 0.107


def _tiny_cnn():
    return nb.Sequential(nb.Conv2D(1, 4, 3, padding=1), nb.BatchNorm2d(4), nb.ReLU(),
                         nb.MaxPool2D(2), nb.Flatten(), nb.Dense(4 * 4 * 4, 2))


def test_shade_improves_a_tiny_cnn():
    rng = np.random.default_rng(0)
    X = rng.random((80, 1, 8, 8)).astype(np.float32) * 0.5
    y = rng.integers(2, size=80)
    X[y == 1, 0, :, :4] += 0.5                   # class 1: a bright left half
    nb.seed(0)
    prob = mh.NetProblem(_tiny_cnn(), nb.SoftmaxCrossEntropy(), X, y, chunk_size=32)
    init = prob.init_population(10, np.random.default_rng(1))
    f0 = prob(init).min()
    r = mh.shade(prob, max_evals=400, popsize=10, init_pop=init, seed=0)
    assert r.nfev == 400 and r.fun < 0.8 * f0 and r.fun < 0.55
    assert np.all(np.diff(r.history) <= 0)
    assert r.fun == pytest.approx(float(prob(r.x)[0]), rel=1e-6)


def test_experiment_helpers_run_lenet5():
    rng = np.random.default_rng(0)
    data = {"task": "classification", "n_out": 10, "features": None}
    for split, n in (("train", 48), ("val", 20), ("test", 20)):
        data[f"X_{split}"] = rng.random((n, 1, 28, 28)).astype(np.float32)
        data[f"y_{split}"] = rng.integers(10, size=n)
    m = mh.build_lenet5(7)
    assert m.num_parameters() == 61932 and m[0].init == "glorot"
    W = nb.to_numpy(m[0].params["W"])
    assert np.abs(W).max() <= np.sqrt(6 / (25 + 150)) + 1e-6      # Glorot-uniform bound
    g = mh.run_gradient(data, mh.LENET5, "adam", seed=7, epochs=2, lr=1e-3)
    assert g["method"] == "Adam" and len(g["val_loss"]) == 2 and g["params"] == 61932
    assert 0 <= g["test"]["accuracy"] <= 1
    r = mh.run_metaheuristic(data, mh.LENET5, "SHADE+GD", 40, seed=7, popsize=5, checkpoints=3)
    assert r["evals"] <= 40 and len(r["val_loss"]) == 3 and np.isfinite(r["best_val_loss"])
    assert r["info"]["ls_usage"]["GD(adam)"] >= 1
    with pytest.raises(ValueError, match="images"):
        mh.run_gradient({**data, "X_train": data["X_train"].reshape(48, -1)}, mh.LENET5, "adam")


def test_load_mnist_images_matches_flat():
    flat = mh.load_dataset("mnist", seed=3, mnist_train=200, mnist_test=100)
    img = mh.load_dataset("mnist", seed=3, mnist_train=200, mnist_test=100, images=True)
    assert img["X_train"].shape == (200, 1, 28, 28) and img["X_test"].shape == (50, 1, 28, 28)
    np.testing.assert_array_equal(img["X_train"].reshape(200, -1), flat["X_train"])
    np.testing.assert_array_equal(img["y_val"], flat["y_val"])


class _Captured(Exception):
    pass


@pytest.mark.parametrize("hidden", [[16], [16, 8]])
def test_run_metaheuristic_population_is_distinct_and_shared(monkeypatch, hidden):
    """The starting population of run_metaheuristic: row 0 is the network gradient
    descent starts from, the other rows are distinct from it and from each other
    (they once came from a generator seeded like the one that built row 0, so for
    an MLP row 1 repeated row 0), and every method gets the same population."""
    rng = np.random.default_rng(0)
    data = {"task": "classification", "n_out": 2, "features": None}
    for split, n in (("train", 40), ("val", 10), ("test", 10)):
        data[f"X_{split}"] = rng.normal(size=(n, 6)).astype(np.float32)
        data[f"y_{split}"] = rng.integers(2, size=n)
    seen = {}

    def capture(name):
        def fake(f, *args, init_pop=None, seed=None, **kw):
            seen[(name, seed)] = np.array(init_pop)
            raise _Captured
        return fake

    fns = {"SHADE": "shade", "SHADE-ILS": "shade_ils", "SHADE+GD": "shade_gd",
           "SHADE-ILS+GD": "shade_ils_gd"}
    for fn in fns.values():       # where run_metaheuristic looks the algorithms up
        monkeypatch.setattr(mh.experiment, fn, capture(fn))
    popsize = 10
    for seed in (42, 1):
        for method in mh.MH_METHODS:
            with pytest.raises(_Captured):
                mh.run_metaheuristic(data, hidden, method, 100, seed=seed, popsize=popsize)
        pops = [seen[(fns[m], seed)] for m in mh.MH_METHODS]
        P = pops[0]
        assert P.shape == (popsize, mh.param_count(mh.build_net(data, hidden, seed)))
        for Q in pops[1:]:                                     # the same for every method
            np.testing.assert_array_equal(Q, P)
        np.testing.assert_array_equal(P[0], mh.get_flat(mh.build_net(data, hidden, seed)))
        dist = np.sqrt(((P[:, None, :] - P[None, :, :]) ** 2).sum(-1))
        dist[np.diag_indices(popsize)] = np.inf
        assert dist.min() > 1e-3, np.unravel_index(dist.argmin(), dist.shape)
    assert not np.array_equal(seen[("shade", 42)][1:], seen[("shade", 1)][1:])


def test_best_epoch_buffers_include_batchnorms_inside_residual_blocks():
    """run_gradient keeps the running statistics of its best epoch: every batch norm's,
    those inside residual blocks included (a ResNet's blocks hold most of them)."""
    from nnbook.metaheuristics.experiment import _buffers, _set_buffers
    model = nb.models.ResNet((1,), channels=(16,), stem_channels=8, input_size=14)
    saved = _buffers(model)
    assert len(saved) == 6                  # stem, three in the block, shortcut, head
    for l in nb.models.all_layers(model):
        for v in getattr(l, "buffers", {}).values():
            v += 1.0
    _set_buffers(model, saved)
    bns = [l for l in nb.models.all_layers(model) if getattr(l, "buffers", None)]
    assert all(np.array_equal(l.buffers[k], s[k]) for l, s in zip(bns, saved) for k in s)
