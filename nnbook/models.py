"""Containers and ready-made models: :class:`~nnbook.Sequential`, :func:`~nnbook.mlp`,
:func:`~nnbook.LeNet5`, and saving/loading (:meth:`~nnbook.Sequential.save`,
:func:`~nnbook.load_model`)."""
from __future__ import annotations

import contextlib
import json
import os
import zipfile

import numpy as np

from ._checks import check_array, check_int
from .backend import _state as _backend_state
from .backend import asarray, get_xp, to_numpy
from .conv import Conv2D
from .layers import LAYERS, Dense, Flatten, Layer, ReLU, Sigmoid, Tanh, layer_type_name
from .layers import Dropout
from .norm import BatchNorm1d, BatchNorm2d
from .pool import GlobalAvgPool2D, MaxPool2D
from .residual import BasicBlock, Bottleneck

__all__ = ["Sequential", "mlp", "LeNet5", "ResNet", "ResNet15", "ResNet57", "load_model",
           "flat_layers", "all_layers"]

_FORMAT = 2      # saved-model format: nested containers, "type" names from layer_type_name


def flat_layers(model):
    """The layers of ``model`` in the order they run, nested :class:`Sequential`\\ s
    opened up (a block such as a residual block stays one layer)."""
    if isinstance(model, Sequential):
        return [leaf for l in model.layers for leaf in flat_layers(l)]
    return [model]


def all_layers(model):
    """``model`` and every layer inside it, containers and blocks opened up."""
    return [model, *(l for c in model.children() for l in all_layers(c))]


