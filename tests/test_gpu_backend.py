"""CPU/GPU parity of the whole package on the CuPy backend.

The same weights and the same batch must give the same results on NumPy and on
CuPy: forward values, loss, input and parameter gradients within 1e-5 relative
in float32 for one step (the bar of the GPU issue), and a short training run
that stays within 1e-4 (rounding differences add up over the steps).  One code
path serves both backends, so these tests exercise every branch that only runs
on a GPU (device copies of the batch indices, the two-pass SGD update that
replaces the CPU's fused BLAS call, CuPy's strided views in the row-lowered
convolution, ...).

Every test needs a working CUDA GPU with CuPy and is skipped without one
(``tests/conftest.py``); ``benchmarks/gpu_session.sh`` runs them on a GPU
machine.  They have not yet run on a real GPU: the sessions that wrote this
version had none.
"""
import numpy as np
import pytest

import nnbook as nb
from nnbook import conv as C
from nnbook.lenet import LeNet5

pytestmark = pytest.mark.gpu

TOL_STEP = 1e-5     # one forward/backward step, float32
TOL_TRAIN = 1e-4    # after a few optimizer steps


def _build(backend, build, seed=0):
    nb.use(backend)
    nb.seed(seed)
    return build()


def _step(model, loss, X, y):
    """Forward, loss and backward on the active backend; everything back on the host."""
    model.zero_grad()
    out = model.forward(nb.asarray(X))
    value = float(loss.forward(out, nb.asarray(y)))
    dx = model.backward(loss.backward())
    return (nb.to_numpy(out), value, nb.to_numpy(dx),
            [nb.to_numpy(p.grad) for p in model.parameters()])


def _assert_parity(build, loss_cls, X, y, tol=TOL_STEP):
    res = {}
    for backend in ("numpy", "cupy"):
        model = _build(backend, build)
        assert backend == "numpy" or type(model.parameters()[0].value).__module__.startswith("cupy")
        res[backend] = _step(model, loss_cls(), X, y)
    (o_c, l_c, d_c, g_c), (o_g, l_g, d_g, g_g) = res["numpy"], res["cupy"]
    assert nb.rel_error(o_g, o_c) < tol, "forward"
    assert abs(l_g - l_c) <= tol * abs(l_c), "loss"
    assert nb.rel_error(d_g, d_c) < tol, "input gradient"
    for k, (a, b) in enumerate(zip(g_g, g_c)):
        assert nb.rel_error(a, b) < tol, f"gradient of parameter {k}"


def test_auto_picks_the_gpu_and_doctor_reports_it(capsys):
    assert nb.gpu_available()
    assert nb.use("auto").__name__ == "cupy" and nb.backend_name() == "cupy"
    assert nb.doctor()["auto_backend"] == "cupy"
    assert "cupy" in capsys.readouterr().out


@pytest.mark.parametrize("act", ["ReLU", "Sigmoid", "Tanh"])
def test_mlp_step_parity(act):
    rng = np.random.default_rng(0)
    X = rng.random((64, 20), dtype=np.float32)
    y = rng.integers(0, 5, 64)
    A = getattr(nb, act)
    _assert_parity(lambda: nb.Sequential(nb.Dense(20, 16), A(), nb.Dense(16, 12), A(),
                                         nb.Dense(12, 5)),
                   nb.SoftmaxCrossEntropy, X, y)


