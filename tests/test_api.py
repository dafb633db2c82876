"""The public API contract, the backend switch, doctor and the command line."""
import subprocess
import sys

import numpy as np
import pytest

import nnbook as nb


def test_contract_names_exist():
    for name in ["seed", "use", "xp", "to_numpy", "doctor", "Sequential", "Dense", "ReLU", "Sigmoid",
                 "Tanh", "Identity", "SoftmaxCrossEntropy", "BinaryCrossEntropy", "MSE", "SGD",
                 "fit", "gradcheck", "neurons", "data", "check_layer", "rel_error"]:
        assert hasattr(nb, name), name
    assert nb.xp is np
    assert callable(nb.data.load_mnist)


def test_contract_example_runs():
    nb.seed(0)
    X = np.random.default_rng(0).random((256, 784), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 10, 256)
    model = nb.Sequential(nb.Dense(784, 256), nb.ReLU(), nb.Dense(256, 10))
    loss = nb.SoftmaxCrossEntropy()
    logits = model.forward(X)
    L = loss.forward(logits, y)
    assert logits.shape == (256, 10) and np.isfinite(L)
    model.backward(loss.backward())
    opt = nb.SGD(model.parameters(), lr=0.1)
    opt.step()
    opt.zero_grad()
    hist = nb.fit(model, loss, opt, X, y, epochs=2, batch_size=128, val=(X[:64], y[:64]),
                  progress=False)
    assert len(hist["val_acc"]) == 2
    assert model[0].params["W"].shape == (784, 256) and model[0].params["b"].shape == (256,)


def test_to_numpy_and_asarray():
    a = np.arange(3.0)
    assert nb.to_numpy(a) is a
    assert np.array_equal(nb.to_numpy([1, 2]), np.array([1, 2]))
    assert nb.asarray([1.0, 2.0]).dtype == np.float64


def test_doctor_reports(capsys):
    info = nb.doctor()
    out = capsys.readouterr().out
    for key in ("python", "numpy", "cupy", "gpu_works", "auto_backend", "mnist", "numba-cuda"):
        assert key in info and key in out
    assert info["auto_backend"] == ("cupy" if nb.gpu_available() else "numpy")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "nnbook", *args], capture_output=True, text=True,
                          timeout=120)


def test_cli_help_and_errors():
    r = _cli("--help")
    assert r.returncode == 0 and "doctor" in r.stdout and "train" in r.stdout
    for sub in (["doctor", "--help"], ["train", "--help"], ["data", "fetch", "--help"]):
        assert _cli(*sub).returncode == 0
    r = _cli("bench", "no-such-suite")
    assert r.returncode == 2 and "invalid choice: 'no-such-suite'" in r.stderr
    assert "Traceback" not in r.stderr
    r = _cli("bench", "--help")                # the suites are listed
    assert r.returncode == 0 and all(s in r.stdout for s in ("mlp", "lenet5", "peak"))
    r = _cli("train", "--help")                # every flag explained, defaults shown
    assert "(default: 32)" in r.stdout and "samples per SGD step" in r.stdout
    r = _cli("train", "mlp", "--device", "tpu")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_cli_doctor():
    r = _cli("doctor")
    assert r.returncode == 0 and "auto_backend" in r.stdout


@pytest.mark.slow
def test_cli_train_mlp_small():
    try:
        nb.data.load_mnist()
    except nb.data.MnistError:
        pytest.skip("MNIST not fetched")
    r = _cli("train", "mlp", "--epochs", "1", "--limit", "5000", "--quiet")
    assert r.returncode == 0, r.stderr
    test_line = next(l for l in r.stdout.splitlines() if l.startswith("test (final weights)"))
    acc = float(test_line.split("acc")[1].split()[0])
    assert "last epoch (mean over its batches)" in r.stdout
    assert acc > 0.85, r.stdout


def test_save_load_keeps_batchnorm_running_statistics(tmp_path):
    nb.seed(0)
    m = nb.Sequential(nb.Conv2D(1, 2, 3), nb.BatchNorm2d(2), nb.ReLU(), nb.Flatten(),
                      nb.Dense(2 * 4 * 4, 3))
    X = np.random.default_rng(0).random((4, 1, 6, 6)).astype("float32")
    m.forward(X)
    m.forward(X * 2)
    m.eval()
    m.save(tmp_path / "m.npz")
    m2 = nb.load_model(tmp_path / "m.npz")
    m2.eval()
    assert "1.running_mean" in m.state_dict()
    np.testing.assert_array_equal(m.predict(X), m2.predict(X))


def test_fit_checks_targets_without_touching_batchnorm_statistics():
    nb.seed(0)
    m = nb.Sequential(nb.Conv2D(1, 2, 3), nb.BatchNorm2d(2), nb.ReLU(), nb.Flatten(),
                      nb.Dense(2 * 2 * 2, 3))
    X = np.random.default_rng(1).random((8, 1, 4, 4)).astype("float32")
    before = nb.to_numpy(m.layers[1].buffers["running_mean"]).copy()
    with pytest.raises(ValueError):
        nb.fit(m, nb.SoftmaxCrossEntropy(), nb.SGD(m.parameters(), lr=0.1), X,
               np.full(8, 7), epochs=1, progress=False)   # labels out of range
    np.testing.assert_array_equal(nb.to_numpy(m.layers[1].buffers["running_mean"]), before)


def test_fit_discards_gradients_left_by_a_manual_backward():
    X = np.random.default_rng(2).random((16, 5)).astype("float32")
    y = np.arange(16) % 3

    def run(stale):
        nb.seed(0)
        m = nb.mlp([5, 4, 3])
        loss = nb.SoftmaxCrossEntropy()
        if stale:
            loss.forward(m.forward(X * 100), y)
            m.backward(loss.backward())
        nb.fit(m, loss, nb.SGD(m.parameters(), lr=0.1), X, y, epochs=1, batch_size=16,
               shuffle=False, progress=False)
        return m.state_dict()

    a, b = run(False), run(True)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_sgd_default_learning_rate_matches_pytorch():
    torch = pytest.importorskip("torch")
    import inspect
    default = inspect.signature(torch.optim.SGD.__init__).parameters["lr"].default
    m = nb.mlp([2, 2])
    assert nb.SGD(m.parameters()).lr == default


def test_fit_drop_last_leaves_out_the_small_final_batch():
    X = np.random.default_rng(3).random((100, 4)).astype("float32")
    y = np.arange(100) % 3
    seen = []

    class Spy(nb.Layer):                 # a layer the engine does not know: runs as written
        def forward(self, x):
            seen.append(x.shape[0])
            return x

        def backward(self, dout):
            return dout

    nb.seed(0)
    m = nb.Sequential(Spy(), *nb.mlp([4, 5, 3]).layers)
    nb.fit(m, nb.SoftmaxCrossEntropy(), nb.SGD(m.parameters(), lr=0.1), X, y, epochs=2,
           batch_size=32, drop_last=True, progress=False)
    train_batches = [s for s in seen if s != 1]     # the 1-sample target probe is not a batch
    assert train_batches == [32] * 6
    assert list(nb.train.iterate_minibatches(10, 4, shuffle=False, drop_last=True))[-1].tolist() \
        == [4, 5, 6, 7]
    assert len(list(nb.train.iterate_minibatches(3, 4, drop_last=True))) == 1  # n < batch: keep
    with pytest.raises(TypeError, match="drop_last"):
        nb.fit(m, nb.SoftmaxCrossEntropy(), nb.SGD(m.parameters()), X, y, drop_last="yes")
