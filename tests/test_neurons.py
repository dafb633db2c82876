"""nnbook.neurons: the thesis's per-neuron formulas against the matrix form
(nnbook layers and losses) and against centred finite differences, float64,
relative error < 1e-7, on random sizes drawn by hypothesis."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import nnbook as nb
from nnbook import functional as F
from nnbook import neurons as ne

TOL = 1e-7
ATOL = 1e-11   # the absolute accuracy of the finite differences below


def numgrad(f, x, h=1e-3):
    """Fourth-order centred differences, (-f(x+2h) + 8f(x+h) - 8f(x-h) + f(x-2h)) / 12h.

    Truncation O(h^4) ~ 1e-13 and round-off ~ eps |f| / h ~ 1e-13 at h = 1e-3:
    about 100x more accurate than the 2-point rule with h = 1e-6, which is what
    lets a relative error below 1e-7 hold even for gradients of size 1e-4.
    (ReLU kinks are kept at least 1e-2 away from every pre-activation.)
    """
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    flat, gf = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        vals = []
        for step in (2, 1, -1, -2):
            flat[i] = old + step * h
            vals.append(float(f(x)))
        flat[i] = old
        gf[i] = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * h)
    return g
ACT_LAYERS = {"relu": nb.ReLU, "sigmoid": nb.Sigmoid}


def _act(name, a):
    return np.maximum(a, 0) if name == "relu" else 1 / (1 + np.exp(-a))


def _one_hot(y, K):
    Y = np.zeros((len(y), K))
    Y[np.arange(len(y)), y] = 1
    return Y


def ref_loss(X, Y, Ws, bs, acts):
    """Mean softmax cross-entropy, vectorised NumPy (independent of nnbook)."""
    z = X
    for W, b, act in zip(Ws[:-1], bs[:-1], acts):
        z = _act(act, z @ W + b)
    Z = z @ Ws[-1] + bs[-1]
    logp = Z - Z.max(axis=1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
    return -(Y * logp).sum() / X.shape[0]


def preacts(X, Ws, bs, acts):
    out, z = [], X
    for W, b, act in zip(Ws[:-1], bs[:-1], acts):
        a = z @ W + b
        out.append(a)
        z = _act(act, a)
    return out


def matrix_form(X, y, Ws, bs, acts):
    """nnbook's layers: returns (loss, dx, [dW...], [db...])."""
    nb.set_default_dtype("float64")
    layers = []
    for i, (W, b) in enumerate(zip(Ws, bs)):
        d = nb.Dense(*W.shape)
        d.params["W"] = W.copy()
        d.params["b"] = b.copy()
        layers.append(d)
        if i < len(acts):
            layers.append(ACT_LAYERS[acts[i]]())
    model = nb.Sequential(*layers)
    loss = nb.SoftmaxCrossEntropy()
    E = loss.forward(model.forward(X), y)
    dx = model.backward(loss.backward())
    dense = [l for l in model.layers if isinstance(l, nb.Dense)]
    return E, dx, [d.grads["W"] for d in dense], [d.grads["b"] for d in dense]


def fd_params(X, Y, Ws, bs, acts):
    """Finite-difference gradients of ref_loss w.r.t. x, every W and every b."""
    def f_with(kind, i):
        def f(p):
            W2 = [p if (kind == "W" and j == i) else W for j, W in enumerate(Ws)]
            b2 = [p if (kind == "b" and j == i) else b for j, b in enumerate(bs)]
            return ref_loss(X, Y, W2, b2, acts)
        return f
    dWs = [numgrad(f_with("W", i), W) for i, W in enumerate(Ws)]
    dbs = [numgrad(f_with("b", i), b) for i, b in enumerate(bs)]
    dx = numgrad(lambda xx: ref_loss(xx, Y, Ws, bs, acts), X)
    return dx, dWs, dbs


def random_net(rng, sizes, scale=1.0):
    Ws = [rng.normal(size=(m, n)) * scale / np.sqrt(m) for m, n in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(size=n) * 0.5 for n in sizes[1:]]
    return Ws, bs