class Sequential(Layer):
    """Layers applied one after the other: ``forward`` runs them in order,
    ``backward(dout)`` in reverse, and returns dE/dx.

    A layer object may appear only once in a model (also across nested
    Sequentials): a layer keeps its last forward's input for its backward, so a
    second use would overwrite it.  To share weights, build two layers and make
    them hold the same arrays.
    """

    def __init__(self, *layers):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        if not layers:
            raise ValueError("layers: expected at least one layer, got none")
        for i, l in enumerate(layers):
            if not isinstance(l, Layer):
                raise TypeError(f"layers[{i}]: expected an nnbook layer, got {type(l).__name__}")
            if not hasattr(l, "params") or not hasattr(l, "grads"):
                raise TypeError(f"layers[{i}]: {type(l).__name__} has no params/grads: its "
                                f"__init__ must call super().__init__()")
        self.layers = list(layers)
        self.check_unique()

    def check_unique(self):
        """Raise ValueError if a layer object appears twice (see the class docstring)."""
        seen = {}
        for i, l in enumerate(all_layers(self)[1:]):
            if id(l) in seen:
                raise ValueError(
                    f"layers: the same {type(l).__name__} object is used twice (layers "
                    f"{seen[id(l)]} and {i} in depth-first order); a layer keeps the input of "
                    f"its last forward for "
                    f"backward, so each use needs its own object (e.g. two {type(l).__name__}()"
                    f"; to share weights, give both the same params arrays)")
            seen[id(l)] = i

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

    def check_input(self, x):
        first = self.layers[0]
        first.check_input(x)

    def forward(self, x):
        for l in self.layers:
            x = l.forward(x)
        return x

    def backward(self, dout, need_input_grad=True):
        """Backpropagate ``dout`` = dE/d(output) through every layer; returns dE/dx,
        or None with ``need_input_grad=False`` (the first layer then computes only its
        parameter gradients, as a training loop needs)."""
        for l in reversed(self.layers[1:]):
            dout = l.backward(dout)
        if need_input_grad:
            return self.layers[0].backward(dout)
        self.layers[0].backward_params(dout)
        return None

    def backward_params(self, dout):
        self.backward(dout, need_input_grad=False)

    def children(self):
        return list(self.layers)

    @contextlib.contextmanager
    def evaluating(self):
        """Run the body in evaluation mode, then restore every layer's own mode."""
        modes = [(l, l.training) for l in all_layers(self)]
        self.eval()
        try:
            yield self
        finally:
            for l, m in modes:
                l.training = m

    def predict(self, X, batch_size=1024, engine=True):
        """Outputs (logits) for X, in evaluation mode (BatchNorm uses its running
        statistics, Dropout is off), computed in batches; the mode of every layer is
        restored afterwards.  The model's parameters and statistics do not change.
        The batches run through the training engine's ops (the same numbers up to
        float rounding, see :mod:`nnbook.engine`) on NumPy when X has the parameters'
        dtype; ``engine=False``: through the layers' own ``forward``."""
        check_array("X", X, floating=True)
        self.check_input(X)
        with self.evaluating():
            run = self.batch_forward(X, engine)
            outs = [run(X[i:i + batch_size]) for i in range(0, X.shape[0], batch_size)]
        return get_xp().concatenate(outs)

    def batch_forward(self, X, engine=True):
        """A function ``xb -> output`` for batches of X, without a backward pass: the
        engine's forward pass (:class:`nnbook.engine.ForwardPass`, each output a new
        array) on NumPy when ``engine`` and X has the parameters' dtype, else
        :meth:`forward`.  The layers' modes decide how they behave."""
        dtypes = {p.value.dtype for p in self.parameters()}
        if not engine or get_xp() is not np or type(X) is not np.ndarray \
                or dtypes != {X.dtype}:
            return self.forward
        from .engine.walk import ForwardPass  # noqa: PLC0415 (loads numba: on first use)
        run = ForwardPass(flat_layers(self))
        return lambda xb: run(xb).copy()

    def num_parameters(self):
        return int(sum(int(np.prod(p.shape)) for p in self.parameters()))

    def config(self):
        return {"layers": [{"type": layer_type_name(type(l)), **l.config()}
                           for l in self.layers]}

    def __repr__(self):
        inner = "\n".join(f"  ({i}) " + repr(l).replace("\n", "\n  ")
                          for i, l in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"

    # persistence ----------------------------------------------------------------------
    def _state_slots(self):
        # "i.name" (inside containers and blocks: "i.j.name") -> (dict holding it,
        # name): parameters and buffers (BatchNorm's running statistics), which a
        # saved model needs to predict the same way
        slots = {}

        def visit(layer, prefix):
            for k in layer.params:
                slots[f"{prefix}{k}"] = (layer.params, k)
            for k in getattr(layer, "buffers", {}) or {}:
                slots[f"{prefix}{k}"] = (layer.buffers, k)
            for j, c in enumerate(layer.children()):
                visit(c, f"{prefix}{j}.")
        for i, l in enumerate(self.layers):
            visit(l, f"{i}.")
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
        self.zero_grad()
        return self

    def save(self, path):
        """Save architecture and weights to ``path`` (``.npz`` is appended if missing,
        as NumPy does); reload with :func:`load_model`.  Returns the file's path."""
        path = os.fspath(path)
        if not path.endswith(".npz"):
            path += ".npz"
        cfg = {"format": _FORMAT, **self.config()}
        np.savez(path, __config__=np.array(json.dumps(cfg)), **self.state_dict())
        return path

    def load(self, path):
        """Load weights saved by :meth:`save` into this (same-shaped) model."""
        with _open_model_file(path) as (f, name):
            state = {k: f[k] for k in f.files if k != "__config__"}
        return self.load_state_dict(state)


# ------------------------------------------------------------------- loading
def _resolve(path):
    path = os.fspath(path)
    if not os.path.exists(path) and os.path.exists(path + ".npz"):
        path += ".npz"
    return path


@contextlib.contextmanager
def _open_model_file(path):
    name = _resolve(path)
    try:
        f = np.load(name, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"path: no model file {os.fspath(path)!r} "
                                f"(nor {os.fspath(path) + '.npz'!r})") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"path: {name} is not a readable nnbook model file "
                         f"({type(e).__name__}: {e})") from None
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise ValueError(f"path: {name} holds a single array, not an nnbook model")
    try:
        with f:
            yield f, name
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise ValueError(f"path: {name} is damaged ({type(e).__name__}: {e})") from None


@contextlib.contextmanager
def _scratch_rng():
    """Build layers without moving nnbook's random stream (their initial weights are
    overwritten by the file's anyway)."""
    saved = _backend_state["rng"]
    _backend_state["rng"] = np.random.default_rng(0)
    try:
        yield
    finally:
        _backend_state["rng"] = saved


