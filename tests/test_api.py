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
    assert r.returncode == 1 and r.stderr.strip().startswith("error: suite: expected one of")
    assert "Traceback" not in r.stderr
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
    acc = float(r.stdout.split("test acc")[1].split()[0])
    assert acc > 0.85, r.stdout
