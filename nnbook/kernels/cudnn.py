"""cuDNN as "just another version": convolution forward, dgrad and wgrad on CuPy arrays.

Reached through the cuDNN *frontend* Python API (PyPI ``nvidia-cudnn-frontend``,
module ``cudnn``; CuPy 14 no longer binds cuDNN itself).  One cuDNN *graph* per
(operation, shapes, stride, padding) holds a single convolution node:

    forward  Y  = conv_fprop(image=X, weight=W)
    dgrad    DX = conv_dgrad(loss=DY, filter=W)      (DX's shape must be given)
    wgrad    DW = conv_wgrad(image=X, loss=DY)       (DW's shape must be given)

Tensors are FP32, NCHW and contiguous; the compute type is FP32.  The engine
is picked by cuDNN's heuristics (modes A then FALLBACK); engines that use
tensor cores -- on FP32 data that means TF32, 10-bit mantissas -- are removed
from the candidate list unless ``tf32=True``, so the comparison with our
FP32 CUDA-core kernels is like for like.  The graph is built once and cached;
each call only executes it with the arrays' device pointers and a workspace.

Everything that does not need a GPU -- checking shapes, describing the graph
(:func:`describe`) -- works everywhere and is unit-tested; building or
running a graph without ``cudnn``, CuPy or a GPU raises :class:`CudnnUnavailable`
with what to install.
"""
from __future__ import annotations

import dataclasses

from .conv2d import conv2d_flops, conv_output_shape, pair

__all__ = ["CudnnUnavailable", "ConvProblem", "describe", "contiguous_strides", "CudnnConv",
           "available", "version", "conv2d_forward", "conv2d_dgrad", "conv2d_wgrad"]

OPS = ("forward", "dgrad", "wgrad")
_INSTALL = ("pip install nvidia-cudnn-frontend nvidia-cudnn-cu12 cupy-cuda12x "
            "(a CUDA GPU and driver are required)")


class CudnnUnavailable(RuntimeError):
    """cuDNN (frontend), CuPy or a CUDA GPU is missing."""


def contiguous_strides(shape):
    """Element strides of a C-contiguous (row-major) array of ``shape``.

    >>> contiguous_strides((2, 3, 4, 5))
    (60, 20, 5, 1)
    """
    st, acc = [], 1
    for d in reversed(tuple(shape)):
        st.append(acc)
        acc *= int(d)
    return tuple(reversed(st))


@dataclasses.dataclass(frozen=True)
class ConvProblem:
    """One convolution layer: shapes, stride, padding (dilation 1, groups 1)."""
    x_shape: tuple
    w_shape: tuple
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)

    def __post_init__(self):
        object.__setattr__(self, "x_shape", tuple(int(t) for t in self.x_shape))
        object.__setattr__(self, "w_shape", tuple(int(t) for t in self.w_shape))
        object.__setattr__(self, "stride", pair(self.stride, "stride"))
        object.__setattr__(self, "padding", pair(self.padding, "padding"))
        conv_output_shape(self.x_shape, self.w_shape, self.stride, self.padding)  # validates

    @property
    def y_shape(self):
        return conv_output_shape(self.x_shape, self.w_shape, self.stride, self.padding)

    @property
    def flops(self):
        return conv2d_flops(self.x_shape, self.w_shape, self.stride, self.padding)


def describe(op, problem: ConvProblem):
    """The graph :class:`CudnnConv` builds for ``op``, as plain data (no GPU needed).

    Returns ``{"op", "node", "inputs": {name: (dim, stride)}, "output": (name, dim, stride),
    "padding", "stride", "dilation"}`` with the frontend's argument names.
    """
    if op not in OPS:
        raise ValueError(f"op: expected one of {OPS}, got {op!r}")
    p = problem
    t = {"X": p.x_shape, "W": p.w_shape, "Y": p.y_shape, "DY": p.y_shape, "DX": p.x_shape, "DW": p.w_shape}
    spec = {"forward": ("conv_fprop", {"image": "X", "weight": "W"}, "Y"),
            "dgrad": ("conv_dgrad", {"loss": "DY", "filter": "W"}, "DX"),
            "wgrad": ("conv_wgrad", {"image": "X", "loss": "DY"}, "DW")}[op]
    node, args, out = spec
    return {"op": op, "node": node,
            "inputs": {arg: (name, t[name], contiguous_strides(t[name])) for arg, name in args.items()},
            "output": (out, t[out], contiguous_strides(t[out])),
            "padding": list(p.padding), "stride": list(p.stride), "dilation": [1, 1]}