def _build(spec, where, name, shapes):
    """A layer (or nested Sequential) from its saved config; ``shapes``: the stored
    arrays' shapes by key, checked before anything is allocated."""
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise ValueError(f"path: {name}: layer {where} has no valid config")
    spec = dict(spec)
    typ = spec.pop("type")
    if typ == "Sequential":
        layers = spec.get("layers")
        if not isinstance(layers, list) or not layers:
            raise ValueError(f"path: {name}: Sequential {where} lists no layers")
        return Sequential(*[_build(s, f"{where}{i}.", name, shapes)
                            for i, s in enumerate(layers)])
    cls = LAYERS.get(typ)
    if cls is None:
        raise ValueError(f"path: {name}: unknown layer type {typ!r} at {where[:-1] or '0'} "
                         f"(define or import that layer class before load_model)")
    expect = getattr(cls, "_shapes_from_config", None)
    if expect is not None:
        try:
            want = expect(**spec)
        except TypeError as e:
            raise ValueError(f"path: {name}: bad config for {typ} at {where[:-1]}: {e}") from None
        for k, shp in want.items():
            have = shapes.get(f"{where}{k}")
            if have is None or tuple(have) != tuple(shp):
                raise ValueError(f"path: {name}: {typ} at {where[:-1]} expects {k} of shape "
                                 f"{tuple(shp)}, the file stores {have}")
    try:
        return cls(**spec)
    except (TypeError, ValueError) as e:
        raise ValueError(f"path: {name}: cannot build {typ} at {where[:-1]}: {e}") from None


def load_model(path):
    """Rebuild a model saved with :meth:`Sequential.save` (``path`` with or without
    ``.npz``).  A model file is treated as untrusted input: a damaged file or a
    config that does not match the stored arrays raises ValueError naming the file,
    before anything large is allocated.  nnbook's random stream does not move."""
    with _open_model_file(path) as (f, name):
        if "__config__" not in f.files:
            raise ValueError(f"path: {name} holds no nnbook model config")
        try:
            cfg = json.loads(str(f["__config__"]))
        except ValueError as e:
            raise ValueError(f"path: {name}: the model config is not valid JSON ({e})") from None
        if not isinstance(cfg, dict) or not isinstance(cfg.get("layers"), list):
            raise ValueError(f"path: {name}: the model config lists no layers")
        state = {k: f[k] for k in f.files if k != "__config__"}
    shapes = {k: v.shape for k, v in state.items()}
    with _scratch_rng():
        model = _build({"type": "Sequential", "layers": cfg["layers"]}, "", name, shapes)
    try:
        return model.load_state_dict(state)
    except ValueError as e:
        raise ValueError(f"path: {name}: {e}") from None


# ------------------------------------------------------------------- ready-made models
def mlp(sizes, activation="relu", init="he", dtype=None):
    """``mlp([784, 256, 128, 10])``: Dense layers with ``activation`` between them
    (none after the last; pair it with a loss that takes logits)."""
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


def LeNet5(batch_norm=False, pad_input=True, num_classes=10, dtype=None, method="fast"):
    """LeNet-5 (LeCun et al. 1998) in the modernised form of the second thesis's
    Table 2, as a :class:`Sequential` for (N, 1, 28, 28) inputs (``pad_input=True``)
    or (N, 1, 32, 32) inputs (``pad_input=False``).

    Two 5x5 convolutions (6 and 16 channels), each followed by a 2x2 max-pool
    and a ReLU, then dense layers 400 -> 120 -> 84 -> classes; batch
    normalisation after every convolution and hidden dense layer when
    ``batch_norm=True`` (the thesis's variant; the layers before a batch norm
    then have no bias, which the normalisation would cancel).  The original used
    sigmoid-like activations and average pooling; the thesis, like most modern
    versions, uses ReLU and max-pooling.

    Table 2 applies the ReLU before each max-pool; here the pool comes first.
    The two commute — max(relu(a), relu(b)) = relu(max(a, b)) because both are
    non-decreasing, and the gradients agree too (a window whose maximum is <= 0
    gets zero gradient either way) — so the network computes exactly the same
    function, with the ReLU applied to 4x fewer numbers.

    >>> LeNet5().num_parameters()
    61706
    """
    bn = bool(batch_norm)
    bias = not bn
    layers = [Conv2D(1, 6, 5, padding=2 if pad_input else 0, dtype=dtype, method=method,
                     bias=bias)]
    if bn:
        layers.append(BatchNorm2d(6, dtype=dtype))
    layers += [MaxPool2D(2), ReLU(),
               Conv2D(6, 16, 5, dtype=dtype, method=method, bias=bias)]
    if bn:
        layers.append(BatchNorm2d(16, dtype=dtype))
    layers += [MaxPool2D(2), ReLU(), Flatten(), Dense(400, 120, dtype=dtype, bias=bias)]
    if bn:
        layers.append(BatchNorm1d(120, dtype=dtype))
    layers += [ReLU(), Dense(120, 84, dtype=dtype, bias=bias)]
    if bn:
        layers.append(BatchNorm1d(84, dtype=dtype))
    layers += [ReLU(), Dense(84, num_classes, dtype=dtype)]
    return Sequential(*layers)


