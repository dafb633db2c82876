"""The GPU comparison harness without a GPU: results schema, report rendering, cuDNN wrapper logic.

The results dicts below are SYNTHETIC -- made-up numbers built by this test to
exercise the validator and the rendering code.  They are never written to
``nnbook/results/`` and say nothing about any GPU.
"""
import copy
import json

import numpy as np
import pytest

from nnbook.bench import cudnn as B
from nnbook.bench import report as R
from nnbook.kernels import cudnn as D


def synthetic_results():
    """A well-formed results dict with invented numbers (SYNTHETIC, for tests only)."""
    layer = dict(layer="resnet-64x56-b32", N=32, C=64, H=56, W=56, K=64, R=3, S=3, stride=1, padding=1)
    lenet = dict(layer="lenet-conv1-b128", N=128, C=1, H=28, W=28, K=6, R=5, S=5, stride=1, padding=2)
    conv, check = [], []
    for L, base in ((layer, 10000.0), (lenet, 500.0)):
        for op in B.OPS:
            for m, f in (("igemm-v3", 0.4), ("im2col+cublas", 0.6), ("cudnn", 1.0), ("direct-v1", 0.1)):
                g = base * f
                conv.append({**L, "op": op, "method": m, "gflops": g, "seconds": 1e9 / (g * 1e9)})
                check.append({"layer": L["layer"], "op": op, "method": m, "rel_error": 1e-7})
    return {
        "schema": B.SCHEMA, "date": "2026-01-01T00:00:00+00:00", "command": "synthetic (test)",
        "env": {"device": "SYNTHETIC GPU", "compute_capability": "9.0", "driver": "0", "cuda_runtime": "0",
                "cudnn": "0", "cudnn_frontend": "0", "cupy": "0", "numba_cuda": "0", "torch": None,
                "nnbook": "0", "tf32": False, "simulated": False, "peak_fp32_gflops": 60000.0,
                "peak_bandwidth_gbs": 3000.0, "sm_count": 132},
        "settings": {"repeats": 20, "warmup": 3, "quick": False},
        "conv": conv, "check": check,
        "gemm": [{"M": 1024, "N": 1024, "K": 1024, "method": m, "seconds": 1e-3, "gflops": g, "rel_error": 1e-7}
                 for m, g in (("sgemm-v5", 15000.0), ("cublas", 25000.0))],
        "epoch": [{"model": "lenet5", "method": m, "seconds": s, "images": 60000, "batch_size": 128,
                   "data": "mnist", "loss": 0.1} for m, s in (("own-igemm", 1.5), ("cudnn", 1.0))],
        "skipped": [{"what": "torch forward", "why": "synthetic"}],
    }


def test_validate_accepts_well_formed_results():
    res = synthetic_results()
    assert B.validate(res) is res
    assert B.validate(json.loads(json.dumps(res)))          # survives a JSON round trip


@pytest.mark.parametrize("breakage,match", [
    (lambda r: r.update(schema="nnbook.cudnn/0"), "schema"),
    (lambda r: r.pop("env"), "env"),
    (lambda r: r["env"].update(tf32=True), "TF32"),
    (lambda r: r["env"].pop("device"), "env.device"),
    (lambda r: r.update(date="yesterday"), "date"),
    (lambda r: r["settings"].update(repeats=0), "settings"),
    (lambda r: r["conv"][0].update(method="magic"), r"conv\[0\] method"),
    (lambda r: r["conv"][1].update(gflops=-1.0), r"conv\[1\] gflops"),
    (lambda r: r["conv"][2].update(gflops=float("nan")), r"conv\[2\] gflops"),
    (lambda r: r["conv"][0].update(op="backward"), "op"),
    (lambda r: r["conv"][0].pop("K"), r"conv\[0\] K"),
    (lambda r: r["check"][0].update(rel_error=None), "rel_error"),
    (lambda r: r["gemm"][0].update(M=0), r"gemm\[0\] M"),
    (lambda r: r["epoch"][0].update(data="imagenet"), "data"),
    (lambda r: r["skipped"].append({"what": 1}), "skipped"),
    (lambda r: r.update(conv={}), "conv: expected a list"),
])
def test_validate_rejects_malformed_results(breakage, match):
    res = copy.deepcopy(synthetic_results())
    breakage(res)
    with pytest.raises(ValueError, match=match):
        B.validate(res)