def test_bce_and_mse_parity():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((32, 6)).astype(np.float32)
    yb = rng.integers(0, 2, (32, 1)).astype(np.float32)
    _assert_parity(lambda: nb.Sequential(nb.Dense(6, 4), nb.ReLU(), nb.Dense(4, 1)),
                   nb.BinaryCrossEntropy, X, yb)
    ym = rng.standard_normal((32, 3)).astype(np.float32)
    _assert_parity(lambda: nb.Sequential(nb.Dense(6, 4), nb.Tanh(), nb.Dense(4, 3)),
                   nb.MSE, X, ym)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_lenet5_step_parity(batch_norm):
    rng = np.random.default_rng(2)
    X = rng.random((16, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 16)
    _assert_parity(lambda: LeNet5(batch_norm=batch_norm, dtype="float32"),
                   nb.SoftmaxCrossEntropy, X, y)


@pytest.mark.parametrize("method", ["im2col", "fast"])
def test_conv_and_pool_layers_parity(method):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((4, 3, 11, 10)).astype(np.float32)
    y = rng.integers(0, 4, 4)
    _assert_parity(lambda: nb.Sequential(
        C.Conv2D(3, 5, 3, stride=1, padding=1, method=method), C.MaxPool2D(2), nb.ReLU(),
        # 11x10 -> 11x10 -> 5x5 -> 4x2 -> 2x1
        C.Conv2D(5, 6, (2, 3), stride=(1, 2), method=method), C.AvgPool2D(2), C.Flatten(),
        nb.Dense(6 * 2 * 1, 4)), nb.SoftmaxCrossEntropy, X, y)


@pytest.mark.parametrize("opt", ["sgd", "sgd_momentum", "nesterov", "rmsprop", "adam",
                                 "adamw", "adagrad"])
def test_optimizer_steps_parity(opt):
    make = {"sgd": lambda p: nb.SGD(p, lr=0.1),
            "sgd_momentum": lambda p: nb.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3),
            "nesterov": lambda p: nb.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
            "rmsprop": lambda p: nb.RMSprop(p, lr=0.01),
            "adam": lambda p: nb.Adam(p, lr=0.01),
            "adamw": lambda p: nb.AdamW(p, lr=0.01),
            "adagrad": lambda p: nb.Adagrad(p, lr=0.1)}[opt]
    rng = np.random.default_rng(4)
    X = rng.random((32, 8), dtype=np.float32)
    y = rng.integers(0, 3, 32)
    final = {}
    for backend in ("numpy", "cupy"):
        model = _build(backend, lambda: nb.mlp([8, 6, 3]))
        o, loss = make(model.parameters()), nb.SoftmaxCrossEntropy()
        for _ in range(3):
            o.zero_grad()
            loss.forward(model.forward(nb.asarray(X)), nb.asarray(y))
            model.backward(loss.backward())
            o.step()
        final[backend] = [nb.to_numpy(p.value) for p in model.parameters()]
    for a, b in zip(final["cupy"], final["numpy"]):
        assert nb.rel_error(a, b) < TOL_TRAIN


@pytest.mark.parametrize("lr,momentum", [(0.2, 0.0), (0.05, 0.9)])
def test_fit_parity_and_history(lr, momentum):
    """nb.fit on both backends: same shuffled order (nnbook's seeded generator), same
    training; the CPU's fused BLAS step and the GPU's two-pass step agree."""
    X, y = nb.data.spirals(200, seed=1)
    X = X.astype(np.float32)
    res = {}
    for backend in ("numpy", "cupy"):
        model = _build(backend, lambda: nb.mlp([2, 16, 16, 3]))
        nb.seed(7)
        hist = nb.fit(model, nb.SoftmaxCrossEntropy(),
                      nb.SGD(model.parameters(), lr=lr, momentum=momentum), X, y, epochs=2,
                      batch_size=32, val=(X[:50], y[:50]), progress=False)
        res[backend] = (hist, [nb.to_numpy(p.value) for p in model.parameters()])
    (hc, pc), (hg, pg) = res["numpy"], res["cupy"]
    for k in ("loss", "val_loss"):
        assert np.allclose(hg[k], hc[k], rtol=TOL_TRAIN), k
    for a, b in zip(pg, pc):
        assert nb.rel_error(a, b) < TOL_TRAIN


def test_inputs_stay_untouched_and_results_move_to_the_host(tmp_path):
    X = np.random.default_rng(5).random((40, 4), dtype=np.float32)
    y = np.arange(40) % 3
    X0, y0 = X.copy(), y.copy()
    model = _build("cupy", lambda: nb.mlp([4, 5, 3]))
    nb.fit(model, nb.SoftmaxCrossEntropy(), nb.SGD(model.parameters(), lr=0.1), X, y,
           epochs=1, batch_size=8, progress=False)
    assert np.array_equal(X, X0) and np.array_equal(y, y0)
    ev = nb.evaluate(model, nb.SoftmaxCrossEntropy(), X, y)
    path = tmp_path / "gpu_model.npz"
    model.save(path)
    out_gpu = nb.to_numpy(model.forward(nb.asarray(X)))
    nb.use("numpy")
    back = nb.load_model(path)
    assert nb.rel_error(back.forward(X), out_gpu) < TOL_STEP
    assert np.isclose(nb.evaluate(back, nb.SoftmaxCrossEntropy(), X, y)[0], ev[0], rtol=TOL_STEP)


def test_bad_input_on_the_gpu_backend_is_named():
    nb.use("cupy")
    model = nb.mlp([4, 3])
    with pytest.raises(TypeError, match="x"):
        model.forward(np.zeros((2, 4), np.float32))          # a host array on the GPU backend
    with pytest.raises(ValueError, match="x"):
        model.forward(nb.asarray(np.zeros((2, 5), np.float32)))