def assert_close(a, b, what, atol=ATOL):
    """Relative error < 1e-7, or (for gradients so small -- a saturated softmax,
    a dead ReLU -- that they sit at the finite differences' own accuracy) every
    entry within 1e-11: a relative error of two round-off-sized numbers means nothing."""
    err = nb.rel_error(a, b)
    diff = float(np.max(np.abs(np.asarray(a, float) - np.asarray(b, float)), initial=0.0))
    assert err < TOL or diff < atol, f"{what}: relative error {err:.2e} >= {TOL}"


def away_from_kinks(X, Ws, bs, acts, margin=1e-2):
    """ReLU is not differentiable at 0: keep finite differences off the kink."""
    return all(np.abs(a).min() > margin for a, act in zip(preacts(X, Ws, bs, acts), acts)
               if act == "relu")


# --- §3.1.1: softmax, quotient rule, O - y ---------------------------------------------

@given(K=st.integers(1, 7), seed=st.integers(0, 10_000), scale=st.sampled_from([0.1, 1, 10]))
def test_softmax_and_quotient_rule_jacobian(K, seed, scale):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=K) * scale
    O = ne.softmax(Z)
    assert_close(O, F.softmax(Z[None])[0], "softmax")
    J = ne.softmax_jacobian_quotient_rule(Z)
    assert_close(J, F.softmax_jacobian(O), "Jacobian vs diag(O) - O O^T")
    # column k of J is d O / d Z_k: finite differences of softmax
    for i in range(K):
        num = numgrad(lambda z: ne.softmax(z)[i], Z)
        assert_close(J[i], num, f"row {i} of the Jacobian vs finite differences")


@given(K=st.integers(2, 7), seed=st.integers(0, 10_000))
def test_quotient_rule_gradient_general_and_one_hot(K, seed):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=K) * 2
    O = ne.softmax(Z)
    y = rng.random(K) * 2            # not a distribution: sum(y) != 1
    g = ne.softmax_xent_gradient_quotient_rule(Z, y)
    assert_close(g, y.sum() * O - y, "quotient rule vs sum(y) O - y")
    num = numgrad(lambda z: ne.cross_entropy(ne.softmax(z), y), Z)
    assert_close(g, num, "quotient rule vs finite differences")
    label = int(rng.integers(K))
    onehot = np.eye(K)[label]
    g1 = ne.softmax_xent_gradient_quotient_rule(Z, onehot)
    assert_close(g1, O - onehot, "one-hot: O - y")
    assert_close(ne.softmax_xent_gradient(O, onehot), O - onehot, "eq. 3.26")
    assert_close(ne.softmax_xent_gradient(O, label), O - onehot, "eq. 3.26 with an int label")
    # nnbook's fused loss, N = 1 (mean over one sample = the sample)
    loss = nb.SoftmaxCrossEntropy()
    loss.forward(Z[None], np.array([label]))
    assert_close(loss.backward()[0], g1, "matrix form")


def test_quotient_rule_survives_underflow():
    Z = np.array([0.0, -1000.0, 5.0])
    g = ne.softmax_xent_gradient_quotient_rule(Z, np.array([1.0, 0.0, 0.0]))
    assert np.isfinite(g).all()
    assert_close(g, ne.softmax(Z) - np.array([1.0, 0.0, 0.0]), "O - y with an underflowing O_i")


# --- §3.1.2: one hidden layer ----------------------------------------------------------

@given(I=st.integers(1, 3), P=st.integers(1, 5), K=st.integers(2, 5), N=st.integers(1, 4),
       seed=st.integers(0, 10_000), hidden=st.sampled_from(["relu", "sigmoid"]),
       onehot=st.booleans())