def test_validate_rejects_non_dict():
    with pytest.raises(ValueError, match="expected a dict"):
        B.validate([])


def test_load_results_missing_file_gives_none(tmp_path):
    assert B.load_results(tmp_path / "absent.json") is None
    p = tmp_path / "r.json"
    p.write_text(json.dumps(synthetic_results()))
    assert B.load_results(p)["env"]["device"] == "SYNTHETIC GPU"


def test_report_tables_on_synthetic_results():
    res = synthetic_results()
    rows = R.conv_table(res, op="forward")
    row = next(r for r in rows if r["layer"] == "resnet-64x56-b32")
    assert row["cudnn"] == 10000.0 and abs(row["im2col+cublas %"] - 60.0) < 1e-9
    assert "cudnn %" not in row
    md = R.markdown(rows)
    assert md.startswith("| layer | op |") and "60.0" in md
    g = R.gemm_table(res)
    assert abs(g[0]["sgemm-v5 %"] - 60.0) < 1e-9
    e = R.epoch_table(res)
    assert e[0]["× cuDNN"] == 1.5
    assert R.check_table(res)[0]["max rel. error"] == 1e-7
    assert "SYNTHETIC GPU" in R.header(res)
    assert R.markdown([]) == "*(no rows)*"


def test_targets_on_synthetic_results():
    t = R.targets(synthetic_results())
    assert [x["met"] for x in t] == [True, True, True]
    assert abs(t[0]["value"] - 0.6) < 1e-12 and abs(t[1]["value"] - 0.4) < 1e-12
    assert abs(t[2]["value"] - 1.5) < 1e-12
    res = synthetic_results()
    res["conv"] = [r for r in res["conv"] if r["method"] != "cudnn"]
    res["epoch"] = []
    assert [x["met"] for x in R.targets(res)] == [None, None, None]


def test_roofline_places_every_method():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    res = synthetic_results()
    ax = R.roofline(res, op="forward")
    labels = ax.get_legend_handles_labels()[1]
    assert {"FP32 roof", "igemm-v3", "im2col+cublas", "cudnn", "direct-v1"} <= set(labels)
    ai = R.arithmetic_intensity(res["conv"][0])
    # 3×3, 64→64 channels, 56², batch 32: 2·32·64·56²·64·9 FLOPs over 4·(x + w + y) bytes
    flops = 2 * 32 * 64 * 56 * 56 * 64 * 9
    assert abs(ai - flops / (4 * (2 * 32 * 64 * 56 * 56 + 64 * 64 * 9))) < 1e-9
    plt.close("all")
    with pytest.raises(ValueError, match="no conv rows"):
        R.roofline({**res, "conv": []})


# ----------------------------------------------------------------------------- cuDNN wrapper without a GPU


def test_describe_graphs():
    p = D.ConvProblem((2, 3, 8, 7), (4, 3, 3, 3), stride=2, padding=1)
    assert p.y_shape == (2, 4, 4, 4)
    f = D.describe("forward", p)
    assert f["node"] == "conv_fprop" and f["inputs"]["image"] == ("X", (2, 3, 8, 7), (168, 56, 7, 1))
    assert f["output"] == ("Y", (2, 4, 4, 4), (64, 16, 4, 1))
    d = D.describe("dgrad", p)
    assert d["node"] == "conv_dgrad" and set(d["inputs"]) == {"loss", "filter"} and d["output"][1] == (2, 3, 8, 7)
    w = D.describe("wgrad", p)
    assert w["node"] == "conv_wgrad" and set(w["inputs"]) == {"image", "loss"} and w["output"][1] == (4, 3, 3, 3)
    assert f["padding"] == [1, 1] and f["stride"] == [2, 2] and f["dilation"] == [1, 1]
    with pytest.raises(ValueError, match="op"):
        D.describe("backward", p)
    with pytest.raises(ValueError, match="input channels"):
        D.ConvProblem((2, 3, 8, 7), (4, 2, 3, 3))


def test_cudnn_without_gpu_raises_a_clear_error():
    if D.available():
        pytest.skip("cuDNN is available here")
    conv = D.CudnnConv((1, 1, 5, 5), (1, 1, 3, 3))
    with pytest.raises(D.CudnnUnavailable, match="pip install"):
        conv.forward(None, None)
    assert D.version() == (None, None)


