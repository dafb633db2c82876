"""nnbook.autodiff: every primitive's JVP and VJP against centred differences
(float64, relative error < 1e-7, hypothesis shapes), forward = reverse Jacobians,
the thesis's Algorithms 1-3, the MLP as a chain of VJPs = Sequential.backward,
PyTorch's autograd as a reference, and clear errors."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnbook as nb
import nnbook.autodiff as ad
from nnbook import numerical_gradient, rel_error

TOL = 1e-7
dims = st.integers(min_value=1, max_value=4)
seeds = st.integers(min_value=0, max_value=2**16)


def _check_unary(fn, x, rng):
    """grad of sum(fn(x) * R) and the JVP along a random v, against centred differences."""
    out = fn(ad.Tensor(x))
    R = rng.standard_normal(out.shape)

    def f(xx):
        return (fn(xx) * R).sum()

    def f_np(xx):
        return float((fn(ad.Tensor(xx)).value * R).sum())

    num = numerical_gradient(f_np, x)
    g = ad.grad(f)(x)
    assert g.shape == x.shape
    assert rel_error(g, num) < TOL, rel_error(g, num)
    v = rng.standard_normal(x.shape)
    _, t = ad.jvp(f, x, v)
    assert rel_error(t, float((num * v).sum())) < TOL


UNARY = {
    "neg": (lambda t: -t, "any"),
    "exp": (ad.exp, "any"),
    "log": (ad.log, "positive"),
    "sqrt": (ad.sqrt, "positive"),
    "tanh": (ad.tanh, "any"),
    "sigmoid": (ad.sigmoid, "any"),
    "relu": (ad.relu, "nonzero"),
    "relu_at_half": (lambda t: ad.relu(t, at_zero=0.5), "nonzero"),
    "abs": (ad.abs, "nonzero"),
    "pow2": (lambda t: t ** 2, "any"),
    "pow3": (lambda t: t ** 3, "any"),
    "pow_half": (lambda t: t ** 0.5, "positive"),
    "pow_neg": (lambda t: t ** -1.5, "positive"),
    "rpow": (lambda t: 2.0 ** t, "any"),
    "tensor_pow_tensor": (lambda t: t ** (t * 0.5), "positive"),
    "sum_all": (lambda t: t.sum(), "any"),
    "sum_axis0": (lambda t: t.sum(axis=0), "any"),
    "sum_axis_last_keep": (lambda t: t.sum(axis=-1, keepdims=True), "any"),
    "mean_all": (lambda t: t.mean(), "any"),
    "mean_axis1": (lambda t: t.mean(axis=1), "any"),
    "reshape": (lambda t: t.reshape(-1), "any"),
    "transpose": (lambda t: t.T, "any"),
    "softmax_rows": (ad.softmax, "any"),
    "softmax_cols": (lambda t: ad.softmax(t, axis=0), "any"),
    "log_softmax": (ad.log_softmax, "any"),
    "getitem_row": (lambda t: t[0], "any"),
    "getitem_fancy": (lambda t: t[np.array([0, 0, -1])], "any"),   # repeated index: adds
    "stack": (lambda t: ad.stack([t, t * 2.0, ad.exp(t)], axis=1), "any"),
    "div_rconst": (lambda t: 1.5 / t, "positive"),
    "sub_rconst": (lambda t: 3.0 - t, "any"),
}


def _domain(x, kind):
    if kind == "positive":
        return 0.3 + np.abs(x)
    if kind == "nonzero":   # keep away from the kink so centred differences are valid
        return np.where(np.abs(x) < 0.05, 0.3, x)
    return x


@pytest.mark.parametrize("name", sorted(UNARY))
@given(n=dims, m=dims, seed=seeds)
def test_unary_primitives_match_finite_differences(name, n, m, seed):
    fn, kind = UNARY[name]
    rng = np.random.default_rng(seed)
    x = _domain(rng.standard_normal((n, m)), kind)
    _check_unary(fn, x, rng)


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}
SHAPES = {  # (shape of a, shape of b) for an (n, m) problem: broadcasting both ways
    "same": lambda n, m: ((n, m), (n, m)),
    "row": lambda n, m: ((n, m), (m,)),
    "col": lambda n, m: ((n, 1), (n, m)),
    "scalar": lambda n, m: ((n, m), ()),
}


@pytest.mark.parametrize("op", sorted(BINARY))
@pytest.mark.parametrize("bcast", sorted(SHAPES))
@given(n=dims, m=dims, seed=seeds)
def test_binary_primitives_with_broadcasting(op, bcast, n, m, seed):
    rng = np.random.default_rng(seed)
    sa, sb = SHAPES[bcast](n, m)
    a = rng.standard_normal(sa)
    b = rng.standard_normal(sb)
    if op == "div":
        b = np.sign(b + 1e-3) * (0.5 + np.abs(b))
    fn = BINARY[op]
    R = rng.standard_normal(np.broadcast_shapes(sa, sb))

    def f(a_, b_):
        return (fn(a_, b_) * R).sum()

    def f_np(a_, b_):
        return float((fn(a_, b_) * R).sum())

    ga, gb = ad.grad(f, argnums=(0, 1))(a, b)
    assert ga.shape == a.shape and gb.shape == b.shape
    assert rel_error(ga, numerical_gradient(lambda aa: f_np(aa, b), a)) < TOL
    assert rel_error(gb, numerical_gradient(lambda bb: f_np(a, bb), b)) < TOL
    va, vb = rng.standard_normal(sa), rng.standard_normal(sb)
    _, t = ad.jvp(f, (a, b), (va, vb))
    assert rel_error(t, float((ga * va).sum() + (gb * vb).sum())) < TOL


@pytest.mark.parametrize("kind", ["mm", "mv", "vm", "vv"])
@given(n=dims, k=dims, m=dims, seed=seeds)
def test_matmul(kind, n, k, m, seed):
    rng = np.random.default_rng(seed)
    sa = {"mm": (n, k), "mv": (n, k), "vm": (k,), "vv": (k,)}[kind]
    sb = {"mm": (k, m), "mv": (k,), "vm": (k, m), "vv": (k,)}[kind]
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    R = rng.standard_normal(np.shape(a @ b))

    def f_np(a_, b_):
        return float(((a_ @ b_) * R).sum())

    ga, gb = ad.grad(lambda a_, b_: ((a_ @ b_) * R).sum(), argnums=(0, 1))(a, b)
    assert rel_error(ga, numerical_gradient(lambda aa: f_np(aa, b), a)) < TOL
    assert rel_error(gb, numerical_gradient(lambda bb: f_np(a, bb), b)) < TOL
    va, vb = rng.standard_normal(sa), rng.standard_normal(sb)
    _, t = ad.jvp(lambda a_, b_: ((a_ @ b_) * R).sum(), (a, b), (va, vb))
    assert rel_error(t, float((ga * va).sum() + (gb * vb).sum())) < TOL


@pytest.mark.parametrize("labels", [True, False])
@given(n=dims, k=st.integers(2, 5), seed=seeds)
def test_cross_entropy_matches_nnbook_and_finite_differences(labels, n, k, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, k)) * 3
    y = rng.integers(0, k, size=n)
    Y = np.eye(k)[y] if not labels else y
    if not labels:                    # soft targets too
        Y = 0.7 * Y + 0.3 * rng.dirichlet(np.ones(k), size=n)
    ref = nb.SoftmaxCrossEntropy()
    val = ad.cross_entropy(ad.Tensor(z), Y).item()
    assert abs(val - ref.forward(z, Y)) < 1e-12
    g = ad.grad(lambda t: ad.cross_entropy(t, Y))(z)
    assert rel_error(g, ref.backward()) < 1e-12
    num = numerical_gradient(lambda zz: ad.cross_entropy(ad.Tensor(zz), Y).item(), z)
    assert rel_error(g, num) < TOL
    v = rng.standard_normal(z.shape)
    assert rel_error(ad.jvp(lambda t: ad.cross_entropy(t, Y), z, v)[1], (g * v).sum()) < TOL


def test_softmax_and_log_softmax_are_stable():
    z = np.array([[1000.0, 0.0, -1000.0]])
    p = ad.softmax(ad.Tensor(z)).value
    assert np.all(np.isfinite(p)) and abs(p.sum() - 1) < 1e-15
    lp = ad.log_softmax(ad.Tensor(z)).value
    assert np.all(np.isfinite(lp[:, :2])) and lp[0, 2] == -2000.0
    g = ad.grad(lambda t: ad.cross_entropy(t, np.array([2])))(z)
    assert np.all(np.isfinite(g)) and rel_error(g, np.array([[1.0, 0.0, -1.0]])) < 1e-15


# --- transformations -------------------------------------------------------------------

def _composite(W1, W2):
    def f(x):
        h = ad.tanh(W1 @ x)
        return ad.sigmoid(W2 @ h) * ad.exp(-(x[0] ** 2)) + (h * h).sum() / 3.0
    return f


@given(n=st.integers(1, 6), m=st.integers(1, 6), seed=seeds)
def test_forward_and_reverse_jacobians_agree(n, m, seed):
    rng = np.random.default_rng(seed)
    W1, W2 = rng.standard_normal((5, n)), rng.standard_normal((m, 5))
    f = _composite(W1, W2)
    x = rng.standard_normal(n)
    Jf = ad.jacobian(f, x, mode="forward")
    Jr = ad.jacobian(f, x, mode="reverse")
    assert Jf.shape == Jr.shape == (m, n)
    assert rel_error(Jf, Jr) < 1e-13
    # each row against centred differences
    for i in range(m):
        num = numerical_gradient(lambda xx, i=i: float(f(ad.Tensor(xx)).value[i]), x)
        assert rel_error(Jr[i], num) < TOL


def test_jacobian_of_matrix_valued_function_has_output_then_input_axes():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 2))
    J = ad.jacobian(lambda t: ad.softmax(t @ np.ones((2, 4))), X)
    assert J.shape == (3, 4, 3, 2)
    assert rel_error(J, ad.jacobian(lambda t: ad.softmax(t @ np.ones((2, 4))), X,
                                    mode="forward")) < 1e-13


def test_pass_counts_forward_costs_n_reverse_costs_m():
    n, m = 7, 3
    rng = np.random.default_rng(1)
    f = _composite(rng.standard_normal((5, n)), rng.standard_normal((m, 5)))
    x = rng.standard_normal(n)
    ops = len(ad.topological_order(f(ad.Tensor(x)))) - sum(
        1 for nd in ad.topological_order(f(ad.Tensor(x))) if not nd.parents)
    ad.reset_stats()
    ad.jacobian(f, x, mode="forward")
    assert ad.STATS["forward"] == n * ops and ad.STATS["vjp"] == 0
    ad.reset_stats()
    ad.jacobian(f, x, mode="reverse")
    assert ad.STATS["forward"] == ops and ad.STATS["jvp"] == 0
    assert ad.STATS["vjp"] <= m * ops


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_chain_jacobian_algorithms_1_and_2(mode):
    rng = np.random.default_rng(2)
    Ws = [rng.standard_normal((4, 3)), rng.standard_normal((5, 4)), rng.standard_normal((2, 5))]
    fs = [lambda x, W=Ws[0]: ad.tanh(W @ x), lambda x, W=Ws[1]: ad.relu(W @ x) + 0.1 * x.sum(),
          lambda x, W=Ws[2]: ad.softmax(W @ x)]
    x = rng.standard_normal(3)
    o, J = ad.chain_jacobian(fs, x, mode=mode)

    def full(t):
        for f in fs:
            t = f(t)
        return t

    assert rel_error(o, full(ad.Tensor(x)).value) < 1e-15
    assert rel_error(J, ad.jacobian(full, x)) < 1e-13
    # product of the layer Jacobians J_3 J_2 J_1
    xs, Js = [x], []
    for f in fs:
        Js.append(ad.jacobian(f, xs[-1]))
        xs.append(f(ad.Tensor(xs[-1])).value)
    assert rel_error(J, Js[2] @ Js[1] @ Js[0]) < 1e-13


def _dense(x, W, b):
    return x @ W + b


def test_mlp_as_chain_of_vjps_equals_sequential_backward():
    nb.seed(3)
    model = nb.Sequential(nb.Dense(6, 5, dtype="float64"), nb.ReLU(),
                          nb.Dense(5, 4, dtype="float64"), nb.ReLU(),
                          nb.Dense(4, 3, dtype="float64"))
    loss = nb.SoftmaxCrossEntropy()
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((8, 6)), rng.integers(0, 3, size=8)
    E_ref = loss.forward(model.forward(X), y)
    model.zero_grad()
    dx_ref = model.backward(loss.backward())
    dense = [model[i] for i in (0, 2, 4)]
    layers = [_dense, lambda x: ad.relu(x), _dense, lambda x: ad.relu(x), _dense]
    params = [(dense[0].params["W"], dense[0].params["b"]), (), (dense[1].params["W"],
              dense[1].params["b"]), (), (dense[2].params["W"], dense[2].params["b"])]
    E, grads = ad.backprop(layers, params, X, lambda o: ad.cross_entropy(o, y))
    assert abs(E - E_ref) < 1e-14
    for (gW, gb), layer in zip([grads[0], grads[2], grads[4]], dense):
        assert rel_error(gW, layer.grads["W"]) < 1e-13
        assert rel_error(gb, layer.grads["b"]) < 1e-13
    # the same through one traced graph, and the input gradient
    def full(x, W1, b1, W2, b2, W3, b3):
        h = ad.relu(x @ W1 + b1)
        h = ad.relu(h @ W2 + b2)
        return ad.cross_entropy(h @ W3 + b3, y)
    args = [X] + [p for pair in params if pair for p in pair]
    g = ad.grad(full, argnums=tuple(range(7)))(*args)
    assert rel_error(g[0], dx_ref) < 1e-13
    assert rel_error(g[1], dense[0].grads["W"]) < 1e-13


def test_tensor_backward_accumulates_like_pytorch():
    x = ad.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * x).sum().backward()
    assert np.array_equal(x.grad, [2.0, 4.0])
    (x * 3.0).sum().backward()
    assert np.array_equal(x.grad, [5.0, 7.0])
    y = x * 2.0
    y.backward(np.array([1.0, -1.0]))
    assert np.array_equal(x.grad, [7.0, 5.0])
    x.grad[0] = 0.0                    # a writeable, private array


def test_shared_node_sums_over_children_thesis_dag():
    def f(x1, x2):
        x3 = ad.exp(x1)
        x4 = x2 * x3
        x5 = x1 + x4
        x6 = ad.sqrt(x5)
        return x4 * x6

    rng = np.random.default_rng(4)
    for x1, x2 in rng.uniform(0.1, 1.5, size=(5, 2)):
        e = math.exp(x1)
        s = math.sqrt(x1 + x2 * e)
        d1 = x2 * e * s + x2 * e * (1 + x2 * e) / (2 * s)      # analytic
        d2 = e * s + x2 * e * e / (2 * s)
        g = ad.grad(f, argnums=(0, 1))(x1, x2)
        assert rel_error(np.array(g), [d1, d2]) < 1e-14
        _, t1 = ad.jvp(f, (x1, x2), (1.0, 0.0))
        _, t2 = ad.jvp(f, (x1, x2), (0.0, 1.0))
        assert rel_error(np.array([t1, t2]), [d1, d2]) < 1e-14


def test_relu_subgradient_at_zero_is_selectable():
    x = np.array([-1.0, 0.0, 2.0])
    for c in (0.0, 0.5, 1.0):
        g = ad.grad(lambda t: ad.relu(t, at_zero=c).sum())(x)
        assert np.array_equal(g, [0.0, c, 1.0])
    # nnbook's ReLU layer uses 0
    layer = nb.ReLU()
    layer.forward(x)
    assert np.array_equal(layer.backward(np.ones(3)), [0.0, 0.0, 1.0])


def test_float32_stays_float32():
    x = np.ones((2, 3), dtype=np.float32)
    out = ad.trace(lambda t: (ad.tanh(t * 2.0 + 1) / 3).sum(), x)
    assert out.dtype == np.float32
    g = ad.grad(lambda t: (ad.tanh(t * 2.0 + 1) / 3).sum())(x)
    assert g.dtype == np.float32
    _, t = ad.jvp(lambda t: t * 2.0, x, np.ones((2, 3), dtype=np.float32))
    assert t.dtype == np.float32


def test_inputs_are_not_modified():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4))
    x0 = x.copy()
    ad.grad(lambda t: (t * t).sum())(x)
    ad.jacobian(lambda t: ad.softmax(t), x, mode="forward")
    ad.jacobian(lambda t: ad.softmax(t), x, mode="reverse")
    assert np.array_equal(x, x0)


def test_graph_structure_and_drawing():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nnbook.explorers import draw_graph

    def f(x1, x2):
        x3 = ad.exp(x1).named("x3")
        x4 = (x2 * x3).named("x4")
        x5 = (x1 + x4).named("x5")
        return (x4 * ad.sqrt(x5).named("x6")).named("x7")

    out = ad.trace(f, 1.0, 2.0)
    nodes = ad.graph(out)
    labels = [n["label"] for n in nodes]
    assert sorted(labels) == ["x1", "x2", "x3", "x4", "x5", "x6", "x7"]
    pos = {n["label"]: n["id"] for n in nodes}
    for n in nodes:                              # topological: parents first
        assert all(p < n["id"] for p in n["parents"])
    assert sorted(nodes[pos["x7"]]["parents"]) == sorted([pos["x4"], pos["x6"]])
    adj = ad.adjoints(out)
    x4 = nodes[pos["x4"]]["tensor"]
    x5, x6 = nodes[pos["x5"]]["tensor"], nodes[pos["x6"]]["tensor"]
    # the thesis's rule at x4: do/dx4 = do/dx5 dx5/dx4 + do/dx7 dx7/dx4
    assert abs(adj[id(x4)] - (adj[id(x5)] * 1.0 + 1.0 * x6.value)) < 1e-14
    ax = draw_graph(out, show_grads=True)
    assert len(ax.texts) == 7 + 8          # 7 node boxes, 8 edges (annotations)
    plt.close("all")


def test_value_and_grad_and_vjp():
    rng = np.random.default_rng(6)
    A = rng.standard_normal((3, 4))
    x = rng.standard_normal(4)
    val, g = ad.value_and_grad(lambda t: (A @ t).sum())(x)
    assert abs(val - (A @ x).sum()) < 1e-13 and rel_error(g, A.sum(axis=0)) < 1e-15
    y, fn = ad.vjp(lambda t: A @ t, x)
    u = rng.standard_normal(3)
    assert rel_error(y, A @ x) < 1e-15 and rel_error(fn(u), u @ A) < 1e-15
    y2, fn2 = ad.vjp(lambda a, t: a @ t, A, x)
    gA, gx = fn2(u)
    assert rel_error(gA, np.outer(u, x)) < 1e-15 and rel_error(gx, u @ A) < 1e-15
    # an output that does not depend on the input has a zero gradient
    assert np.array_equal(ad.grad(lambda t: ad.Tensor(3.0))(x), np.zeros(4))
    # non-differentiated arguments pass through
    g_only_w = ad.grad(lambda w, X, y: ad.cross_entropy(X @ w, y))(
        np.zeros((4, 2)), rng.standard_normal((5, 4)), np.array([0, 1, 1, 0, 1]))
    assert g_only_w.shape == (4, 2)


# --- errors ----------------------------------------------------------------------------

def test_errors_are_clear():
    x = np.ones(3)
    with pytest.raises(ValueError, match="scalar output.*shape \\(3,\\)"):
        ad.grad(lambda t: t * 2.0)(x)
    with pytest.raises(TypeError, match="f: expected a function"):
        ad.grad(3)
    with pytest.raises(TypeError, match="floating-point"):
        ad.grad(lambda t: t.sum())(np.ones(3, dtype=np.int64))
    with pytest.raises(ValueError, match="tangents: expected shape \\(3,\\)"):
        ad.jvp(lambda t: t, x, np.ones(4))
    with pytest.raises(ValueError, match="u: expected shape \\(2,\\)"):
        ad.vjp(lambda t: t[:2], x)[1](np.ones(3))
    with pytest.raises(ValueError, match="mode: expected 'forward' or 'reverse'"):
        ad.jacobian(lambda t: t, x, mode="sideways")
    with pytest.raises(ValueError, match="inner dimensions differ"):
        ad.Tensor(np.ones((2, 3))) @ np.ones((2, 3))
    with pytest.raises(ValueError, match="at_zero"):
        ad.relu(ad.Tensor(x), at_zero=2.0)
    with pytest.raises(ValueError, match="labels must lie in \\[0, 2\\]"):
        ad.cross_entropy(ad.Tensor(np.ones((2, 3))), np.array([0, 3]))
    with pytest.raises(ValueError, match="cannot reshape"):
        ad.Tensor(np.ones(6)).reshape(4, 2)
    with pytest.raises(TypeError, match="expected a number, an array or a Tensor"):
        ad.Tensor("abc")
    with pytest.raises(TypeError, match="truth value"):
        bool(ad.Tensor(1.0))
    with pytest.raises(ValueError, match="seed: backward\\(\\) without a seed"):
        ad.Tensor(x, requires_grad=True).__mul__(2.0).backward()
    with pytest.raises(ValueError, match="argnums"):
        ad.grad(lambda t: t.sum(), argnums=3)(x)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        ad.Tensor(np.ones((2, 2))).sum(axis=2)
    with pytest.raises(TypeError, match="expected a function returning one Tensor"):
        ad.jacobian(lambda t: (t, t), x)


# --- PyTorch as a reference -------------------------------------------------------------

def test_against_torch_autograd():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    X = rng.standard_normal((6, 5))
    W1, b1 = rng.standard_normal((5, 4)), rng.standard_normal(4)
    W2, b2 = rng.standard_normal((4, 3)), rng.standard_normal(3)
    y = rng.integers(0, 3, size=6)

    def ours(X, W1, b1, W2, b2):
        h = ad.tanh(X @ W1 + b1) * ad.sigmoid(X @ W1) + ad.sqrt(ad.exp(X @ W1) + 1.0)
        z = (h ** 2) @ W2 / 3.0 - b2
        return ad.cross_entropy(z, y) + ad.log_softmax(z).mean() * 0.1 + ad.relu(z).sum() / 7

    ts = [torch.tensor(a, requires_grad=True) for a in (X, W1, b1, W2, b2)]
    tX, tW1, tb1, tW2, tb2 = ts
    h = (torch.tanh(tX @ tW1 + tb1) * torch.sigmoid(tX @ tW1)
         + torch.sqrt(torch.exp(tX @ tW1) + 1.0))
    z = (h ** 2) @ tW2 / 3.0 - tb2
    E = (torch.nn.functional.cross_entropy(z, torch.tensor(y))
         + torch.log_softmax(z, dim=1).mean() * 0.1 + torch.relu(z).sum() / 7)
    E.backward()
    val, grads = ad.value_and_grad(ours, argnums=(0, 1, 2, 3, 4))(X, W1, b1, W2, b2)
    assert abs(val - E.item()) < 1e-12
    for g, t in zip(grads, ts):
        assert rel_error(g, t.grad.numpy()) < 1e-12
    # Jacobian (forward mode) against torch.autograd.functional.jacobian
    x = rng.standard_normal(4)
    f_ours = lambda t: ad.softmax(ad.tanh(W1 @ t))           # noqa: E731
    f_torch = lambda t: torch.softmax(torch.tanh(torch.tensor(W1) @ t), dim=0)  # noqa: E731
    J_t = torch.autograd.functional.jacobian(f_torch, torch.tensor(x)).numpy()
    assert rel_error(ad.jacobian(f_ours, x, mode="forward"), J_t) < 1e-12
    # relu'(0) = 0 in PyTorch too
    t0 = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    torch.relu(t0).sum().backward()
    assert np.array_equal(t0.grad.numpy(), ad.grad(lambda t: ad.relu(t).sum())(np.zeros(3)))
