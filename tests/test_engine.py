"""The training engine (nnbook.engine) against the reference layers.

Every op the engine runs in place of a layer must give the same numbers as the
layer's own forward and backward: these tests train the same model through
``nb.fit(..., engine=True)`` and ``engine=False`` and compare losses and weights,
and compare each op with its layer directly (including PyTorch where installed).
"""
import copy
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnbook as nb
from helpers import assert_close, rand
from nnbook.engine import EngineStep, compile_step, ops
from nnbook.engine import _blas


def _spirals(n=100, seed=2, dtype=np.float32):
    X, y = nb.data.spirals(n, seed=seed)
    return X.astype(dtype), y


class Double(nb.Layer):
    """A user layer the engine does not know (out = 2x); its backward returns an array
    it keeps, which the engine must not overwrite."""

    def forward(self, x):
        return 2 * x

    def backward(self, dout):
        self.kept = 2 * dout
        return self.kept


MODELS = {
    "mlp-relu": lambda dt: nb.mlp([2, 16, 12, 3], dtype=dt),
    "mlp-tanh": lambda dt: nb.mlp([2, 16, 12, 3], activation="tanh", dtype=dt),
    "mlp-sigmoid": lambda dt: nb.mlp([2, 9, 3], activation="sigmoid", dtype=dt),
    "user-layer": lambda dt: nb.Sequential(nb.Dense(2, 8, dtype=dt), Double(), nb.ReLU(),
                                           nb.Dense(8, 3, dtype=dt)),
    "nested+bn+dropout": lambda dt: nb.Sequential(
        nb.Sequential(nb.Dense(2, 8, bias=False, dtype=dt), nb.BatchNorm1d(8, dtype=dt),
                      nb.ReLU()),
        nb.Dropout(0.2), nb.Dense(8, 3, dtype=dt)),
    "no-bias": lambda dt: nb.Sequential(nb.Dense(2, 8, bias=False, dtype=dt), nb.ReLU(),
                                        nb.Dense(8, 3, dtype=dt)),
}
OPTIMIZERS = {
    "sgd": lambda p: nb.SGD(p, lr=0.2),
    "momentum": lambda p: nb.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    "adam": lambda p: nb.Adam(p, lr=0.01),
    "adamw": lambda p: nb.AdamW(p, lr=0.01),
    "rmsprop": lambda p: nb.RMSprop(p, lr=0.01),
}


def _train(make, dtype, make_opt, X, y, engine, epochs=2, batch_size=16, **kw):
    nb.seed(1)
    model = make(dtype)
    opt = make_opt(model.parameters())
    nb.seed(5)
    hist = nb.fit(model, nb.SoftmaxCrossEntropy(), opt, X, y, epochs=epochs,
                  batch_size=batch_size, progress=False, engine=engine, **kw)
    return hist, model.state_dict()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_fit_engine_equals_reference_layers(model, opt, dtype):
    """Several steps (100 samples, batch 16: a ragged last batch) through the engine
    and through the reference layers: same history and weights to rounding."""
    X, y = _spirals(dtype=dtype)
    tol = 1e-4 if dtype == "float32" else 1e-11
    h1, w1 = _train(MODELS[model], dtype, OPTIMIZERS[opt], X, y, engine=True)
    h0, w0 = _train(MODELS[model], dtype, OPTIMIZERS[opt], X, y, engine=False)
    for k in h1:
        assert_close(np.array(h1[k], float), np.array(h0[k], float), tol, k)
    assert w1.keys() == w0.keys()
    for k in w1:
        assert_close(w1[k], w0[k], tol, k)


def test_frozen_layer_is_not_stepped_by_the_engine():
    """The optimizer owns only the last layer's parameters: the engine must not fuse a
    step into the first layer's backward."""
    X, y = _spirals()
    nb.seed(1)
    m = nb.mlp([2, 8, 3])
    W0 = m[0].params["W"].copy()
    nb.fit(m, nb.SoftmaxCrossEntropy(), nb.SGD(m[2].parameters(), lr=0.2), X, y, epochs=2,
           batch_size=16, progress=False)
    assert np.array_equal(m[0].params["W"], W0)


def test_plain_sgd_steps_inside_the_gemm(monkeypatch):
    calls = []
    orig = _blas.gemm_tn_update
    monkeypatch.setattr(_blas, "gemm_tn_update", lambda *a: calls.append(orig(*a)) or calls[-1])
    X, y = _spirals()                                   # 6 batches of 16 and a ragged 4
    nb.seed(1)
    m = nb.mlp([2, 8, 8, 3])
    nb.fit(m, nb.SoftmaxCrossEntropy(), nb.SGD(m.parameters(), lr=0.2), X, y, epochs=2,
           batch_size=16, progress=False)
    assert len(calls) == 3 * 7 * 2 and (all(calls) or not _blas.available())