# ----------------------------------------------------------------------------- runtime (GPU only)

_state = {"handle": None}


def _import():
    try:
        import cudnn  # noqa: PLC0415
    except ImportError as e:
        raise CudnnUnavailable(f"the cuDNN frontend Python API (module 'cudnn') is not installed: {_INSTALL}") from e
    try:
        import cupy  # noqa: PLC0415
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise CudnnUnavailable("no CUDA device is visible to CuPy")
    except ImportError as e:
        raise CudnnUnavailable(f"CuPy is not installed: {_INSTALL}") from e
    except CudnnUnavailable:
        raise
    except Exception as e:  # noqa: BLE001 - driver / runtime errors
        raise CudnnUnavailable(f"CUDA does not work here ({type(e).__name__}: {e})") from e
    return cudnn, cupy


def available() -> bool:
    """True if the cuDNN frontend, CuPy and a GPU are all usable."""
    try:
        _import()
        return True
    except CudnnUnavailable:
        return False


def version():
    """cuDNN backend version (e.g. 90800) and frontend package version, or (None, None)."""
    try:
        cudnn, _ = _import()
    except CudnnUnavailable:
        return None, None
    be = getattr(cudnn, "backend_version", None)
    fe = getattr(cudnn, "__version__", None)
    return (be() if callable(be) else None), fe


def _handle():
    cudnn, cupy = _import()
    if _state["handle"] is None:
        _state["handle"] = cudnn.create_handle()
    setter = getattr(cudnn, "set_stream", None)
    if setter is not None:   # run on CuPy's current stream, so CUDA events time it
        setter(handle=_state["handle"], stream=cupy.cuda.get_current_stream().ptr)
    return _state["handle"]


