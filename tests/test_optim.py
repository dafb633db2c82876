"""nnbook.optim against torch.optim, step by step, in float64.

Each optimizer runs 25 steps on the parameters of two Dense layers.  The
gradient at every step depends on the current parameters (a random quadratic
plus noise), so any difference in an update - or in the state it keeps -
compounds and shows.  Both sides see the same arrays; the parameters must
agree to a relative 1e-10 after every step.
"""
import numpy as np
import pytest

import nnbook as nb
from nnbook.optim import SGD, Adagrad, Adam, AdamW, RMSprop

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.torch

N_STEPS = 25


def _layers():
    nb.seed(1)
    return [nb.Dense(5, 4, init="glorot", dtype="float64"),
            nb.Dense(4, 3, init="he", dtype="float64")]


def _grad_fn(shapes, seed=0):
    """g_t(p) = c ⊙ p + noise_t: a quadratic's gradient plus per-step noise."""
    rng = np.random.default_rng(seed)
    curv = [rng.uniform(0.1, 3.0, size=s) for s in shapes]
    noise = [[rng.normal(size=s) for s in shapes] for _ in range(N_STEPS)]
    return lambda t, i, p: curv[i] * p + noise[t][i]


def run_both(nb_cls, torch_cls, kw, torch_kw=None, hook=None):
    """Run nnbook's and torch's optimizer side by side; return the worst rel. error."""
    layers = _layers()
    params = [p for layer in layers for p in layer.parameters()]
    tparams = [torch.tensor(p.value.copy(), requires_grad=True) for p in params]
    opt = nb_cls(params, **kw)
    topt = torch_cls(tparams, **(kw if torch_kw is None else torch_kw))
    gfn = _grad_fn([p.shape for p in params])
    worst = 0.0
    for t in range(N_STEPS):
        for i, (p, tp) in enumerate(zip(params, tparams)):
            p.layer.grads[p.name] = gfn(t, i, p.value)
            tp.grad = torch.from_numpy(gfn(t, i, tp.detach().numpy()))
        if hook is not None:
            hook(t, opt, topt)
        opt.step()
        topt.step()
        for p, tp in zip(params, tparams):
            want = tp.detach().numpy()
            err = np.max(np.abs(p.value - want)) / max(np.max(np.abs(want)), 1e-300)
            assert err < 1e-10, f"step {t + 1}: relative error {err:.3g}"
            worst = max(worst, err)
    return worst


SGD_CASES = [
    dict(lr=0.05),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.02, momentum=0.9, dampening=0.5),
    dict(lr=0.02, momentum=0.9, nesterov=True),
    dict(lr=0.02, momentum=0.8, weight_decay=0.1),
    dict(lr=0.01, momentum=0.95, nesterov=True, weight_decay=0.05),
    dict(lr=0.03, weight_decay=0.2),
]