def test_engine_recognises_the_patterns_it_accelerates():
    m = nb.Sequential(nb.Conv2D(1, 2, 3, padding=1), nb.MaxPool2D(2), nb.ReLU(), nb.Flatten(),
                      nb.Dense(32, 8), nb.ReLU(), Double(), nb.ReLU(), nb.Dense(8, 3))
    step = compile_step(m, nb.SoftmaxCrossEntropy(), nb.SGD(m.parameters(), lr=0.1))
    assert isinstance(step, EngineStep)
    kinds = [type(op).__name__ for op in step.ops]
    # the ReLU after the pool joins the convolution and the pool
    assert kinds == ["ConvPoolOp", "FlattenOp", "DenseOp", "ReLUOp", "RefOp",
                     "RefOp", "DenseOp"]
    assert step.ops[0].relu is m[2]
    # the ReLU after the user's layer runs as written (its input is the user's array)
    assert step.ops[5].layer is m[7]
    assert step.ops[3].grad_in_place is False        # its incoming gradient is the user's
    assert not compile_step(m, nb.SoftmaxCrossEntropy(), nb.SGD(m.parameters()),
                            engine=False).__class__ is EngineStep


def test_engine_leaves_a_users_arrays_alone():
    X, y = _spirals()
    nb.seed(1)
    d = Double()
    m = nb.Sequential(nb.Dense(2, 8), nb.ReLU(), d, nb.ReLU(), nb.Dense(8, 3))
    kept = []

    class Spy(nb.Layer):
        def forward(self, x):
            return x

        def backward(self, dout):
            kept.append((dout, dout.copy()))
            return dout
    m2 = nb.Sequential(*m.layers[:2], Spy(), *m.layers[2:])
    nb.fit(m2, nb.SoftmaxCrossEntropy(), nb.SGD(m2.parameters(), lr=0.1), X, y, epochs=1,
           batch_size=16, progress=False)
    assert all(np.array_equal(a, b) for a, b in kept[:-1])


# ------------------------------------------------------------------ Dense op and BLAS
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dense_op_forward_with_the_bias_inside_the_gemm(dtype):
    rng = np.random.default_rng(3)
    layer = nb.Dense(7, 5, dtype=dtype)
    layer.params["b"][...] = rng.standard_normal(5)
    x = rng.standard_normal((9, 7)).astype(dtype)
    want = layer.forward(x).copy()
    op = ops.DenseOp(layer, first=False, fused_sgd=False)
    for _ in range(2):                                  # second call: the memo path
        assert_close(op.forward(x), want, 1e-6 if dtype == "float32" else 1e-13)
    assert ("fwd" in op._bufs) == _blas.available()
    dout = rand(rng, 9, 5, dtype=dtype)
    layer.zero_grad()
    dx_ref = layer.backward(dout)
    g_ref = {k: v.copy() for k, v in layer.grads.items()}
    assert_close(op.backward(dout), dx_ref, 1e-6 if dtype == "float32" else 1e-13)
    for k in g_ref:
        assert_close(layer.grads[k], g_ref[k], 1e-6 if dtype == "float32" else 1e-13, k)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_gemm_update_matches_numpy(dtype):
    rng = np.random.default_rng(0)
    x, d = rng.standard_normal((13, 7)).astype(dtype), rng.standard_normal((13, 5)).astype(dtype)
    W = rng.standard_normal((7, 5)).astype(dtype)
    want = W - x.T @ d
    if not _blas.available():
        pytest.skip("NumPy's CBLAS symbols not found: the engine uses the two-pass update")
    assert _blas.gemm_tn_update(W, x, d)
    assert_close(W, want, 1e-6 if dtype == "float32" else 1e-13)
    W2 = W.copy()                  # views, wrong shapes and mixed dtypes are refused
    assert not _blas.gemm_tn_update(W2, np.asfortranarray(x), d)
    assert not _blas.gemm_tn_update(W2, x[:, :6], d)
    assert not _blas.gemm_tn_update(W2, x.astype("float16"), d)
    assert np.array_equal(W2, W)
    c = rng.standard_normal((13, 5)).astype(dtype)       # gemm_acc: c += alpha op(a) @ b
    ref = c + 0.5 * x @ W
    assert _blas.gemm_acc(x, W, c, alpha=0.5)
    assert_close(c, ref, 1e-6 if dtype == "float32" else 1e-13)
    assert not _blas.gemm_acc(x, W, c[:, :4])


