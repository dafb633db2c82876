"""How the exercises' cases are stored: a JSON tree plus the arrays it names.

``pack(obj)`` turns nested Python values -- arrays, NumPy scalars, floats (also inf
and nan), ints, bools, strings, None, tuples, lists and dicts -- into a JSON-able
tree and a dict of arrays; ``unpack`` reverses it exactly (dtypes, shapes and the
difference between a tuple and a list survive).  The shipped files are
``nnbook/exercise_data/<set>.json`` (the tree) and ``<set>.npz`` (the arrays),
written byte for byte the same way every time; :func:`dumps`/:func:`loads` pack
the same into one base64 string (an assignment's hidden test cases).
"""
from __future__ import annotations

import base64
import io
import json
import math
import zipfile

import numpy as np

__all__ = ["pack", "unpack", "save", "load", "dumps", "loads", "same"]

_STAMP = (1980, 1, 1, 0, 0, 0)      # fixed zip timestamps: the same data, the same bytes


def pack(obj):
    """(tree, arrays): ``tree`` is JSON-able; arrays are named a0, a1, ... in tree order."""
    arrays: dict[str, np.ndarray] = {}

    def walk(v):
        if isinstance(v, np.ndarray):
            if v.dtype.hasobject:
                raise TypeError("object arrays cannot be stored")
            key = f"a{len(arrays)}"
            arrays[key] = np.ascontiguousarray(v)
            return {"@array": key}
        if isinstance(v, np.generic):
            return {"@scalar": v.dtype.str, "value": walk(v.item())}
        if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
            return v
        if isinstance(v, float):
            return v if math.isfinite(v) else {"@float": repr(v)}
        if isinstance(v, tuple):
            return {"@tuple": [walk(x) for x in v]}
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, dict):
            if not all(isinstance(k, str) for k in v):
                raise TypeError("dict keys must be strings")
            return {"@dict": {k: walk(x) for k, x in v.items()}}
        raise TypeError(f"cannot store a {type(v).__name__}")

    return walk(obj), arrays


def unpack(tree, arrays):
    """The value :func:`pack` was given."""
    def walk(v):
        if isinstance(v, list):
            return [walk(x) for x in v]
        if not isinstance(v, dict):
            return v
        if "@array" in v:
            return np.array(arrays[v["@array"]], copy=True)
        if "@scalar" in v:
            return np.dtype(v["@scalar"]).type(walk(v["value"]))
        if "@float" in v:
            return float(v["@float"])
        if "@tuple" in v:
            return tuple(walk(x) for x in v["@tuple"])
        if "@dict" in v:
            return {k: walk(x) for k, x in v["@dict"].items()}
        raise ValueError(f"unknown entry in stored cases: {sorted(v)}")

    return walk(tree)


def _npz_bytes(arrays) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for key, a in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_STAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            one = io.BytesIO()
            np.lib.format.write_array(one, a, allow_pickle=False)
            z.writestr(info, one.getvalue())
    return buf.getvalue()


def _npz_read(data: bytes) -> dict:
    with np.load(io.BytesIO(data), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def save(obj, json_path, npz_path):
    """Write ``obj`` as a JSON tree and an .npz of its arrays (deterministic bytes)."""
    tree, arrays = pack(obj)
    text = json.dumps(tree, indent=1, sort_keys=False, ensure_ascii=False, allow_nan=False)
    with open(json_path, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    with open(npz_path, "wb") as f:
        f.write(_npz_bytes(arrays))


def load(json_path, npz_path):
    with open(json_path, encoding="utf-8") as f:
        tree = json.load(f)
    with open(npz_path, "rb") as f:
        arrays = _npz_read(f.read())
    return unpack(tree, arrays)


def dumps(obj) -> str:
    """``obj`` as one ASCII string (base64 of a zip holding the tree and the arrays)."""
    tree, arrays = pack(obj)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("tree.json", date_time=_STAMP)
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, json.dumps(tree, separators=(",", ":"), allow_nan=False))
        info = zipfile.ZipInfo("arrays.npz", date_time=_STAMP)
        z.writestr(info, _npz_bytes(arrays))
    return base64.b64encode(buf.getvalue()).decode("ascii")


def loads(text: str):
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(text))) as z:
        tree = json.loads(z.read("tree.json"))
        arrays = _npz_read(z.read("arrays.npz"))
    return unpack(tree, arrays)


def same(a, b, rtol=1e-12, atol=1e-14, where="") -> list[str]:
    """Differences between two stored values: structure, types, dtypes, shapes and
    integers must agree exactly, floating-point values to ``rtol``/``atol`` (another
    CPU's BLAS or libm may round the last bit differently).  [] when they agree."""
    if type(a) is not type(b):
        return [f"{where or 'value'}: {type(a).__name__} vs {type(b).__name__}"]
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return [f"{where}: length {len(a)} vs {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in same(x, y, rtol, atol, f"{where}[{i}]")]
    if isinstance(a, dict):
        if list(a) != list(b):
            return [f"{where}: keys {list(a)} vs {list(b)}"]
        return [d for k in a for d in same(a[k], b[k], rtol, atol, f"{where}[{k!r}]")]
    if isinstance(a, (np.ndarray, np.generic)):
        if a.dtype != b.dtype or np.shape(a) != np.shape(b):
            return [f"{where}: {a.dtype}{np.shape(a)} vs {b.dtype}{np.shape(b)}"]
        if a.dtype.kind in "fc":
            ok = np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True) and \
                np.array_equal(np.isnan(a), np.isnan(b))
        else:
            ok = np.array_equal(a, b)
        return [] if ok else [f"{where}: values differ"]
    if isinstance(a, float):
        ok = (math.isnan(a) and math.isnan(b)) or a == b or math.isclose(a, b, rel_tol=rtol, abs_tol=atol)
        return [] if ok else [f"{where}: {a!r} vs {b!r}"]
    return [] if a == b else [f"{where}: {a!r} vs {b!r}"]