@pytest.mark.parametrize("kw", SGD_CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_sgd_matches_torch(kw):
    run_both(SGD, torch.optim.SGD, kw)


RMS_CASES = [
    dict(lr=0.01),
    dict(lr=0.01, alpha=0.9, eps=1e-6),
    dict(lr=0.005, centered=True),
    dict(lr=0.005, momentum=0.9),
    dict(lr=0.005, momentum=0.5, centered=True, weight_decay=0.1),
    dict(lr=0.01, weight_decay=0.3),
]


@pytest.mark.parametrize("kw", RMS_CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_rmsprop_matches_torch(kw):
    run_both(RMSprop, torch.optim.RMSprop, kw)


ADAM_CASES = [
    dict(lr=0.001),
    dict(lr=0.05),
    dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, betas=(0.0, 0.9)),
]


@pytest.mark.parametrize("kw", ADAM_CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_adam_matches_torch(kw):
    run_both(Adam, torch.optim.Adam, kw)


@pytest.mark.parametrize("kw", [dict(lr=0.01), dict(lr=0.01, weight_decay=0.5),
                                dict(lr=0.05, betas=(0.5, 0.9), weight_decay=0.0)],
                         ids=["default-wd", "wd=0.5", "wd=0"])
def test_adamw_matches_torch(kw):
    run_both(AdamW, torch.optim.AdamW, kw)


def test_adamw_is_not_adam_with_l2():
    """Decoupled decay differs from L2 in the gradient: AdamW(wd) != Adam(wd)."""
    layers = _layers()
    params = [p for layer in layers for p in layer.parameters()]
    start = [p.value.copy() for p in params]
    gfn = _grad_fn([p.shape for p in params])
    ends = []
    for cls in (Adam, AdamW):
        for p, s in zip(params, start):
            p.value = s.copy()
        opt = cls(params, lr=0.01, weight_decay=0.5)
        for t in range(5):
            for i, p in enumerate(params):
                p.layer.grads[p.name] = gfn(t, i, p.value)
            opt.step()
        ends.append([p.value.copy() for p in params])
    assert max(np.max(np.abs(a - b)) for a, b in zip(*ends)) > 1e-4


@pytest.mark.parametrize("kw", [dict(lr=0.1), dict(lr=0.05, eps=1e-6, weight_decay=0.1)],
                         ids=["default", "wd"])
def test_adagrad_matches_torch(kw):
    run_both(Adagrad, torch.optim.Adagrad, kw)


def test_lr_changed_between_steps_matches_torch():
    """Schedules rewrite ``lr`` between steps; the optimizers must read it each step."""
    def hook(t, opt, topt):
        lr = 0.05 * 0.9 ** t
        opt.lr = lr
        topt.param_groups[0]["lr"] = lr
    run_both(SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True), hook=hook)
    run_both(Adam, torch.optim.Adam, dict(lr=0.05), hook=hook)


def test_training_a_model_matches_torch():
    """End to end: real back-propagated gradients of an MLP, Adam, 20 steps."""
    nb.seed(3)
    model = nb.mlp([6, 8, 3], activation="tanh", init="glorot", dtype="float64")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 6))
    y = rng.integers(0, 3, size=16)
    tm = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    with torch.no_grad():
        for tl, nl in zip((tm[0], tm[2]), (model[0], model[2])):
            tl.weight.copy_(torch.from_numpy(nl.params["W"].T.copy()))
            tl.bias.copy_(torch.from_numpy(nl.params["b"].copy()))
    loss = nb.SoftmaxCrossEntropy()
    opt = nb.Adam(model.parameters(), lr=0.01)
    topt = torch.optim.Adam(tm.parameters(), lr=0.01)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(20):
        loss.forward(model.forward(X), y)
        model.backward(loss.backward())
        opt.step()
        opt.zero_grad()
        topt.zero_grad()
        torch.nn.functional.cross_entropy(tm(Xt), yt).backward()
        topt.step()
    for tl, nl in zip((tm[0], tm[2]), (model[0], model[2])):
        W = tl.weight.detach().numpy().T
        assert nb.rel_error(nl.params["W"], W) < 1e-10


# ------------------------------------------------------------------------------------
# defaults and input validation
# ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,cls,tcls", [
    ("RMSprop", RMSprop, "RMSprop"), ("Adam", Adam, "Adam"), ("AdamW", AdamW, "AdamW"),
    ("Adagrad", Adagrad, "Adagrad")])
def test_defaults_match_torch(name, cls, tcls):
    import inspect
    ours = inspect.signature(cls.__init__).parameters
    theirs = inspect.signature(getattr(torch.optim, tcls).__init__).parameters
    for k in ("lr", "alpha", "eps", "betas", "weight_decay", "momentum", "centered"):
        if k in ours and k in theirs:
            assert ours[k].default == theirs[k].default, (name, k)


def _params():
    return nb.Dense(3, 2, dtype="float64").parameters()


@pytest.mark.parametrize("make,exc,words", [
    (lambda: SGD([], lr=0.1), ValueError, "params"),
    (lambda: SGD([np.zeros(3)], lr=0.1), TypeError, "params[0]"),
    (lambda: SGD(_params(), lr=-0.1), ValueError, "lr"),
    (lambda: SGD(_params(), lr=0.0), ValueError, "lr"),
    (lambda: SGD(_params(), lr="0.1"), TypeError, "lr"),
    (lambda: SGD(_params(), lr=float("nan")), ValueError, "lr"),
    (lambda: SGD(_params(), lr=0.1, momentum=-0.5), ValueError, "momentum"),
    (lambda: SGD(_params(), lr=0.1, nesterov=True), ValueError, "nesterov"),
    (lambda: SGD(_params(), lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     ValueError, "nesterov"),
    (lambda: SGD(_params(), lr=0.1, weight_decay=-1), ValueError, "weight_decay"),
    (lambda: RMSprop(_params(), eps=-1e-8), ValueError, "eps"),
    (lambda: Adam(_params(), betas=(1.0, 0.999)), ValueError, "betas"),
    (lambda: Adam(_params(), betas=(0.9, -0.1)), ValueError, "betas"),
    (lambda: AdamW(_params(), weight_decay=-0.01), ValueError, "weight_decay"),
    (lambda: Adagrad(_params(), lr=-1.0), ValueError, "lr"),
])
def test_input_validation(make, exc, words):
    with pytest.raises(exc) as e:
        make()
    assert words in str(e.value)


def test_step_does_not_touch_gradients():
    params = _params()
    for p in params:
        p.layer.grads[p.name] = np.ones(p.shape)
    g = [p.grad.copy() for p in params]
    opt = Adam(params, lr=0.1, weight_decay=0.1)
    opt.step()
    assert all(np.array_equal(a, p.grad) for a, p in zip(g, params))
