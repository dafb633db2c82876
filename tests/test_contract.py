"""The layer contract and the defects of issue 13, one test each.

A layer written as the ``nb.Layer`` docstring says (public forward/backward,
params/grads, config) must work everywhere; the containers and the training loop
must never give a silently wrong answer.
"""
import json
import os
import warnings

import numpy as np
import pytest

import nnbook as nb
from helpers import assert_close


class Scale(nb.Layer):
    """out = a * x with a learned per-feature scale (the docstring's pattern)."""

    def __init__(self, n, init=1.0):
        super().__init__()
        self.n, self.init = n, init
        self.params["a"] = np.full(n, init, dtype=nb.get_default_dtype())
        self.grads["a"] = np.zeros(n, dtype=nb.get_default_dtype())

    def forward(self, x):
        self.x = x
        return x * self.params["a"]

    def backward(self, dout):
        self.grads["a"] += (dout * self.x).sum(axis=0)
        return dout * self.params["a"]

    def config(self):
        return {"n": self.n, "init": self.init}


class Square(nb.Layer):                  # no parameters, no constructor arguments
    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, dout):
        return 2 * self.x * dout


def _data(n=120, seed=0):
    X, y = nb.data.spirals(n, seed=seed)
    return X.astype(nb.get_default_dtype()), y


# 1. ---------------------------------------------------------------- the user-layer contract
def test_a_user_layer_works_on_its_own_with_the_base_class_checks():
    nb.set_default_dtype("float64")
    layer = Scale(3, 0.5)
    with pytest.raises(RuntimeError, match="Scale.backward called before forward"):
        layer.backward(np.ones((2, 3)))
    out = layer(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"dout: expected shape \(2, 3\)"):
        layer.backward(np.ones((2, 4)))
    with pytest.raises(TypeError, match="x: expected a floating-point array"):
        layer.forward(np.ones((2, 3), dtype=int))
    assert_close(layer.backward(np.ones_like(out)), np.full((2, 3), 0.5), 1e-15)
    assert nb.check_layer(Scale(3, 0.7), np.random.default_rng(0).normal(size=(4, 3))).ok


