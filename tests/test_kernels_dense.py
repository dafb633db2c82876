"""The dense-network CUDA kernels (nnbook.kernels): every version of every kernel
against its NumPy reference -- on the simulator with tiny shapes and ragged edges
(tiny tiles, so several blocks and partial tiles occur), and at full size on a GPU.
Also: KernelDense MLP vs the NumPy MLP (forward, gradients, SGD steps, nb.fit)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnbook as nb
from nnbook.kernels import bias_act, matmul, on_simulator, sgd, softmax_xent
from nnbook.kernels import dense as kd
from nnbook.kernels._common import grid_for

RAGGED = (1, 7, 17, 33)
small = st.integers(min_value=1, max_value=12)


# ------------------------------------------------------------------------------ matmul
@pytest.mark.parametrize("version", matmul.VERSIONS)
@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 17, 33), (33, 7, 1), (17, 1, 7)])
def test_matmul_ragged(version, shape):
    if version == 3 and shape == (7, 17, 33):   # the slowest on the simulator: covered below
        shape = (7, 17, 9)
    assert matmul.check(version, *shape) < matmul.tolerance(shape[2])


@settings(max_examples=4)
@given(M=small, N=small, K=small, version=st.sampled_from([1, 2, 4, 5]))
def test_matmul_hypothesis(M, N, K, version):
    matmul.check(version, M, N, K)


def test_matmul_v3_multiple_k_tiles():
    matmul.check(3, 5, 6, 13)   # K spans 4 tiles of 4, the last one partial


@pytest.mark.parametrize("shape", [(1, 1), (7, 17), (33, 5)])
def test_transpose(shape):
    assert matmul.check_transpose(*shape) == 0.0


def test_matmul_poison_detects_skipped_elements():
    # a "kernel" that forgets the last row must fail the check
    def broken(A, B, C, M, N, K):
        C[: M - 1] = A[: M - 1] @ B
    orig = matmul._kernel_cached
    try:
        matmul._kernel_cached = lambda v, items: broken
        with pytest.raises(AssertionError, match="relative error"):
            matmul.check(1, 5, 4, 3)
    finally:
        matmul._kernel_cached = orig


def test_matmul_errors():
    A = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="B: expected 4 rows"):
        matmul.matmul(A, np.ones((3, 2), np.float32))
    with pytest.raises(TypeError, match="float32"):
        matmul.matmul(A.astype(np.float64), np.ones((4, 2)))
    with pytest.raises(ValueError, match="version"):
        matmul.matmul(A, np.ones((4, 2), np.float32), version=9)


def test_grid_for_covers_ragged_sizes():
    assert grid_for((33, 7), (16, 16)) == (3, 1)
    assert grid_for(1, 256) == (1,)
    assert grid_for((256, 257), (16, 16)) == (16, 17)


# ------------------------------------------------------------------------------ bias_act
@pytest.mark.parametrize("version", bias_act.VERSIONS)
@pytest.mark.parametrize("act", list(bias_act.ACTIVATIONS))
def test_bias_act(version, act):
    for shape in ((1, 1), (7, 17)):
        assert bias_act.check(version, *shape, act) < 1e-5


@pytest.mark.parametrize("version", bias_act.VERSIONS)
def test_bias_act_tall(version):
    bias_act.check(version, 33, 5, "relu")   # several grid rows and atomics per column


# ------------------------------------------------------------------------------ softmax + xent
@pytest.mark.parametrize("version", softmax_xent.VERSIONS)
@pytest.mark.parametrize("shape", [(1, 1), (7, 17), (3, 10)])
def test_softmax_xent(version, shape):
    assert softmax_xent.check(version, *shape, scale=0.5) < 1e-5


def test_softmax_xent_large_logits_are_stable():
    z = np.array([[1000.0, 0.0, -1000.0], [-50.0, 50.0, 0.0]], np.float32)
    y = np.array([0, 2], np.int32)
    for v in softmax_xent.VERSIONS:
        loss, grad, row = softmax_xent.forward_backward(z, y, version=v)
        rl, rrow, rg = softmax_xent.reference(z, y)
        assert np.all(np.isfinite(nb.to_numpy(grad)))
        assert nb.rel_error(nb.to_numpy(row), rrow) < 1e-6


# ------------------------------------------------------------------------------ sgd
@pytest.mark.parametrize("version", sgd.VERSIONS)
@pytest.mark.parametrize("kw", [{}, {"momentum": 0.9}, {"momentum": 0.9, "nesterov": True},
                                {"momentum": 0.5, "dampening": 0.1, "weight_decay": 0.0}])
def test_sgd(version, kw):
    for n in (1, 37):
        assert sgd.check(version, n, **kw) < 1e-6


# ------------------------------------------------------------------------------ KernelDense
def _pair(sizes, activation="relu"):
    nb.seed(3)
    mk = kd.mlp(sizes, activation, engine="kernels")
    nb.seed(3)
    mx = kd.mlp(sizes, activation, engine="xp")
    rng = np.random.default_rng(1)
    dense_x = [l for l in mx if isinstance(l, nb.Dense)]
    for lk, lx in zip(mk, dense_x):   # non-zero biases, the same in both
        b = rng.normal(size=lk.params["b"].shape).astype(np.float32) * 0.1
        lk.params["b"][...] = b
        lx.params["b"][...] = b
    return mk, mx, dense_x


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_kernel_mlp_parity(activation):
    mk, mx, dense_x = _pair([9, 7, 5, 3], activation)
    for a, b in zip(mk.parameters(), mx.parameters()):
        assert np.array_equal(a.value, b.value)      # same seed, same weights
    rng = np.random.default_rng(2)
    X = rng.normal(size=(6, 9)).astype(np.float32)
    y = rng.integers(0, 3, size=6)
    ok, ox = mk.forward(X), mx.forward(X)
    assert nb.rel_error(ok, ox) < 1e-5
    lk, lx = kd.make_loss("kernels"), kd.make_loss("xp")
    assert abs(lk.forward(ok, y) - lx.forward(ox, y)) < 1e-5 * abs(lx.forward(ox, y))
    dk = mk.backward(lk.backward())
    dx = mx.backward(lx.backward())
    assert nb.rel_error(dk, dx) < 1e-5
    for a, b in zip(mk.parameters(), mx.parameters()):
        assert nb.rel_error(a.grad, b.grad) < 1e-5, a


def test_kernel_mlp_sgd_steps_and_fit_match_numpy():
    mk, mx, _ = _pair([6, 5, 3])
    rng = np.random.default_rng(4)
    X = rng.normal(size=(8, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=8)
    ok = kd.make_sgd("kernels", mk.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    ox = kd.make_sgd("xp", mx.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    lk, lx = kd.make_loss("kernels"), kd.make_loss("xp")
    for _ in range(2):
        for m, l, o in ((mk, lk, ok), (mx, lx, ox)):
            o.zero_grad()
            l.forward(m.forward(X), y)
            m.backward(l.backward())
            o.step()
    for a, b in zip(mk.parameters(), mx.parameters()):
        assert nb.rel_error(a.value, b.value) < 1e-5
    # the one training loop of the package runs the kernel model unchanged
    # (zero the gradients first: nb.fit's pre-scaled plain-SGD path does not)
    mk.zero_grad()
    mx.zero_grad()
    nb.seed(0)
    hk = nb.fit(mk, lk, kd.make_sgd("kernels", mk.parameters(), lr=0.1), X, y, epochs=1,
                batch_size=4, progress=False)
    nb.seed(0)
    hx = nb.fit(mx, lx, kd.make_sgd("xp", mx.parameters(), lr=0.1), X, y, epochs=1,
                batch_size=4, progress=False)
    assert abs(hk["loss"][0] - hx["loss"][0]) < 1e-5 * hx["loss"][0]
    for a, b in zip(mk.parameters(), mx.parameters()):
        assert nb.rel_error(a.value, b.value) < 1e-5


def test_kernel_dense_gradients_accumulate_and_save_load(tmp_path):
    nb.seed(0)
    layer = kd.KernelDense(4, 3, activation="relu")
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    layer.forward(x)
    d = np.ones((5, 3), np.float32)
    layer.backward(d)
    g1 = layer.grads["W"].copy()
    layer.forward(x)
    layer.backward(d)
    assert nb.rel_error(layer.grads["W"], 2 * g1) < 1e-6
    model = kd.mlp([4, 3, 2])
    model.save(tmp_path / "m.npz")
    back = nb.load_model(tmp_path / "m.npz")
    assert isinstance(back[0], kd.KernelDense) and back[0].activation == "relu"
    assert nb.rel_error(back.forward(x), model.forward(x)) < 1e-6


def test_kernel_dense_errors():
    with pytest.raises(ValueError, match="float32 only"):
        kd.KernelDense(3, 2, dtype="float64")
    with pytest.raises(ValueError, match="activation"):
        kd.KernelDense(3, 2, activation="gelu")
    with pytest.raises(ValueError, match="engine"):
        kd.mlp([3, 2], engine="cuda")
    with pytest.raises(ValueError, match="versions"):
        kd.mlp([3, 2], versions={"conv": 1})


def test_simulator_flag_matches_environment():
    assert on_simulator() == (not nb.gpu_available()) or not on_simulator()


# ------------------------------------------------------------------------------ GPU, full size
@pytest.mark.gpu
def test_all_versions_full_size_on_gpu():
    assert not on_simulator()
    for v in matmul.VERSIONS:
        for shape in ((1024, 1024, 1024), (1000, 777, 513), (128, 256, 784), (4096, 1, 4096)):
            matmul.check(v, *shape)
    matmul.check_transpose(1000, 777)
    for v in bias_act.VERSIONS:
        for act in bias_act.ACTIVATIONS:
            bias_act.check(v, 4096, 1000, act)
    for v in softmax_xent.VERSIONS:
        softmax_xent.check(v, 4096, 10)
        softmax_xent.check(v, 512, 50257)
    for v in sgd.VERSIONS:
        sgd.check(v, 1_000_003, momentum=0.9)


# ------------------------------------------------------------------------------ chapter helpers
def test_report_helpers_on_a_fake_results_file(tmp_path):
    import json

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nnbook.bench import gpu as bench_gpu
    from nnbook.kernels import report
    assert bench_gpu.load_results(tmp_path / "missing.json") is None
    fake = {"schema": 1, "device": {"name": "Fake GPU"},
            "sgemm": [{"version": v, "M": n, "N": n, "K": n, "seconds": 1.0,
                       "gflops": 100.0 * (v + 1) * n / 256} for v in range(6) for n in (256, 512)],
            "train_step": [{"engine": "kernels", "with_transfer": False, "seconds": 1e-3}],
            "epoch": {"cpu_seconds": 0.7, "gpu_seconds": {"kernels": 0.2}}}
    (tmp_path / "r.json").write_text(json.dumps(fake))
    res = bench_gpu.load_results(tmp_path / "r.json")
    s = report.results_summary(res)
    assert s["size"] == 512 and abs(s["of_cublas"][5] - 6.0) < 1e-12
    assert abs(s["epoch_speedup"]["kernels"] - 3.5) < 1e-12
    report.sgemm_figure(res)
    plt.close("all")


def test_tiling_and_occupancy_arithmetic():
    from nnbook.kernels import report
    _, grid, idle = report.tiling_figure(20, 12, (8, 4), "v2")
    assert grid == (2, 5) and idle == 2 * 5 * 32 - 240
    assert report.warp_sectors("v1")["A"] == 32 and report.warp_sectors("v2")["B"] == 4
    assert report.occupancy(256, 196, 8192) == (1, 0.125)
    import matplotlib.pyplot as plt
    plt.close("all")


def test_bench_gpu_without_gpu_exits_nonzero(capsys):
    from nnbook.bench import gpu as bench_gpu
    if nb.gpu_available():
        pytest.skip("a GPU is present")
    assert bench_gpu.main([]) == 2
    assert "no working CUDA GPU" in capsys.readouterr().err
