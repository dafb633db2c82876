"""nnbook.schedules: schedules vs torch.optim.lr_scheduler step by step, the
learning-rate range test, gradient clipping vs torch.nn.utils."""
import math

import numpy as np
import pytest

import nnbook as nb
from nnbook.explorers import plot_lr_finder
from nnbook.schedules import (CosineAnnealingLR, ExponentialLR, InverseTimeLR, LRFinderResult,
                              OneCycleLR, StepLR, clip_grad_norm, clip_grad_value, lr_finder)


def _params():
    return nb.Dense(3, 2, dtype="float64").parameters()


# ------------------------------------------------------------------------------------
# schedules without torch
# ------------------------------------------------------------------------------------
def test_closed_forms():
    opt = nb.SGD(_params(), lr=0.5)
    s = InverseTimeLR(opt, k=0.1)
    assert s.get_lr() == 0.5 and opt.lr == 0.5
    for t in range(1, 30):
        s.step()
        assert math.isclose(opt.lr, 0.5 / (1 + 0.1 * t), rel_tol=1e-15)
    assert s.get_last_lr() == [opt.lr]
    opt = nb.SGD(_params(), lr=1.0)
    s = StepLR(opt, step_size=3, gamma=0.5)
    assert list(s.trace(7)) == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    assert opt.lr == 1.0          # trace leaves the optimizer alone


def test_onecycle_shape():
    opt = nb.SGD(_params(), lr=123.0, momentum=0.9)
    s = OneCycleLR(opt, max_lr=1.0, total_steps=100)
    lrs = s.trace()
    assert lrs[0] == pytest.approx(1 / 25) and opt.lr == pytest.approx(1 / 25)
    assert lrs.max() == pytest.approx(1.0) and int(lrs.argmax()) == 29
    assert lrs[-1] == pytest.approx(1 / 25 / 1e4)
    assert np.all(np.diff(lrs[:30]) > 0) and np.all(np.diff(lrs[29:]) < 0)
    assert opt.momentum == 0.95       # momentum starts high while lr starts low
    for _ in range(99):
        s.step()
    with pytest.raises(ValueError, match="total_steps"):
        s.step(); s.step()            # step 100 is allowed (as in PyTorch), 101 is not


# ------------------------------------------------------------------------------------
# schedules vs torch
# ------------------------------------------------------------------------------------
def _torch_pair(kind="sgd", **kw):
    torch = pytest.importorskip("torch")
    w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    if kind == "sgd":
        return nb.SGD(_params(), **kw), torch.optim.SGD([w], **kw)
    return nb.Adam(_params(), **kw), torch.optim.Adam([w], **kw)


def _compare(opt, sched, topt, tsched, n, momentum=None):
    for t in range(n):
        want = topt.param_groups[0]["lr"]
        assert math.isclose(opt.lr, want, rel_tol=1e-12, abs_tol=1e-15), (t, opt.lr, want)
        assert math.isclose(sched.get_lr(), tsched.get_last_lr()[0], rel_tol=1e-12,
                            abs_tol=1e-15)
        if momentum == "momentum":
            assert math.isclose(opt.momentum, topt.param_groups[0]["momentum"], rel_tol=1e-12)
        elif momentum == "betas":
            assert math.isclose(opt.betas[0], topt.param_groups[0]["betas"][0], rel_tol=1e-12)
            assert opt.betas[1] == topt.param_groups[0]["betas"][1]
        topt.step()
        tsched.step()
        sched.step()


@pytest.mark.parametrize("step_size,gamma", [(1, 0.5), (7, 0.1), (10, 0.9)])
def test_steplr_matches_torch(step_size, gamma):
    torch = pytest.importorskip("torch")
    opt, topt = _torch_pair(lr=0.3)
    _compare(opt, StepLR(opt, step_size, gamma), topt,
             torch.optim.lr_scheduler.StepLR(topt, step_size, gamma), 40)


@pytest.mark.parametrize("gamma", [0.95, 0.5])
def test_exponentiallr_matches_torch(gamma):
    torch = pytest.importorskip("torch")
    opt, topt = _torch_pair(lr=0.3)
    _compare(opt, ExponentialLR(opt, gamma), topt,
             torch.optim.lr_scheduler.ExponentialLR(topt, gamma), 40)