@pytest.mark.parametrize("opt", ["SGD", "momentum", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_a_user_layer_trains_in_fit_with_every_optimizer(opt, tmp_path):
    nb.set_default_dtype("float64")
    X, y = _data()
    nb.seed(0)
    model = nb.Sequential(nb.Dense(2, 16), Scale(16), nb.ReLU(), Square(), nb.Dense(16, 3))
    make = {"SGD": lambda p: nb.SGD(p, lr=0.05), "momentum": lambda p: nb.SGD(p, 0.05, 0.9),
            "Adam": lambda p: nb.Adam(p, 0.01), "AdamW": lambda p: nb.AdamW(p, 0.01),
            "RMSprop": lambda p: nb.RMSprop(p, 0.005), "Adagrad": lambda p: nb.Adagrad(p, 0.05)}
    a0 = model[1].params["a"].copy()
    calls = []
    hist = nb.fit(model, nb.SoftmaxCrossEntropy(), make[opt](model.parameters()), X, y,
                  epochs=3, batch_size=32, val=(X[:40], y[:40]), progress=False,
                  callbacks=[lambda e, h: calls.append(e)])
    assert calls == [0, 1, 2] and len(hist["val_acc"]) == 3
    assert not np.array_equal(model[1].params["a"], a0)          # its parameter was trained
    # the same training through the reference layers gives the same weights
    path = model.save(tmp_path / "m")
    loaded = nb.load_model(tmp_path / "m")
    assert path.endswith(".npz") and type(loaded[1]) is Scale
    assert_close(loaded.predict(X), model.predict(X), 1e-15)
    assert nb.check_model(loaded, nb.SoftmaxCrossEntropy(), X[:5], y[:5]).ok


def test_fit_engine_and_reference_agree_for_a_user_layer():
    nb.set_default_dtype("float64")
    X, y = _data()
    ws = []
    for engine in (True, False):
        nb.seed(0)
        m = nb.Sequential(nb.Dense(2, 16), Scale(16), nb.ReLU(), nb.Dense(16, 3))
        nb.seed(3)
        nb.fit(m, nb.SoftmaxCrossEntropy(), nb.SGD(m.parameters(), lr=0.1), X, y, epochs=2,
               batch_size=32, progress=False, engine=engine)
        ws.append(m.state_dict())
    for k in ws[0]:
        assert_close(ws[0][k], ws[1][k], 1e-12, k)


# 2. ---------------------------------------------------------------- a layer used twice
def test_a_layer_used_twice_is_refused():
    relu = nb.ReLU()
    with pytest.raises(ValueError, match="the same ReLU object is used twice"):
        nb.Sequential(nb.Dense(2, 4), relu, nb.Dense(4, 4), relu)
    d = nb.Dense(4, 4)
    with pytest.raises(ValueError, match="used twice"):
        nb.Sequential(d, nb.Sequential(nb.ReLU(), d))            # across nested models
    m = nb.mlp([2, 4, 3])
    m.layers.append(m.layers[1])                                  # mutated after construction
    X, y = _data()
    with pytest.raises(ValueError, match="used twice"):
        nb.fit(m, nb.SoftmaxCrossEntropy(), nb.SGD(m.parameters()), X, y, progress=False)


# 3. ---------------------------------------------------------------- predict from a callback
def test_predict_from_a_callback_is_not_corrupted_by_training():
    X, y = _data(300)
    nb.seed(1)
    m = nb.mlp([2, 32, 32, 3])
    seen = []

    def cb(epoch, hist):
        seen.append((m.predict(X), m.state_dict()))
    nb.fit(m, nb.SoftmaxCrossEntropy(), nb.SGD(m.parameters(), lr=0.1), X, y, epochs=2,
           batch_size=128, progress=False, callbacks=[cb])
    pred, state = seen[-1]
    assert_close(pred, m.predict(X), 1e-12)
    twin = nb.mlp([2, 32, 32, 3]).load_state_dict(state)     # the weights of that moment
    assert np.array_equal(pred, twin.predict(X))


# 4. ---------------------------------------------------------------- predict in eval mode
def test_predict_runs_in_eval_mode_and_restores_modes():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(64, 5)).astype(np.float32)
    nb.seed(0)
    m = nb.Sequential(nb.Dense(5, 8), nb.BatchNorm1d(8), nb.ReLU(), nb.Dropout(0.5),
                      nb.Dense(8, 3))
    m[1].buffers["running_mean"] += 0.3
    before = {k: v.copy() for k, v in m[1].buffers.items()}
    m.train()
    m[3].eval()                                           # a mode set by hand is kept too
    p1 = m.predict(X)
    assert all(np.array_equal(m[1].buffers[k], before[k]) for k in before)   # stats unmoved
    assert m.training and m[1].training and not m[3].training
    m.eval()
    assert_close(p1, m.forward(X), 1e-6)
    assert np.array_equal(p1, m.predict(X))
    m.train()
    X2, y2 = rng.normal(size=(64, 5)).astype(np.float32), rng.integers(0, 3, 64)
    nb.fit(m, nb.SoftmaxCrossEntropy(), nb.SGD(m.parameters(), lr=0.1), X2, y2, epochs=1,
           progress=False)
    m.eval()
    nb.fit(m, nb.SoftmaxCrossEntropy(), nb.SGD(m.parameters(), lr=0.1), X2, y2, epochs=1,
           progress=False)
    assert not m.training and not m[1].training          # fit gives back the mode it found


# 5. ---------------------------------------------------------------- nested models persist
def test_nested_sequential_saves_and_loads(tmp_path):
    nb.seed(0)
    inner = nb.Sequential(nb.Dense(3, 4), nb.BatchNorm1d(4), nb.ReLU())
    m = nb.Sequential(inner, nb.Sequential(nb.Dense(4, 4), nb.Tanh()), nb.Dense(4, 2))
    m[0][1].buffers["running_var"][...] = 2.0
    x = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    m.save(tmp_path / "nested.npz")
    loaded = nb.load_model(tmp_path / "nested.npz")
    assert isinstance(loaded[0], nb.Sequential) and isinstance(loaded[1][1], nb.Tanh)
    assert_close(loaded.predict(x), m.predict(x), 1e-7)
    assert set(m.state_dict()) == set(loaded.state_dict()) and "0.1.running_var" in m.state_dict()


# 6. ---------------------------------------------------------------- the smaller defects
def test_load_model_does_not_move_the_random_stream(tmp_path):
    nb.seed(0)
    nb.mlp([4, 8, 2]).save(tmp_path / "m")
    nb.seed(5)
    a = nb.get_rng().random()
    nb.seed(5)
    nb.load_model(tmp_path / "m")
    assert nb.get_rng().random() == a


def test_every_callback_is_called_even_after_one_asks_to_stop():
    X, y = _data()
    m = nb.mlp([2, 4, 3])
    calls = []
    hist = nb.fit(m, nb.SoftmaxCrossEntropy(), nb.SGD(m.parameters(), lr=0.1), X, y,
                  epochs=5, progress=False,
                  callbacks=[lambda e, h: calls.append(("stop", e)) or True,
                             lambda e, h: calls.append(("log", e))])
    assert calls == [("stop", 0), ("log", 0)] and len(hist["loss"]) == 1


def test_save_and_load_with_or_without_the_extension(tmp_path):
    m = nb.mlp([3, 2])
    m.save(tmp_path / "x")
    assert os.path.exists(tmp_path / "x.npz")
    for name in ("x", "x.npz"):
        assert np.array_equal(nb.load_model(tmp_path / name)[0].params["W"], m[0].params["W"])
    with pytest.raises(FileNotFoundError, match="no model file"):
        nb.load_model(tmp_path / "missing")


def test_batchnorm_with_a_last_batch_of_one_is_refused_up_front():
    X, y = _data(65)                                     # 65 = 2 * 32 + 1
    m = nb.Sequential(nb.Dense(2, 4), nb.BatchNorm1d(4), nb.ReLU(), nb.Dense(4, 3))
    W0 = m[0].params["W"].copy()
    with pytest.raises(ValueError, match="last batch of every epoch holds one sample"):
        nb.fit(m, nb.SoftmaxCrossEntropy(), nb.SGD(m.parameters()), X, y, batch_size=32,
               progress=False)
    assert np.array_equal(m[0].params["W"], W0)          # nothing trained
    nb.fit(m, nb.SoftmaxCrossEntropy(), nb.SGD(m.parameters()), X, y, batch_size=32,
           drop_last=True, progress=False)
    with pytest.raises(ValueError, match="more than one value per channel"):
        nb.BatchNorm1d(4).forward(np.ones((1, 4), np.float32))


def test_a_diverging_run_stops_with_an_error_naming_epoch_and_batch():
    X, y = _data()
    X = X * 1e3
    nb.seed(0)
    m = nb.mlp([2, 64, 3])
    with np.errstate(all="ignore"):
        with pytest.raises(FloatingPointError, match=r"epoch \d+, batch \d+ of 4"):
            nb.fit(m, nb.SoftmaxCrossEntropy(), nb.SGD(m.parameters(), lr=1e6), X, y,
                   epochs=3, batch_size=32, progress=False)
        nb.seed(0)
        m = nb.mlp([2, 64, 3])
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            h = nb.fit(m, nb.SoftmaxCrossEntropy(), nb.SGD(m.parameters(), lr=1e6), X, y,
                       epochs=3, batch_size=32, progress=False, nonfinite="warn")
    assert len(h["loss"]) == 3
    assert sum("the loss became" in str(x.message) for x in w) == 1
    with pytest.raises(ValueError, match="nonfinite"):
        nb.fit(m, nb.SoftmaxCrossEntropy(), nb.SGD(m.parameters()), X, y, nonfinite="ignore")


def test_a_damaged_model_file_gives_a_value_error_naming_it(tmp_path):
    m = nb.mlp([30, 20, 2])
    path = m.save(tmp_path / "m")
    data = open(path, "rb").read()
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match="truncated.npz"):
        nb.load_model(bad)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="junk.npz"):
        nb.load_model(junk)