def test_one_hidden_vs_matrix_and_fd(I, P, K, N, seed, hidden, onehot):
    rng = np.random.default_rng(seed)
    Ws, bs = random_net(rng, [I, P, K], scale=1.5)
    X = rng.normal(size=(N, I))
    y = rng.integers(0, K, N)
    assume(away_from_kinks(X, Ws, bs, [hidden]))
    yy = _one_hot(y, K) if onehot else y
    r = ne.backprop_one_hidden(X, yy, Ws[0], bs[0], Ws[1], bs[1], hidden=hidden)
    E, dx, dW, db = matrix_form(X, y, Ws, bs, [hidden])
    assert abs(r["E"] - E) < 1e-12 * max(1, abs(E))
    for got, want, name in [(r["gradient_input"], dx, "input"), (r["dW0"], dW[0], "W0"),
                            (r["db1"], db[0], "b1"), (r["dW1"], dW[1], "W1"),
                            (r["db2"], db[1], "b2")]:
        assert_close(got, want, f"{name} vs nnbook matrix form")
    ndx, ndW, ndb = fd_params(X, _one_hot(y, K), Ws, bs, [hidden])
    for got, want, name in [(r["gradient_input"], ndx, "input"), (r["dW0"], ndW[0], "W0"),
                            (r["db1"], ndb[0], "b1"), (r["dW1"], ndW[1], "W1"),
                            (r["db2"], ndb[1], "b2")]:
        assert_close(got, want, f"{name} vs finite differences")
    # the intermediate per-sample quantities, against the matrix form's
    A1 = X @ Ws[0] + bs[0]
    O = F.softmax(_act(hidden, A1) @ Ws[1] + bs[1])
    G_Z = O - _one_hot(y, K)
    fprime = (A1 > 0) if hidden == "relu" else F.sigmoid_grad(A1)
    G_h1 = (G_Z @ Ws[1].T) * fprime
    for n, s in enumerate(r["per_sample"]):
        assert_close(s["gradient_Z"], G_Z[n], "gradient_Z (3.26)")
        assert_close(s["gradient_h1"], G_h1[n], "gradient_h1 (3.38)")


def test_single_sample_batch_of_one_and_sum_reduction():
    rng = np.random.default_rng(3)
    Ws, bs = random_net(rng, [2, 3, 4])
    X = rng.normal(size=(5, 2))
    y = rng.integers(0, 4, 5)
    one = ne.backprop_one_hidden(X[0], int(y[0]), Ws[0], bs[0], Ws[1], bs[1])
    batch1 = ne.backprop_one_hidden(X[:1], y[:1], Ws[0], bs[0], Ws[1], bs[1])
    for k in ("dW0", "db1", "dW1", "db2"):
        assert_close(one[k], batch1[k], k)
    assert_close(one["gradient_input"], batch1["gradient_input"][0], "input")
    mean = ne.backprop_one_hidden(X, y, Ws[0], bs[0], Ws[1], bs[1])
    total = ne.backprop_one_hidden(X, y, Ws[0], bs[0], Ws[1], bs[1], reduction="sum")
    for k in ("dW0", "db1", "dW1", "db2", "gradient_input"):
        assert_close(total[k], 5 * mean[k], f"sum = N * mean for {k}")
    parts = sum(ne.backprop_one_hidden(X[n], int(y[n]), Ws[0], bs[0], Ws[1], bs[1])["dW0"]
                for n in range(5))
    assert_close(parts / 5, mean["dW0"], "batch mean of per-sample gradients")


# --- §3.1.3: two hidden layers ---------------------------------------------------------

@given(I=st.integers(1, 3), J=st.integers(1, 4), P=st.integers(1, 4), K=st.integers(2, 4),
       N=st.integers(1, 3), seed=st.integers(0, 10_000),
       acts=st.sampled_from([("relu", "sigmoid"), ("relu", "relu"), ("sigmoid", "sigmoid")]))