def ResNet(blocks, channels=(64, 128, 256, 512), block="bottleneck", in_channels=1,
           num_classes=10, input_size=32, stem_channels=64, dropout=0.5, dtype=None):
    """A residual network after the second thesis's Tables 3 and 4.

    Stem: a 7x7 convolution (stride 1, no padding: 32x32 -> 26x26), batch norm,
    ReLU and a 2x2 max-pool (-> 13x13).  Then one stage per entry of ``blocks``:
    ``blocks[s]`` residual blocks with ``channels[s]`` output channels, the first
    block of every stage after the first with stride 2 (13 -> 7 -> 4 -> 2).  Head:
    global average pooling, BatchNorm1d, Dropout(``dropout``) and one Dense layer.
    ``block``: "bottleneck" (1x1-3x3-1x1, width channels/4) or "basic" (3x3-3x3).

    Where the thesis's tables are silent or inconsistent we follow He et al. (2016)
    and torchvision: the bottleneck's inner width is a quarter of its output (the
    reading that reproduces the thesis's 1.3 M parameters for ResNet-57), the
    shortcut is a 1x1 projection with batch norm where the shape changes, the stride
    sits on the 3x3 convolution, and convolutions followed by batch norm have no bias.
    Table 3 gives the stem's pool "padding 1" but an output of 13x13, which needs
    padding 0 (with padding 1, 26x26 pools to 14x14); we keep the table's sizes.
    ``input_size`` is the (square) input's side; any size from 14 up works.
    """
    blocks = [check_int("blocks", b, minimum=1) for b in blocks]
    if len(channels) != len(blocks):
        raise ValueError(f"channels: expected {len(blocks)} stage widths to match blocks "
                         f"{blocks}, got {tuple(channels)}")
    kinds = {"bottleneck": Bottleneck, "basic": BasicBlock}
    if block not in kinds:
        raise ValueError(f"block: expected one of {tuple(kinds)}, got {block!r}")
    input_size = check_int("input_size", input_size, minimum=14)
    Block = kinds[block]
    layers = [Conv2D(in_channels, stem_channels, 7, bias=False, dtype=dtype),
              BatchNorm2d(stem_channels, dtype=dtype), ReLU(), MaxPool2D(2)]
    c_in = stem_channels
    for s, (n, c) in enumerate(zip(blocks, channels)):
        for i in range(n):
            layers.append(Block(c_in, c, stride=2 if (i == 0 and s > 0) else 1, dtype=dtype))
            c_in = c
    layers += [GlobalAvgPool2D(), BatchNorm1d(c_in, dtype=dtype), Dropout(dropout),
               Dense(c_in, num_classes, dtype=dtype)]
    return Sequential(*layers)


def ResNet15(num_classes=10, in_channels=1, input_size=32, dropout=0.5, dtype=None):
    """The thesis's ResNet-15 (Table 3): one bottleneck block per stage.

    >>> ResNet15().num_parameters()
    513034
    """
    return ResNet((1, 1, 1, 1), in_channels=in_channels, num_classes=num_classes,
                  input_size=input_size, dropout=dropout, dtype=dtype)


def ResNet57(num_classes=10, in_channels=1, input_size=32, dropout=0.5, dtype=None):
    """The thesis's ResNet-57 (Table 4): 3, 4, 4 and 3 bottleneck blocks per stage."""
    return ResNet((3, 4, 4, 3), in_channels=in_channels, num_classes=num_classes,
                  input_size=input_size, dropout=dropout, dtype=dtype)