@pytest.mark.parametrize("T_max,eta_min", [(10, 0.0), (25, 0.01), (7, 0.001)])
def test_cosine_matches_torch(T_max, eta_min):
    """Also past T_max, where both continue the cosine upwards."""
    torch = pytest.importorskip("torch")
    opt, topt = _torch_pair(lr=0.2)
    _compare(opt, CosineAnnealingLR(opt, T_max, eta_min), topt,
             torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max, eta_min), 3 * T_max)


def test_inverse_time_matches_torch_lambdalr():
    torch = pytest.importorskip("torch")
    opt, topt = _torch_pair(lr=0.2)
    _compare(opt, InverseTimeLR(opt, k=0.3), topt,
             torch.optim.lr_scheduler.LambdaLR(topt, lambda t: 1 / (1 + 0.3 * t)), 40)


ONECYCLE_CASES = [
    dict(max_lr=1.0, total_steps=100),
    dict(max_lr=0.1, total_steps=37, anneal_strategy="linear"),
    dict(max_lr=0.5, epochs=4, steps_per_epoch=13, pct_start=0.25),
    dict(max_lr=0.3, total_steps=60, three_phase=True),
    dict(max_lr=0.3, total_steps=50, three_phase=True, anneal_strategy="linear",
         div_factor=10.0, final_div_factor=100.0),
    dict(max_lr=0.2, total_steps=30, base_momentum=0.8, max_momentum=0.9),
    dict(max_lr=0.2, total_steps=30, cycle_momentum=False),
]


@pytest.mark.parametrize("kw", ONECYCLE_CASES, ids=[str(i) for i in range(len(ONECYCLE_CASES))])
def test_onecycle_matches_torch_sgd(kw):
    torch = pytest.importorskip("torch")
    opt, topt = _torch_pair(lr=0.01, momentum=0.9)
    n = kw.get("total_steps") or kw["epochs"] * kw["steps_per_epoch"]
    _compare(opt, OneCycleLR(opt, **kw), topt, torch.optim.lr_scheduler.OneCycleLR(topt, **kw),
             n, momentum="momentum" if kw.get("cycle_momentum", True) else None)


@pytest.mark.parametrize("kw", ONECYCLE_CASES[:4], ids=[str(i) for i in range(4)])
def test_onecycle_matches_torch_adam_betas(kw):
    torch = pytest.importorskip("torch")
    opt, topt = _torch_pair("adam", lr=0.01)
    n = kw.get("total_steps") or kw["epochs"] * kw["steps_per_epoch"]
    _compare(opt, OneCycleLR(opt, **kw), topt, torch.optim.lr_scheduler.OneCycleLR(topt, **kw),
             n, momentum="betas")


