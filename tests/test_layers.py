"""Layers, losses and models: gradient checks, a PyTorch reference, bad input, purity."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnbook as nb
from helpers import assert_close, rand

ACTS = [nb.ReLU, nb.Sigmoid, nb.Tanh, nb.Identity, nb.Softmax]
INITS = ["he", "he_uniform", "glorot", "glorot_normal", "lecun", "normal"]

dims = st.integers(1, 6)


@given(n=dims, d=dims, m=dims, seed=st.integers(0, 10_000), init=st.sampled_from(INITS))
def test_dense_gradcheck(n, d, m, seed, init):
    nb.seed(seed)
    layer = nb.Dense(d, m, init=init, dtype="float64")
    layer.params["b"] = np.random.default_rng(seed).standard_normal(m)
    res = nb.check_layer(layer, rand(np.random.default_rng(seed + 1), n, d))
    assert res.ok, res


@given(n=dims, d=dims, seed=st.integers(0, 10_000), act=st.sampled_from(ACTS))
def test_activation_gradcheck(n, d, seed, act):
    x = rand(np.random.default_rng(seed), n, d) * 3
    res = nb.check_layer(act(), x)
    assert res.ok, res


@given(n=dims, k=st.integers(2, 6), seed=st.integers(0, 10_000))
def test_loss_gradchecks(n, k, seed):
    rng = np.random.default_rng(seed)
    z = rand(rng, n, k) * 2
    labels = rng.integers(0, k, n)
    assert nb.check_loss(nb.SoftmaxCrossEntropy(), z, labels).ok
    assert nb.check_loss(nb.SoftmaxCrossEntropy(), z, nb.data.one_hot(labels, k, np.float64)).ok
    soft = rng.dirichlet(np.ones(k), size=n)
    assert nb.check_loss(nb.SoftmaxCrossEntropy(), z, soft).ok
    assert nb.check_loss(nb.BinaryCrossEntropy(), z, rng.integers(0, 2, (n, k)).astype(float)).ok
    assert nb.check_loss(nb.MSE(), z, rand(rng, n, k)).ok


@given(sizes=st.lists(st.integers(1, 5), min_size=2, max_size=5), seed=st.integers(0, 999),
       act=st.sampled_from(["relu", "sigmoid", "tanh"]))
def test_model_gradcheck(sizes, seed, act):
    nb.seed(seed)
    sizes = sizes[:-1] + [max(sizes[-1], 2)]
    model = nb.mlp(sizes, activation=act, dtype="float64")
    rng = np.random.default_rng(seed)
    for layer in model:  # non-zero biases keep ReLU pre-activations off the kink at 0
        if "b" in layer.params:
            layer.params["b"] = rand(rng, *layer.params["b"].shape)
    x = rand(rng, 4, sizes[0])
    y = rng.integers(0, sizes[-1], 4)
    res = nb.check_model(model, nb.SoftmaxCrossEntropy(), x, y)
    assert res.ok, res


def test_softmax_ce_gradient_is_O_minus_y_over_N():
    rng = np.random.default_rng(0)
    z, y = rand(rng, 5, 4), rng.integers(0, 4, 5)
    loss = nb.SoftmaxCrossEntropy()
    loss.forward(z, y)
    expected = (nb.functional.softmax(z) - nb.data.one_hot(y, 4, np.float64)) / 5
    assert_close(loss.backward(), expected, 1e-14)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n,k", [(1, 2), (7, 10), (128, 10), (33, 32)])
def test_softmax_ce_class_major_path_matches_the_row_major_one(monkeypatch, dtype, n, k):
    """NumPy with few classes works on z^T; the row-major code is the reference."""
    F = nb.functional
    rng = np.random.default_rng(k)
    z = np.asfortranarray(rng.normal(0, 4, (n, k)).astype(dtype))  # z.T is C-contiguous
    y = rng.integers(0, k, n).astype(np.uint8)                     # y * n must not wrap
    z0 = z.copy()
    loss, cache = F.softmax_xent_labels_forward(z, y)
    g = F.softmax_xent_labels_backward(cache, 0.3)
    assert np.array_equal(z, z0)                                   # the input is untouched
    assert cache[-1]                                               # the class-major path ran
    assert g.flags.c_contiguous and g.dtype == z.dtype and g.shape == z.shape
    monkeypatch.setattr(F, "_FEW_CLASSES", 0)
    loss_ref, cache_ref = F.softmax_xent_labels_forward(z, y.astype(np.int64))
    g_ref = F.softmax_xent_labels_backward(cache_ref, 0.3)
    assert not cache_ref[-1]
    tol = 1e-6 if dtype == "float32" else 1e-14
    assert abs(float(loss) - float(loss_ref)) <= tol * abs(float(loss_ref))
    assert_close(g, g_ref, tol)
    # a NumPy float64 factor (e.g. a learning rate taken from an array) keeps z's dtype
    assert F.softmax_xent_labels_backward(cache, np.float64(0.3)).dtype == z.dtype


@pytest.mark.parametrize("big", [1e4, -1e4])
def test_losses_finite_for_extreme_logits(big):
    z = np.array([[big, 0.0, -big], [0.0, big, 1.0]])
    y = np.array([0, 2])
    for loss, target in [(nb.SoftmaxCrossEntropy(), y),
                         (nb.BinaryCrossEntropy(), np.array([[1.0, 0, 1], [0, 1, 0]]))]:
        L = loss.forward(z, target)
        g = loss.backward()
        assert np.isfinite(L) and np.isfinite(g).all(), (type(loss).__name__, L, g)
    # a confident wrong answer costs the logit gap, not inf; a confident right one ~0
    L = nb.SoftmaxCrossEntropy().forward(np.array([[big, -big]]), np.array([1]))
    assert abs(L - (2 * big if big > 0 else 0.0)) < 1e-6


def test_layers_follow_dtype_and_default_float32():
    assert nb.Dense(3, 2).params["W"].dtype == np.float32
    assert nb.Dense(3, 2, dtype="float64").params["W"].dtype == np.float64
    nb.set_default_dtype("float64")
    assert nb.Dense(3, 2).params["W"].dtype == np.float64
    nb.set_default_dtype("float32")
    for act in ACTS:
        for dt in (np.float32, np.float64):
            assert act().forward(np.ones((2, 3), dt)).dtype == dt
    with pytest.raises(TypeError, match="float64 does not match"):
        nb.Dense(3, 2).forward(np.ones((2, 3)))


def test_inputs_never_modified():
    rng = np.random.default_rng(0)
    nb.seed(0)
    model = nb.mlp([6, 5, 4, 3])
    x = rand(rng, 8, 6, dtype=np.float32)
    y = rng.integers(0, 3, 8)
    x0, y0 = x.copy(), y.copy()
    loss = nb.SoftmaxCrossEntropy()
    loss.forward(model.forward(x), y)
    g = loss.backward()
    g0 = g.copy()
    model.backward(g)
    nb.fit(model, loss, nb.SGD(model.parameters(), lr=0.1), x, y, epochs=2, batch_size=4,
           progress=False)
    nb.evaluate(model, loss, x, y)
    assert np.array_equal(x, x0) and np.array_equal(y, y0) and np.array_equal(g, g0)
    for act in ACTS:
        a = rand(rng, 3, 4)
        a0 = a.copy()
        layer = act()
        out = layer.forward(a)
        d = np.ones_like(out)
        layer.backward(d)
        assert np.array_equal(a, a0) and np.all(d == 1), act


def test_grads_accumulate_until_zero_grad():
    nb.seed(0)
    layer = nb.Dense(3, 2, dtype="float64")
    x = np.ones((4, 3))
    layer.forward(x)
    layer.backward(np.ones((4, 2)))
    g1 = layer.grads["W"].copy()
    layer.forward(x)
    layer.backward(np.ones((4, 2)))
    assert_close(layer.grads["W"], 2 * g1, 1e-15)
    layer.zero_grad()
    assert not layer.grads["W"].any()


def test_same_seed_same_history_bit_for_bit():
    X, y = nb.data.spirals(200, seed=1)

    def run():
        nb.seed(123)
        model = nb.mlp([2, 16, 16, 3])
        opt = nb.SGD(model.parameters(), lr=0.3, momentum=0.9)
        h = nb.fit(model, nb.SoftmaxCrossEntropy(), opt, X, y, epochs=4, batch_size=32,
                   progress=False)
        return h, model.state_dict()

    (h1, s1), (h2, s2) = run(), run()
    assert h1 == h2
    assert all(np.array_equal(s1[k], s2[k]) for k in s1)


def _train_with_public_api(model, opt, X, y, epochs, batch_size, seed=5):
    """What nb.fit does, spelled out with forward/backward/step (batch order as nb.fit's
    after nb.seed(seed))."""
    loss = nb.SoftmaxCrossEntropy()
    nb.seed(seed)
    for _ in range(epochs):
        for idx in nb.train.iterate_minibatches(len(X), batch_size):
            loss.forward(model.forward(X[idx]), y[idx])
            model.backward(loss.backward())
            opt.step()
            opt.zero_grad()


def test_fit_matches_a_hand_written_loop():
    """The fast path of fit (buffers, prescaled SGD) computes what the public API computes."""
    X, y = nb.data.moons(96, seed=3)
    X = X.astype(np.float64)
    for opt_kw in ({}, {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}):
        nb.seed(1)
        a = nb.mlp([2, 8, 8, 2], dtype="float64")
        nb.seed(5)
        nb.fit(a, nb.SoftmaxCrossEntropy(), nb.SGD(a.parameters(), lr=0.1, **opt_kw), X, y,
               epochs=3, batch_size=16, progress=False)
        nb.seed(1)
        b = nb.mlp([2, 8, 8, 2], dtype="float64")
        _train_with_public_api(b, nb.SGD(b.parameters(), lr=0.1, **opt_kw), X, y, 3, 16)
        for p, q in zip(a.parameters(), b.parameters()):
            assert_close(p.value, q.value, 1e-12)


def test_save_load_roundtrip(tmp_path):
    nb.seed(0)
    model = nb.Sequential(nb.Dense(4, 5), nb.Tanh(), nb.Dense(5, 3), nb.Sigmoid())
    path = tmp_path / "m.npz"
    model.save(path)
    other = nb.load_model(path)
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    assert np.array_equal(model.forward(x), other.forward(x))
    fresh = nb.Sequential(nb.Dense(4, 5), nb.Tanh(), nb.Dense(5, 3), nb.Sigmoid())
    fresh.load(path)
    assert np.array_equal(model.forward(x), fresh.forward(x))
    with pytest.raises(ValueError, match="keys do not match"):
        nb.mlp([4, 3]).load(path)


def test_bce_and_mse_api():
    z = np.array([[2.0], [-1.0]])
    L = nb.BinaryCrossEntropy().forward(z, np.array([[1], [0]]))
    expected = np.mean([np.log1p(np.exp(-2.0)), np.log1p(np.exp(-1.0))])
    assert abs(L - expected) < 1e-12
    assert abs(nb.MSE().forward(np.array([1.0, 3.0]), np.array([0.0, 0.0])) - 5.0) < 1e-12


def test_fit_history_and_validation():
    X, y = nb.data.blobs(300, seed=0)
    nb.seed(0)
    model = nb.mlp([2, 16, 3])
    h = nb.fit(model, nb.SoftmaxCrossEntropy(), nb.SGD(model.parameters(), lr=0.2), X, y,
               epochs=5, batch_size=32, val=(X[:50], y[:50]), progress=False)
    assert set(h) == {"loss", "acc", "val_loss", "val_acc"} and len(h["loss"]) == 5
    assert h["loss"][-1] < h["loss"][0] and h["acc"][-1] > 0.9
    h2 = nb.fit(model, nb.MSE(), nb.Adam(model.parameters()), X, np.zeros((300, 3)), epochs=1,
                progress=False)
    assert h2["acc"] == [None]


def test_fit_on_a_deep_copy_leaves_the_original_model_alone():
    import copy
    X, y = nb.data.spirals(64, seed=3)
    X = X.astype(np.float32)
    nb.seed(2)
    a = nb.mlp([2, 8, 3])
    opt = nb.SGD(a.parameters(), lr=0.2)
    nb.fit(a, nb.SoftmaxCrossEntropy(), opt, X, y, epochs=1, batch_size=16, progress=False)
    before = [p.value.copy() for p in a.parameters()]
    b = copy.deepcopy(a)
    nb.fit(b, nb.SoftmaxCrossEntropy(), nb.SGD(b.parameters(), lr=0.2), X, y, epochs=2,
           batch_size=16, progress=False)
    assert all(np.array_equal(p.value, q) for p, q in zip(a.parameters(), before))
    assert not all(np.array_equal(p.value, q) for p, q in zip(b.parameters(), before))