def test_fused_gemm_memo_reuses_arguments_only_for_the_same_arrays():
    if not _blas.available():
        pytest.skip("NumPy's CBLAS symbols not found: the engine uses the two-pass update")
    rng = np.random.default_rng(1)
    x, d = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    W = rng.standard_normal((4, 3))
    memo = _blas.GemmMemo()
    for _ in range(2):                          # new contents, same arrays: memo hit
        x[...] = rng.standard_normal(x.shape)
        want = W - x.T @ d
        assert _blas.gemm_tn_update(W, x, d, memo)
        assert_close(W, want, 1e-13)
    assert memo.key[1] is W
    d2 = rng.standard_normal(d.shape)           # a new d: hit, its address read afresh
    want = W - x.T @ d2
    assert _blas.gemm_tn_update(W, x, d2, memo) and memo.key[1] is W
    assert_close(W, want, 1e-13)
    before = W.copy()                           # a d the GEMM cannot take: W untouched
    assert not _blas.gemm_tn_update(W, x, np.asfortranarray(d2), memo)
    assert np.array_equal(W, before)
    other = W.copy()
    want = other - x.T @ d
    assert _blas.gemm_tn_update(other, x, d, memo) and memo.key[1] is other
    assert_close(other, want, 1e-13)
    x.shape = (12, 2)                           # reshaped in place: recomputed, refused
    assert not _blas.gemm_tn_update(other, x, d, memo)
    assert copy.deepcopy(memo).key is None and copy.copy(memo).key is None
    assert pickle.loads(pickle.dumps(memo)).key is None


def test_handwritten_benchmark_loop_trains_like_fit():
    """The benchmark's framework-free contender does the same arithmetic as nb.fit."""
    from nnbook.bench.mlp import handwritten_epoch
    rng = np.random.default_rng(4)
    X = rng.random((256, 20)).astype(np.float32)
    y = rng.integers(0, 10, 256)
    nb.seed(3)
    m = nb.mlp([20, 16, 12, 10])
    params = [a.copy() for l in (m[0], m[2], m[4]) for a in (l.params["W"], l.params["b"])]
    nb.seed(7)
    nb.fit(m, nb.SoftmaxCrossEntropy(), nb.SGD(m.parameters(), lr=0.3), X, y, epochs=1,
           batch_size=32, progress=False)
    nb.seed(7)
    handwritten_epoch(X, y, params, 0.3, 32, nb.get_rng())
    got = [a for l in (m[0], m[2], m[4]) for a in (l.params["W"], l.params["b"])]
    for p, q in zip(params, got):
        assert_close(p, q, 1e-5)