def test_two_hidden_vs_matrix_and_fd(I, J, P, K, N, seed, acts):
    rng = np.random.default_rng(seed)
    Ws, bs = random_net(rng, [I, J, P, K], scale=1.5)
    X = rng.normal(size=(N, I))
    y = rng.integers(0, K, N)
    acts = list(acts)
    assume(away_from_kinks(X, Ws, bs, acts))
    r = ne.backprop_two_hidden(X, y, Ws[0], bs[0], Ws[1], bs[1], Ws[2], bs[2],
                               h1=acts[0], h2=acts[1])
    E, dx, dW, db = matrix_form(X, y, Ws, bs, acts)
    ndx, ndW, ndb = fd_params(X, _one_hot(y, K), Ws, bs, acts)
    assert abs(r["E"] - E) < 1e-12 * max(1, abs(E))
    got = [r["gradient_input"], r["dW0"], r["db1"], r["dW1"], r["db2"], r["dW2"], r["db3"]]
    mat = [dx, dW[0], db[0], dW[1], db[1], dW[2], db[2]]
    fd = [ndx, ndW[0], ndb[0], ndW[1], ndb[1], ndW[2], ndb[2]]
    for name, g, m, f in zip(["input", "W0", "b1", "W1", "b2", "W2", "b3"], got, mat, fd):
        assert_close(g, m, f"{name} vs nnbook matrix form")
        assert_close(g, f, f"{name} vs finite differences")


# --- drafts 1-2: sigmoid output + binary cross-entropy ---------------------------------

@given(I=st.integers(1, 3), P=st.integers(1, 5), N=st.integers(1, 4),
       seed=st.integers(0, 10_000))
def test_sigmoid_bce_vs_matrix_and_fd(I, P, N, seed):
    rng = np.random.default_rng(seed)
    Ws, bs = random_net(rng, [I, P, 1], scale=1.5)
    X = rng.normal(size=(N, I))
    y = rng.integers(0, 2, N).astype(np.float64)
    assume(away_from_kinks(X, Ws, bs, ["relu"]))
    r = ne.backprop_sigmoid_bce(X, y, Ws[0], bs[0], Ws[1], bs[1])
    nb.set_default_dtype("float64")
    d0, d1 = nb.Dense(I, P), nb.Dense(P, 1)
    d0.params.update(W=Ws[0].copy(), b=bs[0].copy())
    d1.params.update(W=Ws[1].copy(), b=bs[1].copy())
    model = nb.Sequential(d0, nb.ReLU(), d1)
    loss = nb.BinaryCrossEntropy()
    E = loss.forward(model.forward(X), y[:, None])
    dx = model.backward(loss.backward())
    assert abs(r["E"] - E) < 1e-12 * max(1, abs(E))

    def ref(XX, W0, b1, W1, b2):
        a = (np.maximum(XX @ W0 + b1, 0) @ W1 + b2)[:, 0]
        zh = 1 / (1 + np.exp(-a))
        return -(y * np.log(zh) + (1 - y) * np.log(1 - zh)).mean()

    params = [X, Ws[0], bs[0], Ws[1], bs[1]]
    names = ["gradient_input", "dW0", "db1", "dW1", "db2"]
    mats = [dx, d0.grads["W"], d0.grads["b"], d1.grads["W"], d1.grads["b"]]
    for i, (name, mat) in enumerate(zip(names, mats)):
        def f(p, i=i):
            args = list(params)
            args[i] = p
            return ref(*args)
        assert_close(r[name], mat, f"{name} vs nnbook matrix form")
        assert_close(r[name], numgrad(f, params[i]), f"{name} vs finite differences")


@given(a=st.floats(-30, 30), y=st.sampled_from([0.0, 1.0, 0.25]))
def test_bce_chain_equals_z_hat_minus_y(a, y):
    chain = ne.sigmoid_bce_output_gradient_chain(a, y)
    simple = ne.sigmoid_bce_output_gradient(a, y)
    assert abs(chain - simple) <= 1e-9 * max(1.0, abs(simple)) + 1e-12
    # H(a) = max(a, 0) - a y + log(1 + e^-|a|), the stable form of -[y log z + (1-y) log(1-z)]
    num = numgrad(lambda v: max(v[0], 0) - v[0] * y + np.log1p(np.exp(-abs(v[0]))),
                  np.array([a]))[0]
    assert abs(num - simple) <= 1e-9


