"""Containers and ready-made models: :class:`Sequential`, :func:`mlp`, save/load."""
from __future__ import annotations

import json
import os

import numpy as np

from ._checks import check_array, describe
from .backend import asarray, get_xp, to_numpy
from .layers import LAYERS, Dense, Layer

__all__ = ["Sequential", "mlp", "load_model", "register_layer"]


def register_layer(cls):
    """Make a layer class known to :func:`load_model` (usable as a decorator)."""
    LAYERS[cls.__name__] = cls
    return cls


class Sequential(Layer):
    """Layers applied one after the other.

    ``forward`` checks the network's input once, then runs each layer's
    unchecked ``_forward``; ``backward(dout)`` runs the layers in reverse and
    returns dE/dx (``need_input_grad=False`` skips that last, unused product,
    as training does).
    """

    def __init__(self, *layers):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, l in enumerate(layers):
            if not isinstance(l, Layer):
                raise TypeError(f"layers[{i}]: expected an nnbook layer, got {type(l).__name__}")
        if not layers:
            raise ValueError("layers: expected at least one layer, got none")
        self.layers = list(layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    @property
    def dtype(self):
        for p in self.parameters():
            return p.value.dtype
        return None

    def _check_input(self, x):
        self.layers[0]._check_input(x)

    def _forward(self, x):
        for l in self.layers:
            x = l._forward(x)
        self._out_shape = x.shape
        return x

    def backward(self, dout, need_input_grad=True):
        if self._out_shape is None:
            raise RuntimeError("Sequential.backward called before forward")
        check_array("dout", dout, floating=True)
        if tuple(dout.shape) != tuple(self._out_shape):
            raise ValueError(f"dout: expected shape {tuple(self._out_shape)} (the output of the "
                             f"last forward), got {describe(dout)}")
        return self._backward(dout, need_input_grad)

    def _backward(self, dout, need_dx=True):
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            dout = self.layers[i]._backward(dout, need_dx=need_dx or i > 0)
        return dout

    def parameters(self):
        return [p for l in self.layers for p in l.parameters()]

    def _set_reuse(self, flag):
        """Let layers write outputs into persistent buffers (training loops only:
        an output is then overwritten by the next forward)."""
        from . import conv  # noqa: PLC0415
        from .layers import ReLU  # noqa: PLC0415
        self._reuse = bool(flag)
        prev = None
        for l in self.layers:
            # ReLU works in place on its input: only safe on a Dense's scratch output
            l._set_reuse(flag and (not isinstance(l, ReLU) or type(prev) is Dense))
            prev = l
        # a stride-1 Conv2D followed by a 2x2 MaxPool2D computes both in one (NumPy)
        ids = [id(l) for l in self.layers]
        fuse = flag and conv._FUSE_CONV_POOL and get_xp() is np
        for l, nxt in zip(self.layers, self.layers[1:] + [None]):
            if type(l) is conv.MaxPool2D:
                # the next forward decides afresh; _fused still describes the last one,
                # so a backward right after training matches its caches
                l._passthrough = None
            if type(l) is conv.Conv2D:
                ok = (fuse and type(nxt) is conv.MaxPool2D and l.method == "fast"
                      and l.stride == (1, 1) and nxt.kernel_size == (2, 2)
                      and nxt.stride == (2, 2) and ids.count(id(l)) == 1
                      and ids.count(id(nxt)) == 1)
                l._pool_next = nxt if ok else None

    def zero_grad(self):
        for l in self.layers:
            l.zero_grad()

    def train(self, mode=True):
        self.training = bool(mode)
        for l in self.layers:
            l.train(mode)
        return self

    def predict(self, X, batch_size=1024):
        """Outputs (logits) for X, computed in batches without keeping caches for backward."""
        self._check_input(X)
        outs = [self._forward(X[i:i + batch_size]) for i in range(0, X.shape[0], batch_size)]
        return get_xp().concatenate(outs)

    def num_parameters(self):
        return int(sum(int(np.prod(p.shape)) for p in self.parameters()))

    def config(self):
        return {"layers": [{"type": type(l).__name__, **l.config()} for l in self.layers]}

    def __repr__(self):
        inner = "\n".join(f"  ({i}) {l!r}" for i, l in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"

    # persistence ----------------------------------------------------------------------
    def _state_slots(self):
        # "i.name" -> (dict holding it, name): parameters and buffers (BatchNorm's
        # running statistics), which a saved model needs to predict the same way
        slots = {}
        for i, l in enumerate(self.layers):
            for k in l.params:
                slots[f"{i}.{k}"] = (l.params, k)
            for k in getattr(l, "buffers", {}) or {}:
                slots[f"{i}.{k}"] = (l.buffers, k)
        return slots

    def state_dict(self):
        """Host copies of every parameter and buffer, keyed ``"<layer index>.<name>"``."""
        return {key: to_numpy(d[k]).copy() for key, (d, k) in self._state_slots().items()}

    def load_state_dict(self, state):
        own = self._state_slots()
        missing = sorted(set(own) - set(state))
        extra = sorted(set(state) - set(own))
        if missing or extra:
            raise ValueError(f"state: keys do not match the model (missing {missing}, "
                             f"unexpected {extra})")
        for key, (d, k) in own.items():
            v = np.asarray(state[key])
            if v.shape != tuple(d[k].shape):
                raise ValueError(f"state[{key!r}]: expected shape {tuple(d[k].shape)}, "
                                 f"got {v.shape}")
            d[k] = asarray(v.astype(d[k].dtype))
        return self

    def save(self, path):
        """Save architecture and weights to a ``.npz`` file (reload with :func:`load_model`)."""
        path = os.fspath(path)
        np.savez(path, __config__=np.array(json.dumps(self.config())), **self.state_dict())

    def load(self, path):
        """Load weights saved by :meth:`save` into this (same-shaped) model."""
        with np.load(os.fspath(path), allow_pickle=False) as f:
            return self.load_state_dict({k: f[k] for k in f.files if k != "__config__"})


def load_model(path):
    """Rebuild a :class:`Sequential` saved with :meth:`Sequential.save`."""
    with np.load(os.fspath(path), allow_pickle=False) as f:
        if "__config__" not in f.files:
            raise ValueError(f"path: {path} holds no nnbook model config")
        cfg = json.loads(str(f["__config__"]))
        layers = []
        for spec in cfg["layers"]:
            spec = dict(spec)
            cls = LAYERS.get(spec.pop("type"))
            if cls is None:
                raise ValueError(f"path: unknown layer type in {path}")
            if cls is Dense:
                spec["init"] = "zeros"   # weights come from the file
            layers.append(cls(**spec))
        model = Sequential(*layers)
        return model.load_state_dict({k: f[k] for k in f.files if k != "__config__"})


def mlp(sizes, activation="relu", init="he", dtype=None):
    """``mlp([784, 256, 128, 10])``: Dense layers with ``activation`` between them
    (none after the last; pair it with a loss that takes logits)."""
    from .layers import ReLU, Sigmoid, Tanh  # noqa: PLC0415
    acts = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh}
    if activation not in acts:
        raise ValueError(f"activation: expected one of {tuple(acts)}, got {activation!r}")
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes: expected at least two layer sizes, got {sizes}")
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Dense(a, b, init=init, dtype=dtype))
        if i < len(sizes) - 2:
            layers.append(acts[activation]())
    return Sequential(*layers)


def __getattr__(name):
    # ``nb.models.LeNet5`` lives in nnbook.lenet (which imports this module).
    if name == "LeNet5":
        from .lenet import LeNet5  # noqa: PLC0415
        return LeNet5
    raise AttributeError(f"module 'nnbook.models' has no attribute {name!r}")