# ------------------------------------------------------------------ convolution ops
@st.composite
def conv_pool_geometry(draw):
    """A stride-1 convolution whose output has even height and width, then a 2x2 pool."""
    n, c, f = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    ho = 2 * draw(st.integers(max(1, -(-(2 + 2 * ph - kh) // 2)), 4))
    wo = 2 * draw(st.integers(max(1, -(-(2 + 2 * pw - kw) // 2)), 4))
    return (n, c, ho + kh - 1 - 2 * ph, wo + kw - 1 - 2 * pw), (f, c, kh, kw), (ph, pw)


def _op_vs_layers(op, layers, x, dout):
    """Forward and backward of an op and of the layers it replaces: (op, ref) pairs."""
    ref = x
    for l in layers:
        l.zero_grad()
        ref = l.forward(ref)
    d = dout
    for l in reversed(layers):
        d = l.backward(d)
    g_ref = {k: v.copy() for k, v in layers[0].grads.items()}
    out = op.forward(x)
    out_ref = ref.copy()
    dx = op.backward(dout.copy())
    return (out, out_ref), (dx, d), (layers[0].grads, g_ref)


@settings(max_examples=40, deadline=None)
@given(geom=conv_pool_geometry(), seed=st.integers(0, 99), ties=st.booleans(),
       dtype=st.sampled_from(["float32", "float64"]))
def test_conv_pool_op_equals_conv_and_pool_layers(geom, seed, ties, dtype):
    """A stride-1 Conv2D and the 2x2 MaxPool2D after it as one op: the values and
    gradients of the two reference layers, ties included (small integers make many
    equal outputs; the gradient goes to the first maximum of each window)."""
    xs, ws, pad = geom
    rng = np.random.default_rng(seed)
    if ties:
        x, W, b = (rng.integers(-1, 2, sh).astype(dtype) for sh in (xs, ws, ws[:1]))
    else:
        x, W, b = rand(rng, *xs, dtype=dtype), rand(rng, *ws, dtype=dtype), \
            rand(rng, ws[0], dtype=dtype)
    conv = nb.Conv2D(ws[1], ws[0], ws[2:], padding=pad, dtype=dtype)
    pool = nb.MaxPool2D(2)
    conv.params["W"], conv.params["b"] = W, b
    op = ops.ConvPoolOp(conv, pool, first=False)
    out_ref = pool.forward(conv.forward(x))
    dout = rand(rng, *out_ref.shape, dtype=dtype)
    (out, oref), (dx, dxr), (g, gr) = _op_vs_layers(op, [conv, pool], x, dout)
    assert op.fused is not None
    tol = 1e-5 if dtype == "float32" else 1e-12
    assert_close(out, oref, tol, "out")
    assert_close(dx, dxr, tol, "dx")
    for k in ("W", "b"):
        assert_close(g[k], gr[k], tol, "d" + k)


def test_conv_pool_op_against_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x = rng.integers(-1, 2, (3, 2, 10, 10)).astype(np.float64)      # many ties
    conv = nb.Conv2D(2, 4, 3, padding=1, dtype="float64")
    op = ops.ConvPoolOp(conv, nb.MaxPool2D(2), first=False)
    out = op.forward(x)
    dout = rand(rng, *out.shape)
    dx = op.backward(dout)
    F = torch.nn.functional
    xt = torch.tensor(x, requires_grad=True)
    Wt = torch.tensor(conv.params["W"], requires_grad=True)
    bt = torch.tensor(conv.params["b"], requires_grad=True)
    ot = F.max_pool2d(F.conv2d(xt, Wt, bt, padding=1), 2)
    ot.backward(torch.tensor(dout))
    assert_close(out, ot.detach().numpy(), 1e-12, "out")
    assert_close(dx, xt.grad.numpy(), 1e-12, "dx")
    assert_close(conv.grads["W"], Wt.grad.numpy(), 1e-12, "dW")


def test_conv_pool_op_falls_back_where_it_does_not_apply():
    """An odd convolution output (the pool drops the last row and column) runs as the
    two layers; a strided convolution or a 3x3 pool is not fused at all."""
    rng = np.random.default_rng(11)
    conv, pool = nb.Conv2D(2, 3, 3, dtype="float64"), nb.MaxPool2D(2)
    x = rand(rng, 2, 2, 9, 9)
    op = ops.ConvPoolOp(conv, pool, first=False)
    out_ref = pool.forward(conv.forward(x))
    dout = rand(rng, *out_ref.shape)
    (out, oref), (dx, dxr), (g, gr) = _op_vs_layers(op, [conv, pool], x, dout)
    assert op.fused is None
    assert_close(out, oref, 1e-12)
    assert_close(dx, dxr, 1e-12)
    assert_close(g["W"], gr["W"], 1e-12)
    assert not ops.conv_pool_applies(nb.Conv2D(2, 3, 3, stride=2), nb.MaxPool2D(2), True)
    assert not ops.conv_pool_applies(nb.Conv2D(2, 3, 3), nb.MaxPool2D(3), True)
    assert not ops.conv_pool_applies(nb.Conv2D(2, 3, 3), nb.MaxPool2D(2), False)   # CuPy


def test_conv_op_reuses_its_plan_and_equals_the_layer():
    rng = np.random.default_rng(13)
    layer = nb.Conv2D(2, 3, 3, dtype="float64")
    op = ops.ConvOp(layer, first=False)
    x = rand(rng, 4, 2, 8, 8)
    op.forward(x)
    plan = op.cache[1]
    out = op.forward(x + 1)
    assert op.cache[1] is plan
    assert_close(out, layer.forward(x + 1), 1e-12)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_lenet5_fit_fused_equals_unfused_and_reference(monkeypatch, batch_norm):
    """LeNet-5 trained by nb.fit with the fused convolution-pool pairs, without them,
    and through the reference layers: the same history and weights (float32 rounding);
    a callback sees the layers on their own; after fit the model pickles."""
    rng = np.random.default_rng(12)
    X = rng.random((150, 1, 28, 28)).astype(np.float32)
    X[:, :, :6] = 0                                     # blank rows: ties in the pools
    y = rng.integers(0, 10, 150)
    runs = {}
    for name, fuse, engine in (("fused", True, True), ("unfused", False, True),
                               ("reference", True, False)):
        monkeypatch.setattr(ops, "FUSE_CONV_POOL", fuse)
        nb.seed(0)
        model = nb.LeNet5(batch_norm=batch_norm, dtype="float32")
        seen = []

        def cb(epoch, hist, model=model, seen=seen):
            seen.append(model[0].forward(X[:2]).shape)       # the convolution alone
            twin = copy.deepcopy(model)
            assert twin.predict(X[:2]).shape == (2, 10)
        hist = nb.fit(model, nb.SoftmaxCrossEntropy(), nb.SGD(model.parameters(), lr=0.05), X,
                      y, epochs=2, batch_size=64, val=(X[:50], y[:50]), progress=False,
                      callbacks=[cb], engine=engine)
        assert seen == [(2, 6, 28, 28)] * 2
        assert_close(pickle.loads(pickle.dumps(model)).predict(X[:8]), model.predict(X[:8]), 1e-12)
        runs[name] = hist, model.state_dict()
    h0, w0 = runs["reference"]
    for name in ("fused", "unfused"):
        h, w = runs[name]
        for k in h:
            assert_close(np.array(h[k]), np.array(h0[k]), 1e-4, f"{name} {k}")
        for k in w:
            assert_close(w[k], w0[k], 1e-4, f"{name} {k}")


class _Halve(nb.Layer):
    """A user's layer without parameters: the engine runs its own forward."""

    def forward(self, x):
        return x / 2

    def backward(self, dout):
        return dout / 2


def _predict_models(dtype):
    return {
        "lenet5": (nb.LeNet5(dtype=dtype), (70, 1, 28, 28)),
        "resnet": (nb.models.ResNet((1, 1), channels=(8, 16), stem_channels=8,
                                    input_size=16, dtype=dtype), (30, 1, 16, 16)),
        "mlp": (nb.Sequential(nb.Dense(10, 20, dtype=dtype), nb.BatchNorm1d(20, dtype=dtype),
                              nb.ReLU(), nb.Dropout(0.5), _Halve(),
                              nb.Sequential(nb.Dense(20, 3, dtype=dtype))), (43, 10)),
    }


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["lenet5", "resnet", "mlp"])
def test_predict_and_evaluate_through_the_engine_equal_the_layers(dtype, name):
    """predict and evaluate run the engine's forward pass: the layers' numbers (float
    rounding), a ragged last batch, modes and running statistics left as they were."""
    nb.seed(3)
    model, shape = _predict_models(dtype)[name]
    rng = np.random.default_rng(4)
    X, y = rng.random(shape).astype(dtype), rng.integers(0, 3, shape[0])
    nb.fit(model, nb.SoftmaxCrossEntropy(), nb.SGD(model.parameters(), lr=0.01), X, y,
           epochs=1, batch_size=8, progress=False)        # running statistics move
    model.train()
    model.layers[-1].eval()                               # a mixed mode to restore
    modes = [l.training for l in nb.models.all_layers(model)]
    state = copy.deepcopy(model.state_dict())
    tol = 1e-5 if dtype == "float32" else 1e-12
    ref = model.predict(X, batch_size=16, engine=False)
    got = model.predict(X, batch_size=16)
    assert got.dtype == ref.dtype and got.shape == ref.shape
    assert_close(got, ref, tol, f"{name} predict")
    loss = nb.SoftmaxCrossEntropy()
    (l1, a1), (l0, a0) = (nb.evaluate(model, loss, X, y, batch_size=16, engine=e)
                          for e in (True, False))
    assert abs(l1 - l0) <= tol * max(1.0, abs(l0)) and a1 == a0
    assert [l.training for l in nb.models.all_layers(model)] == modes
    after = model.state_dict()
    assert all(np.array_equal(after[k], state[k]) for k in state)


def test_batch_forward_gives_new_arrays():
    """The engine's outputs live in buffers it reuses; batch_forward hands out copies."""
    model = nb.Sequential(nb.Dense(4, 3, dtype="float64"), nb.ReLU(),
                          nb.Dense(3, 2, dtype="float64"))
    rng = np.random.default_rng(0)
    x1, x2 = rng.random((5, 4)), rng.random((5, 4))
    run = model.batch_forward(x1)
    a = run(x1)
    kept = a.copy()
    b = run(x2)
    assert a is not b and np.array_equal(a, kept)
    assert model.batch_forward(x1, engine=False) == model.forward
    assert model.batch_forward(x1.astype("float32")) == model.forward   # another dtype