def test_bce_chain_refuses_saturated_sigmoid():
    with pytest.raises(ValueError, match="rounds to"):
        ne.sigmoid_bce_output_gradient_chain(40.0, 0.0)
    assert ne.sigmoid_bce_output_gradient(40.0, 0.0) == pytest.approx(1.0)


# --- §3.1.4: any depth, four groups, layer-l rule ---------------------------------------

@given(depth=st.integers(0, 4), seed=st.integers(0, 10_000), N=st.integers(1, 3),
       act=st.sampled_from(["relu", "sigmoid", "mixed"]))
def test_layers_any_depth_vs_matrix_and_fd(depth, seed, N, act):
    rng = np.random.default_rng(seed)
    sizes = [int(rng.integers(1, 4))] + [int(rng.integers(1, 5)) for _ in range(depth)] + \
        [int(rng.integers(2, 5))]
    acts = (["relu", "sigmoid"] * depth)[:depth] if act == "mixed" else [act] * depth
    Ws, bs = random_net(rng, sizes, scale=1.5)
    X = rng.normal(size=(N, sizes[0]))
    y = rng.integers(0, sizes[-1], N)
    assume(away_from_kinks(X, Ws, bs, acts))
    r = ne.backprop_layers(X, y, Ws, bs, acts)
    E, dx, dW, db = matrix_form(X, y, Ws, bs, acts)
    ndx, ndW, ndb = fd_params(X, _one_hot(y, sizes[-1]), Ws, bs, acts)
    assert abs(r["E"] - E) < 1e-12 * max(1, abs(E))
    assert_close(r["gradient_input"], dx, "input vs matrix")
    assert_close(r["gradient_input"], ndx, "input vs finite differences")
    for i in range(depth + 1):
        assert_close(r["dW"][i], dW[i], f"W^{i} vs matrix")
        assert_close(r["db"][i], db[i], f"b^{i + 1} vs matrix")
        assert_close(r["dW"][i], ndW[i], f"W^{i} vs finite differences")
        assert_close(r["db"][i], ndb[i], f"b^{i + 1} vs finite differences")


@given(J=st.integers(1, 5), Q=st.integers(1, 5), M=st.integers(1, 4), seed=st.integers(0, 999))
def test_layer_l_rule_matches_matrix_expressions(J, Q, M, seed):
    rng = np.random.default_rng(seed)
    g_next, W, a, z_prev = (rng.normal(size=Q), rng.normal(size=(J, Q)), rng.normal(size=J),
                            rng.normal(size=M))
    r = ne.backprop_layer_l(g_next, W, a, z_prev, "relu")
    g = (W @ g_next) * (a > 0)
    assert_close(r["gradient_h"], g, "eq. 3.88")
    assert_close(r["dW"], np.outer(z_prev, g), "eq. 3.91")
    assert_close(r["db"], g, "eq. 3.94")


def test_two_hidden_equals_generic_layers():
    rng = np.random.default_rng(7)
    Ws, bs = random_net(rng, [2, 3, 4, 3])
    X, y = rng.normal(size=(4, 2)), rng.integers(0, 3, 4)
    a = ne.backprop_two_hidden(X, y, Ws[0], bs[0], Ws[1], bs[1], Ws[2], bs[2])
    b = ne.backprop_layers(X, y, Ws, bs, ["relu", "sigmoid"])
    for i, k in enumerate(["dW0", "dW1", "dW2"]):
        assert_close(a[k], b["dW"][i], k)


# --- the thesis as printed is wrong (errata) --------------------------------------------

def test_printed_formulas_are_wrong():
    x = np.linspace(-3, 3, 7)
    right = F.sigmoid_grad(x)
    assert nb.rel_error(ne.sigmoid_derivative_as_printed(x), right) > 0.1
    assert_close(np.array([ne.sigmoid_derivative(v) for v in x]), right, "sigmoid'")
    rng = np.random.default_rng(0)
    Ws, bs = random_net(rng, [2, 3, 4])
    x0, y0 = rng.normal(size=2), 1
    r = ne.backprop_one_hidden(x0, y0, Ws[0], bs[0], Ws[1], bs[1])
    printed = ne.input_gradients_as_printed(r["gradient_h1"], 2)
    assert nb.rel_error(printed, r["gradient_input"]) > 0.1
    O = ne.softmax(rng.normal(size=4))
    assert nb.rel_error(ne.softmax_xent_gradient_eq_3_21_as_printed(O, 2), O - np.eye(4)[2]) > 0.1