def _rewrite_config(src, dst, edit):
    with np.load(src) as f:
        arrays = {k: f[k] for k in f.files}
    cfg = json.loads(str(arrays["__config__"]))
    edit(cfg)
    arrays["__config__"] = np.array(json.dumps(cfg))
    np.savez(dst, **arrays)


def test_a_model_file_cannot_make_load_model_allocate_what_it_does_not_store(tmp_path):
    path = nb.mlp([3, 4, 2]).save(tmp_path / "m")
    huge = tmp_path / "huge.npz"

    def grow(cfg):
        cfg["layers"][0].update(in_features=10 ** 6, out_features=10 ** 6)
    _rewrite_config(path, huge, grow)
    with pytest.raises(ValueError, match=r"huge.npz: Dense at 0 expects W of shape "
                                         r"\(1000000, 1000000\), the file stores \(3, 4\)"):
        nb.load_model(huge)
    conv = nb.Sequential(nb.Conv2D(1, 2, 3), nb.Flatten())
    cpath = conv.save(tmp_path / "c")
    _rewrite_config(cpath, tmp_path / "c2.npz",
                    lambda cfg: cfg["layers"][0].update(out_channels=10 ** 5))
    with pytest.raises(ValueError, match="expects W of shape"):
        nb.load_model(tmp_path / "c2.npz")
    _rewrite_config(path, tmp_path / "unknown.npz",
                    lambda cfg: cfg["layers"][1].update(type="NoSuchLayer"))
    with pytest.raises(ValueError, match="unknown layer type 'NoSuchLayer'"):
        nb.load_model(tmp_path / "unknown.npz")
    _rewrite_config(path, tmp_path / "badarg.npz",
                    lambda cfg: cfg["layers"][1].update(bogus=1))
    with pytest.raises(ValueError, match="cannot build ReLU"):
        nb.load_model(tmp_path / "badarg.npz")