def test_bench_main_without_gpu_fails_with_one_line(capsys):
    from nnbook.backend import gpu_available
    if gpu_available():
        pytest.skip("a GPU is present")
    assert B.main([]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "CUDA GPU" in err and "\n" not in err


def test_layer_set():
    names = [L["layer"] for L in B.layers()]
    assert names[:2] == ["lenet-conv1-b128", "lenet-conv2-b128"]
    assert "resnet-512x7-b128" in names and len(names) == 10
    assert len(B.layers(quick=True)) == 6


# ----------------------------------------------------------------------------- harness logic on the simulator


def test_harness_runs_on_the_simulator_and_validates():
    # tiny layer, two own methods; cuDNN and PyTorch-CUDA are recorded as skipped
    L = [dict(layer="tiny", N=2, C=2, H=5, W=4, K=3, R=3, S=3, stride=1, padding=1)]
    res = B.run(layer_list=L, methods=("direct-v1", "cudnn"), repeats=1, warmup=1, gemm_sizes=(),
                epoch_methods=(), log=lambda *a: None)
    assert res["env"]["simulated"] is True
    assert {(r["op"], r["method"]) for r in res["conv"]} == {(op, "direct-v1") for op in B.OPS}
    assert all(r["rel_error"] < 1e-5 for r in res["check"])
    assert any(s["what"].startswith("cudnn") for s in res["skipped"])


def test_lenet_step_matches_torch_float64():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    params = B.lenet_init(rng, dtype=np.float64)
    x = rng.uniform(0, 1, (3, 1, 28, 28))
    y = np.array([1, 7, 3])
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                          nn.Linear(84, 10)).double()
    with torch.no_grad():
        for i, (wk, bk) in zip((0, 3), (("W1", "b1"), ("W2", "b2"))):
            model[i].weight.copy_(torch.tensor(params[wk]))
            model[i].bias.copy_(torch.tensor(params[bk]))
        for i, (wk, bk) in zip((7, 9, 11), (("W3", "b3"), ("W4", "b4"), ("W5", "b5"))):
            model[i].weight.copy_(torch.tensor(params[wk].T))   # torch keeps (out, in)
            model[i].bias.copy_(torch.tensor(params[bk]))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    loss_t = nn.CrossEntropyLoss()(model(torch.tensor(x)), torch.tensor(y))
    loss_t.backward()
    opt.step()
    loss = B.lenet_step(params, x, y, B.reference_ops(), lr=0.05)
    assert abs(float(loss) - loss_t.item()) < 1e-12
    for i, wk in zip((0, 3), ("W1", "W2")):
        np.testing.assert_allclose(params[wk], model[i].weight.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(params["W3"], model[7].weight.detach().numpy().T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(params["b1"], model[0].bias.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.gpu
def test_lenet_step_own_kernels_match_reference_on_gpu():
    from nnbook.kernels._common import to_device, to_host
    rng = np.random.default_rng(0)
    p_ref = B.lenet_init(rng)
    p_gpu = {k: to_device(v) for k, v in p_ref.items()}
    x = rng.uniform(0, 1, (16, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    B.lenet_step({k: v.astype(np.float64) for k, v in p_ref.items()}, x.astype(np.float64), y, B.reference_ops())
    for m in ("own-igemm", "own-im2col"):
        q = {k: v.copy() for k, v in p_gpu.items()}
        l_gpu = B.lenet_step(q, to_device(x), to_device(y, np.int64), B.kernel_ops(m))
        l_ref = B.lenet_step({k: v.astype(np.float64) for k, v in p_ref.items()}, x.astype(np.float64), y,
                             B.reference_ops())
        assert abs(float(l_gpu) - float(l_ref)) < 1e-4
        assert all(np.isfinite(to_host(v)).all() for v in q.values())


def test_report_main(tmp_path, capsys):
    assert R.main(["--path", str(tmp_path / "none.json")]) == 1
    p = tmp_path / "r.json"
    p.write_text(json.dumps(synthetic_results()))        # SYNTHETIC numbers, test only
    assert R.main(["--path", str(p)]) == 0
    out = capsys.readouterr().out
    assert "### conv forward" in out and "SYNTHETIC GPU" in out and "| yes |" in out