# --- argument checks ---------------------------------------------------------------------

def test_input_checks_and_no_mutation():
    rng = np.random.default_rng(1)
    Ws, bs = random_net(rng, [2, 3, 4])
    X = rng.normal(size=(3, 2))
    y = np.array([0, 1, 3])
    saved = [a.copy() for a in (X, y, *Ws, *bs)]
    ne.backprop_one_hidden(X, y, Ws[0], bs[0], Ws[1], bs[1])
    for a, b in zip((X, y, *Ws, *bs), saved):
        assert np.array_equal(a, b), "an input was modified"
    args = (Ws[0], bs[0], Ws[1], bs[1])
    with pytest.raises(ValueError, match=r"x: expected shape \(N, 2\)"):
        ne.backprop_one_hidden(np.ones((3, 5)), y, *args)
    with pytest.raises(ValueError, match="x: expected 2 input values"):
        ne.backprop_one_hidden(np.ones(3), 0, *args)
    with pytest.raises(ValueError, match=r"label must lie in \[0, 3\]"):
        ne.backprop_one_hidden(X[0], 4, *args)
    with pytest.raises(ValueError, match="y: expected 3 labels"):
        ne.backprop_one_hidden(X, np.array([0, 1]), *args)
    with pytest.raises(ValueError, match="sums to 1"):
        ne.softmax_xent_gradient(np.full(4, 0.25), np.array([1.0, 1.0, 0, 0]))
    with pytest.raises(ValueError, match="finite"):
        ne.backprop_one_hidden(np.array([np.nan, 0.0]), 0, *args)
    with pytest.raises(ValueError, match="W1: expected shape"):
        ne.backprop_one_hidden(X, y, Ws[0], bs[0], np.ones((5, 4)), bs[1])
    with pytest.raises(ValueError, match="b1: expected length 3"):
        ne.backprop_one_hidden(X, y, Ws[0], np.ones(2), Ws[1], bs[1])
    with pytest.raises(ValueError, match="hidden: expected one of"):
        ne.forward_one_hidden(X[0], *args, hidden="tanhh")
    with pytest.raises(ValueError, match="reduction"):
        ne.backprop_one_hidden(X, y, *args, reduction="avg")
    with pytest.raises(TypeError, match="W0: expected a NumPy array"):
        ne.backprop_one_hidden(X, y, "W0", bs[0], Ws[1], bs[1])
    with pytest.raises(TypeError, match="real"):
        ne.softmax(np.array(["a", "b"]))
    with pytest.raises(ValueError, match="1-D"):
        ne.softmax(np.ones((2, 2)))
    with pytest.raises(ValueError, match="biases"):
        ne.backprop_layers(X, y, Ws, bs[:1])
    with pytest.raises(ValueError, match="y: expected targets in"):
        ne.backprop_sigmoid_bce(X, np.array([0, 2, 1]), Ws[0], bs[0], np.ones((3, 1)),
                                np.zeros(1))
    # lists are accepted and give the same answer as arrays
    a = ne.backprop_one_hidden(X[0].tolist(), 1, *[w.tolist() for w in args])
    b = ne.backprop_one_hidden(X[0], 1, *args)
    assert_close(a["dW0"], b["dW0"], "lists vs arrays")


def test_draw_network():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nnbook.explorers import draw_network
    ax = draw_network([2, 3, 3], highlight=(1, 0))
    assert len(ax.patches) == 8                      # one circle per neuron
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="sizes"):
        draw_network([2])
    with pytest.raises(ValueError, match="layer_names"):
        draw_network([2, 3], layer_names=["a"])