def test_onecycle_training_matches_torch():
    """SGD+Nesterov driven by a one-cycle schedule: parameters agree after every step."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    p = nb.Dense(4, 3, dtype="float64").parameters()
    tp = [torch.tensor(q.value.copy(), requires_grad=True) for q in p]
    opt = nb.SGD(p, lr=0.1, momentum=0.9, nesterov=True)
    topt = torch.optim.SGD(tp, lr=0.1, momentum=0.9, nesterov=True)
    s = OneCycleLR(opt, max_lr=0.2, total_steps=30)
    ts = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=0.2, total_steps=30)
    for _ in range(30):
        for q, tq in zip(p, tp):
            g = rng.normal(size=q.shape)
            q.layer.grads[q.name] = g + q.value
            tq.grad = torch.from_numpy(g + tq.detach().numpy())
        opt.step(); topt.step(); s.step(); ts.step()
        for q, tq in zip(p, tp):
            assert nb.rel_error(q.value, tq.detach().numpy()) < 1e-10


# ------------------------------------------------------------------------------------
# gradient clipping
# ------------------------------------------------------------------------------------
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    torch = pytest.importorskip("torch")
    model = nb.mlp([5, 4, 3], dtype="float64")
    rng = np.random.default_rng(0)
    params = model.parameters()
    grads = [rng.normal(size=q.shape) * 3 for q in params]
    for q, g in zip(params, grads):
        q.layer.grads[q.name] = g.copy()
    tps = [torch.zeros(q.shape, dtype=torch.float64, requires_grad=True) for q in params]
    for tp, g in zip(tps, grads):
        tp.grad = torch.from_numpy(g.copy())
    total = clip_grad_norm(model, max_norm, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tps, max_norm, norm_type)
    assert math.isclose(total, float(ttotal), rel_tol=1e-12)
    for q, tp in zip(params, tps):
        assert nb.rel_error(q.grad, tp.grad.numpy()) < 1e-12
    if max_norm < total:          # the clipped gradients have norm max_norm, same direction
        flat = np.concatenate([q.grad.ravel() for q in params])
        assert np.linalg.norm(flat, norm_type) == pytest.approx(max_norm, rel=1e-5)


def test_clip_grad_value_matches_torch():
    torch = pytest.importorskip("torch")
    params = _params()
    g = [np.linspace(-3, 3, int(np.prod(q.shape))).reshape(q.shape) for q in params]
    for q, a in zip(params, g):
        q.layer.grads[q.name] = a.copy()
    clip_grad_value(params, 1.5)
    for q, a in zip(params, g):
        t = torch.from_numpy(a.copy()).requires_grad_()
        t.grad = torch.from_numpy(a.copy())
        torch.nn.utils.clip_grad_value_([t], 1.5)
        assert np.array_equal(q.grad, t.grad.numpy())


def test_clip_after_zero_grad_is_harmless():
    model = nb.mlp([3, 2], dtype="float64")
    model.zero_grad()                 # read-only broadcast zeros
    assert clip_grad_norm(model, 1.0) == 0.0
    clip_grad_value(model, 1.0)
    assert all(not np.any(q.grad) for q in model.parameters())


def test_clip_nonfinite():
    p = _params()
    p[0].layer.grads["W"] = np.full(p[0].shape, np.inf)
    with pytest.raises(RuntimeError, match="norm"):
        clip_grad_norm(p, 1.0, error_if_nonfinite=True)


# ------------------------------------------------------------------------------------
# learning-rate finder
# ------------------------------------------------------------------------------------
def _blobs(n=256):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=n)
    X = (rng.normal(size=(n, 4)) + 2 * np.eye(3, 4)[y]).astype(np.float32)
    return X, y


def test_lr_finder():
    X, y = _blobs()
    res = lr_finder(lambda: nb.mlp([4, 16, 3]), nb.SoftmaxCrossEntropy(), X, y,
                    start_lr=1e-5, end_lr=1e3, num_iter=120, batch_size=32)
    lrs, losses, lr = res            # unpacks as (lrs, losses, suggested_lr)
    assert isinstance(res, LRFinderResult)
    assert lrs[0] == pytest.approx(1e-5)
    ratios = lrs[1:] / lrs[:-1]
    assert np.allclose(ratios, (1e3 / 1e-5) ** (1 / 119))
    assert res.diverged and len(lrs) < 120      # 1000 is far too large: stopped early
    assert 1e-3 < lr < 1 and lrs[0] <= res.min_loss_lr <= lrs[-1]
    assert lr == res.min_loss_lr / 10 and lrs[0] <= res.valley_lr <= res.min_loss_lr
    assert np.nanmin(losses) < losses[0]
    # the suggestion actually trains
    nb.seed(0)
    m = nb.mlp([4, 16, 3])
    h = nb.fit(m, nb.SoftmaxCrossEntropy(), nb.SGD(m.parameters(), lr=lr, momentum=0.9), X, y,
               epochs=3, batch_size=32, progress=False)
    assert h["loss"][-1] < h["loss"][0]
    import matplotlib
    matplotlib.use("Agg")
    ax = plot_lr_finder(res)
    assert ax.get_xscale() == "log"


def test_lr_finder_is_reproducible():
    X, y = _blobs(128)
    runs = []
    for _ in range(2):
        nb.seed(5)
        runs.append(lr_finder(lambda: nb.mlp([4, 8, 3]), nb.SoftmaxCrossEntropy(), X, y,
                              num_iter=30, batch_size=16))
    assert np.array_equal(runs[0].losses, runs[1].losses)


# ------------------------------------------------------------------------------------
# input validation
# ------------------------------------------------------------------------------------
def _opt():
    return nb.SGD(_params(), lr=0.1)


@pytest.mark.parametrize("make,exc,words", [
    (lambda: StepLR(object(), 3), TypeError, "optimizer"),
    (lambda: StepLR(_opt(), 0), ValueError, "step_size"),
    (lambda: StepLR(_opt(), 2.5), TypeError, "step_size"),
    (lambda: StepLR(_opt(), 2, gamma=-0.1), ValueError, "gamma"),
    (lambda: ExponentialLR(_opt(), gamma=0), ValueError, "gamma"),
    (lambda: InverseTimeLR(_opt(), k=-1), ValueError, "k"),
    (lambda: CosineAnnealingLR(_opt(), T_max=0), ValueError, "T_max"),
    (lambda: CosineAnnealingLR(_opt(), T_max=5, eta_min=-1), ValueError, "eta_min"),
    (lambda: OneCycleLR(_opt(), max_lr=0.1), ValueError, "total_steps"),
    (lambda: OneCycleLR(_opt(), max_lr=-0.1, total_steps=5), ValueError, "max_lr"),
    (lambda: OneCycleLR(_opt(), max_lr=0.1, total_steps=10, pct_start=1.5), ValueError,
     "pct_start"),
    (lambda: OneCycleLR(_opt(), max_lr=0.1, total_steps=10, anneal_strategy="exp"), ValueError,
     "anneal_strategy"),
    (lambda: OneCycleLR(nb.Adagrad(_params()), max_lr=0.1, total_steps=10), ValueError,
     "cycle_momentum"),
    (lambda: OneCycleLR(_opt(), max_lr=0.1, total_steps=10, base_momentum=0.99), ValueError,
     "momentum"),
    (lambda: clip_grad_norm(_params(), -1.0), ValueError, "max_norm"),
    (lambda: clip_grad_norm([np.zeros(3)], 1.0), TypeError, "params[0]"),
    (lambda: clip_grad_norm(_params(), 1.0, norm_type=0), ValueError, "norm_type"),
    (lambda: clip_grad_value(_params(), 0), ValueError, "clip_value"),
    (lambda: lr_finder(None, nb.SoftmaxCrossEntropy(), *_blobs(8)), TypeError, "model_factory"),
    (lambda: lr_finder(lambda: nb.mlp([4, 3]), "ce", *_blobs(8)), TypeError, "loss"),
    (lambda: lr_finder(lambda: nb.mlp([4, 3]), nb.SoftmaxCrossEntropy(), *_blobs(8),
                       start_lr=1.0, end_lr=0.1), ValueError, "end_lr"),
    (lambda: lr_finder(lambda: nb.mlp([4, 3]), nb.SoftmaxCrossEntropy(), *_blobs(8),
                       num_iter=1), ValueError, "num_iter"),
    (lambda: lr_finder(lambda: nb.mlp([5, 3]), nb.SoftmaxCrossEntropy(), *_blobs(8)),
     ValueError, "x"),
    (lambda: plot_lr_finder([1, 2]), TypeError, "result"),
])
def test_input_validation(make, exc, words):
    with pytest.raises(exc) as e:
        make()
    assert words in str(e.value)


# ------------------------------------------------------------------------------------
# the chapter exercises' references agree with the package they teach
# ------------------------------------------------------------------------------------
def test_exercise_references_match_package():
    import pathlib

    from nnbook.exercises.build import load_solutions
    refs = load_solutions(pathlib.Path(__file__).resolve().parents[1] / "book" / "_exercises")
    onecycle = refs["optim.onecycle_lr"].reference
    s = OneCycleLR(nb.SGD(_params(), lr=0.1), max_lr=0.7, total_steps=53)
    assert np.allclose([onecycle(t, 53, 0.7) for t in range(53)], s.trace(), rtol=1e-12)
    rng = np.random.default_rng(0)
    p0, grads = rng.normal(size=5), rng.normal(size=(15, 5))
    for name, make in [("optim.momentum", lambda p: nb.SGD(p, lr=0.1, momentum=0.9)),
                       ("optim.nesterov", lambda p: nb.SGD(p, lr=0.1, momentum=0.9,
                                                           nesterov=True)),
                       ("optim.rmsprop", lambda p: nb.RMSprop(p)),
                       ("optim.adam", lambda p: nb.Adam(p))]:
        layer = nb.Layer()
        layer.params["w"] = p0.copy()
        opt = make(layer.parameters())
        for g in grads:
            layer.grads["w"] = g
            opt.step()
        assert nb.rel_error(layer.params["w"], refs[name].reference(p0, grads)) < 1e-12
    clip = refs["init.clip_by_norm"].reference
    g = rng.normal(size=(2, 3)) * 10
    d = nb.Dense(2, 3, dtype="float64")
    d.grads["W"], d.grads["b"] = g.copy(), np.zeros(3)
    clip_grad_norm(d, 1.0)
    assert nb.rel_error(d.grads["W"].ravel(), clip(g.ravel(), 1.0)) < 1e-5   # PyTorch's +1e-6