class CudnnConv:
    """cuDNN graphs for one :class:`ConvProblem`; built lazily, cached per op.

    >>> conv = CudnnConv((32, 64, 56, 56), (64, 64, 3, 3), stride=1, padding=1)  # doctest: +SKIP
    >>> y = conv.forward(x, w); dx = conv.dgrad(dy, w); dw = conv.wgrad(x, dy)   # doctest: +SKIP
    """

    def __init__(self, x_shape, w_shape, stride=1, padding=0, *, tf32=False):
        self.problem = ConvProblem(x_shape, w_shape, stride, padding)
        self.tf32 = bool(tf32)
        self._built = {}

    def __repr__(self):
        p = self.problem
        return f"CudnnConv(x={p.x_shape}, w={p.w_shape}, stride={p.stride}, padding={p.padding}, tf32={self.tf32})"

    def plan(self, op):
        """Build (once) and return ``(graph, tensors, workspace, engine_name)`` for ``op``."""
        if op in self._built:
            return self._built[op]
        cudnn, cupy = _import()
        handle = _handle()
        d = describe(op, self.problem)
        f32 = cudnn.data_type.FLOAT
        g = cudnn.pygraph(handle=handle, io_data_type=f32, intermediate_data_type=f32, compute_data_type=f32)
        tens = {name: g.tensor(name=name, dim=list(dim), stride=list(st), data_type=f32)
                for _arg, (name, dim, st) in d["inputs"].items()}
        kw = {arg: tens[name] for arg, (name, _, _) in d["inputs"].items()}
        out = getattr(g, d["node"])(**kw, padding=d["padding"], stride=d["stride"], dilation=d["dilation"],
                                     compute_data_type=f32, name=d["node"])
        oname, odim, ost = d["output"]
        out.set_output(True).set_dim(list(odim)).set_stride(list(ost)).set_data_type(f32)
        tens[oname] = out
        try:
            g.validate()
            g.build_operation_graph()
            g.create_execution_plans([cudnn.heur_mode.A, cudnn.heur_mode.FALLBACK])
            if not self.tf32:
                g.deselect_numeric_notes([cudnn.numerical_note.TENSOR_CORE])
            g.check_support()
            g.build_plans()
        except Exception as e:  # noqa: BLE001 - report which graph failed
            raise RuntimeError(f"cuDNN could not build {d['node']} for {self!r}: {e}") from e
        ws = cupy.empty(max(1, int(g.get_workspace_size())), dtype=cupy.uint8)
        name = None
        try:
            name = g.get_plan_name_at_index(0)
        except Exception:  # noqa: BLE001 - older frontends lack it
            pass
        self._built[op] = (g, tens, ws, name)
        return self._built[op]

    def engine(self, op):
        """Name of the engine cuDNN's heuristics chose (None if the frontend cannot say)."""
        return self.plan(op)[3]

    def _run(self, op, arrays, out):
        g, tens, ws, _ = self.plan(op)
        pack = {tens[k]: v for k, v in arrays.items()}
        pack[tens[describe(op, self.problem)["output"][0]]] = out
        g.execute(pack, ws, handle=_handle())
        return out

    def _check(self, name, a, shape):
        _, cupy = _import()
        if not isinstance(a, cupy.ndarray):
            raise TypeError(f"{name}: expected a cupy.ndarray, got {type(a).__name__}")
        if tuple(a.shape) != tuple(shape) or a.dtype != cupy.float32 or not a.flags.c_contiguous:
            raise ValueError(f"{name}: expected a C-contiguous float32 array of shape {tuple(shape)}, "
                             f"got {a.dtype} {tuple(a.shape)} (contiguous={a.flags.c_contiguous})")
        return a

    def forward(self, x, w, out=None):
        p = self.problem
        _, cupy = _import()
        out = cupy.empty(p.y_shape, cupy.float32) if out is None else self._check("out", out, p.y_shape)
        return self._run("forward", {"X": self._check("x", x, p.x_shape), "W": self._check("w", w, p.w_shape)}, out)

    def dgrad(self, dy, w, out=None):
        p = self.problem
        _, cupy = _import()
        out = cupy.empty(p.x_shape, cupy.float32) if out is None else self._check("out", out, p.x_shape)
        return self._run("dgrad", {"DY": self._check("dy", dy, p.y_shape), "W": self._check("w", w, p.w_shape)}, out)

    def wgrad(self, x, dy, out=None):
        p = self.problem
        _, cupy = _import()
        out = cupy.empty(p.w_shape, cupy.float32) if out is None else self._check("out", out, p.w_shape)
        return self._run("wgrad", {"X": self._check("x", x, p.x_shape), "DY": self._check("dy", dy, p.y_shape)}, out)


_cache: dict = {}


def _conv(x_shape, w_shape, stride, padding, tf32=False):
    key = (tuple(x_shape), tuple(w_shape), pair(stride, "stride"), pair(padding, "padding"), tf32)
    if key not in _cache:
        _cache[key] = CudnnConv(*key[:4], tf32=tf32)
    return _cache[key]


def conv2d_forward(x, w, stride=1, padding=0):
    """cuDNN forward on CuPy arrays (graph cached per shape)."""
    return _conv(x.shape, w.shape, stride, padding).forward(x, w)


def conv2d_dgrad(dy, w, x_shape, stride=1, padding=0):
    return _conv(x_shape, w.shape, stride, padding).dgrad(dy, w)


def conv2d_wgrad(x, dy, w_shape, stride=1, padding=0):
    return _conv(x.shape, w_shape, stride, padding).wgrad(x, dy)
