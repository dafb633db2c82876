"""Bad input raises ValueError/TypeError naming the argument, the expectation and what came."""
import numpy as np
import pytest

import nnbook as nb

f32 = np.float32


def test_dense_input_errors():
    d = nb.Dense(4, 3)
    with pytest.raises(ValueError, match=r"x: expected a 2-D array, got ndarray of shape \(4,\)"):
        d.forward(np.ones(4, f32))
    with pytest.raises(ValueError, match=r"x: expected shape \(N, 4\).*got ndarray of shape \(2, 5\)"):
        d.forward(np.ones((2, 5), f32))
    with pytest.raises(ValueError, match="x: expected finite values, got 1 NaN/inf"):
        d.forward(np.array([[1, 2, np.nan, 4]], f32))
    with pytest.raises(ValueError, match="x: expected a non-empty array"):
        d.forward(np.ones((0, 4), f32))
    with pytest.raises(TypeError, match="x: expected a floating-point array"):
        d.forward(np.ones((2, 4), np.int64))
    with pytest.raises(TypeError, match="x: expected an array, got list"):
        d.forward([[1.0, 2.0, 3.0, 4.0]])
    d.forward(np.ones((2, 4), f32))
    with pytest.raises(ValueError, match=r"dout: expected shape \(2, 3\)"):
        d.backward(np.ones((2, 4), f32))


def test_constructor_errors():
    with pytest.raises(ValueError, match="init: expected one of"):
        nb.Dense(3, 2, init="xavier-ish")
    with pytest.raises(ValueError, match="in_features: expected an int >= 1, got 0"):
        nb.Dense(0, 2)
    with pytest.raises(TypeError, match="out_features: expected an int, got float"):
        nb.Dense(3, 2.5)
    with pytest.raises(ValueError, match="dtype: expected float32 or float64"):
        nb.Dense(3, 2, dtype="float16")
    with pytest.raises(ValueError, match="backend name: expected one of"):
        nb.use("tensorflow")
    with pytest.raises(ValueError, match="loss: expected one of"):
        nb.get_loss("hinge")
    with pytest.raises(ValueError, match="lr: expected a finite number > 0, got -0.1"):
        nb.SGD(nb.mlp([2, 2]).parameters(), lr=-0.1)
    with pytest.raises(TypeError, match="layers\\[1\\]: expected an nnbook layer"):
        nb.Sequential(nb.Dense(2, 2), "relu")
    with pytest.raises(TypeError, match="seed: expected an int"):
        nb.seed(1.5)


def test_cupy_backend_without_gpu_is_a_clear_error():
    if nb.gpu_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="backend 'cupy' was requested but no working CUDA GPU"):
        nb.use("cupy")
    assert nb.use("auto") is np


def test_loss_target_errors():
    z = np.zeros((3, 4), f32)
    ce = nb.SoftmaxCrossEntropy()
    with pytest.raises(ValueError, match=r"y: labels must lie in \[0, 3\] for 4 classes, got values in \[0, 4\]"):
        ce.forward(z, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match=r"y: labels must lie in \[0, 3\].*\[-1, 1\]"):
        ce.forward(z, np.array([0, 1, -1]))
    with pytest.raises(TypeError, match="y: integer class labels expected.*got dtype float64"):
        ce.forward(z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="y: expected 3 targets to match logits"):
        ce.forward(z, np.array([0, 1]))
    with pytest.raises(ValueError, match="y: each target row must sum to 1"):
        ce.forward(z, np.ones((3, 4), f32))
    with pytest.raises(ValueError, match="logits: expected finite values"):
        ce.forward(np.full((3, 4), np.inf, f32), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="logits: expected a 2-D array"):
        ce.forward(np.zeros(4, f32), np.array([0]))
    with pytest.raises(ValueError, match=r"y: targets must lie in \[0, 1\]"):
        nb.BinaryCrossEntropy().forward(np.zeros((2, 1)), np.array([[2.0], [0.0]]))
    with pytest.raises(ValueError, match=r"y: expected the shape of logits \(2, 1\)"):
        nb.BinaryCrossEntropy().forward(np.zeros((2, 1)), np.zeros(2))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        nb.MSE().backward()


def test_fit_errors():
    model = nb.mlp([4, 3])
    opt = nb.SGD(model.parameters(), lr=0.1)
    loss = nb.SoftmaxCrossEntropy()
    X = np.ones((5, 4), f32)
    with pytest.raises(ValueError, match="y: expected 5 targets to match X"):
        nb.fit(model, loss, opt, X, np.zeros(4, int), progress=False)
    with pytest.raises(ValueError, match=r"y: labels must lie in \[0, 2\]"):
        nb.fit(model, loss, opt, X, np.array([0, 1, 2, 3, 0]), progress=False)
    with pytest.raises(ValueError, match="X: expected finite values"):
        nb.fit(model, loss, opt, np.full((5, 4), np.nan), np.zeros(5, int), progress=False)
    with pytest.raises(ValueError, match=r"X: expected shape \(N, 4\)"):
        nb.fit(model, loss, opt, np.ones((5, 3), f32), np.zeros(5, int), progress=False)
    with pytest.raises(ValueError, match="batch_size: expected an int >= 1, got 0"):
        nb.fit(model, loss, opt, X, np.zeros(5, int), batch_size=0, progress=False)
    with pytest.raises(TypeError, match="loss: expected an nnbook loss"):
        nb.fit(model, "ce", opt, X, np.zeros(5, int), progress=False)
    with pytest.raises(ValueError, match=r"val\[1\]: labels must lie"):
        nb.fit(model, loss, opt, X, np.zeros(5, int), val=(X, np.full(5, 7)), progress=False)


def test_all_finite_detects_nan_and_inf_without_false_alarms():
    from nnbook._checks import all_finite
    big = np.full(4, 3e38, np.float32)                 # finite, though a sum would overflow
    assert all_finite(big) and all_finite(np.zeros(0)) and all_finite(np.ones((3, 2)))
    for bad in (np.nan, np.inf, -np.inf):
        for base in (np.ones(5, np.float32), big.copy()):
            a = base.copy()
            a[2] = bad
            assert not all_finite(a)
    assert not all_finite(np.array([np.inf, -np.inf]))
    # large arrays go block by block: a bad entry in the last, partial block is found
    import nnbook._checks as chk
    n = 3 * chk._FINITE_CHUNK + 4
    a = np.zeros(n, np.float32).reshape(-1, 4)
    assert all_finite(a)
    for pos in (0, chk._FINITE_CHUNK, n - 1):
        b = a.copy()
        b.reshape(-1)[pos] = np.nan
        assert not all_finite(b) and not all_finite(b[::2])   # blocks, and the strided path
    # large arrays first try a dot product with themselves; squares that overflow
    # (finite entries near the top of the range) must not count as NaN/inf
    for dt in (np.float32, np.float64):
        huge = np.full(n, np.finfo(dt).max / 2, dt)
        assert all_finite(huge)
        huge[-1] = -np.inf
        assert not all_finite(huge)