def test_user_layer_names_never_replace_nnbooks_own():
    class Dense(nb.Layer):                                 # a student's own "Dense"
        def forward(self, x):
            return x

        def backward(self, dout):
            return dout
    assert nb.layers.LAYERS["Dense"] is nb.Dense
    assert nb.layers.layer_type_name(Dense).endswith(".Dense") \
        and nb.layers.layer_type_name(Dense) != "Dense"


def test_layers_do_not_modify_their_inputs():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 1, 8, 8))
    for layer in (nb.Conv2D(1, 2, 3, dtype="float64"), nb.MaxPool2D(2), nb.AvgPool2D(2),
                  nb.BatchNorm2d(1, dtype="float64"), nb.ReLU(), nb.LeakyReLU(0.1),
                  nb.Dropout(0.3), nb.Flatten()):
        x0 = x.copy()
        out = layer.forward(x)
        d = rng.normal(size=out.shape)
        d0 = d.copy()
        layer.backward(d)
        assert np.array_equal(x, x0) and np.array_equal(d, d0), type(layer).__name__


def test_dense_input_of_images_suggests_flattening():
    m = nb.mlp([784, 10, 10])
    with pytest.raises(ValueError, match=r"\(200, 28, 28\).*flatten them first"):
        nb.fit(m, nb.SoftmaxCrossEntropy(), nb.SGD(m.parameters(), lr=0.1),
               np.zeros((200, 28, 28), np.float32), np.zeros(200, int), epochs=1,
               progress=False)
