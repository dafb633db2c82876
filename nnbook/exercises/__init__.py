"""Exercises that check themselves -- without carrying their answers.

Each exercise is registered under a name such as ``"basics.softmax"`` with its
prompt, a tolerance and, where a plain comparison of results is not enough, a
check of its own (a layer is driven through forward and backward and gradchecked;
a GPU kernel is launched on ragged shapes; a derived gradient is compared with
finite differences of the function it differentiates).  A student calls::

    nb.exercises.check("basics.softmax", my_softmax)

and gets ``Correct! ... passed all 5 cases.`` or an :class:`ExerciseError` that says
which input failed, what was expected and what came back.  An answer that still
raises ``NotImplementedError`` (a stub) is reported as not attempted yet, without
an error.  ``nb.exercises.show()`` lists the exercises.

The cases -- inputs, edge cases included, and the expected results -- are stored
in ``nnbook/exercise_data/<set>.json`` and ``<set>.npz``.  The reference answers
that produced them are not part of the package: they live with the book's
sources (``book/_exercises/``), where ``python -m nnbook.exercises build-data``
regenerates the stored cases from them and CI proves that the shipped data match,
that every reference passes and that every known-wrong answer fails.
"""
from __future__ import annotations

import dataclasses
import inspect
import pathlib
import traceback
from typing import Callable

import numpy as np

from . import _store

__all__ = ["Exercise", "ExerciseError", "register", "check", "get", "show", "REGISTRY",
           "DATA_DIR"]

REGISTRY: dict[str, "Exercise"] = {}
#: where the stored cases are: one .json (the structure) and one .npz (the arrays) per set
DATA_DIR = pathlib.Path(__file__).resolve().parent.parent / "exercise_data"
_DATA: dict[str, dict] = {}


class ExerciseError(AssertionError):
    """An answer disagreed with the expected results (the message says where)."""


def _fmt(v, limit=400):
    if isinstance(v, np.ndarray):
        s = np.array2string(v, precision=5, threshold=30, edgeitems=3)
        return f"array(shape={v.shape}, dtype={v.dtype}) {s}"[:limit]
    return repr(v)[:limit]


def _copy(a):
    if isinstance(a, np.ndarray):
        return a.copy()
    if isinstance(a, list):
        return [_copy(x) for x in a]
    if isinstance(a, tuple):
        return tuple(_copy(x) for x in a)
    return a


def _same_input(a, g):
    if isinstance(a, np.ndarray):
        return isinstance(g, np.ndarray) and a.shape == g.shape and np.array_equal(a, g, equal_nan=True)
    if isinstance(a, (list, tuple)):
        return len(a) == len(g) and all(_same_input(x, y) for x, y in zip(a, g))
    return True


def _not_attempted(fn) -> bool:
    """A GPU kernel cannot raise on a real GPU: a stub is recognised by its source."""
    py = getattr(fn, "py_func", None)
    if py is None:
        return False
    try:
        return "raise NotImplementedError" in inspect.getsource(py)
    except (OSError, TypeError):
        return False


@dataclasses.dataclass
class Exercise:
    """One registered exercise: its prompt and how an answer is checked.

    ``call(fn, args)`` produces the answer's result for one case (default:
    ``fn(*args)``); ``compare(got, want, args)`` raises :class:`ExerciseError` when it
    is wrong (default: shapes and values within ``rtol``/``atol``); ``show_args(args)``
    describes a case's input in messages.
    """
    name: str
    prompt: str
    set: str
    rtol: float = 1e-6
    atol: float = 1e-9
    compare: Callable | None = None
    call: Callable | None = None
    show_args: Callable | None = None

    def cases(self):
        """The stored cases: a list of ``{"args": [...], "want": ...}``."""
        data = _load_set(self.set)
        if self.name not in data:
            raise RuntimeError(f"{self.name}: no stored cases in {DATA_DIR / self.set}.json; "
                               f"regenerate them with `python -m nnbook.exercises build-data`")
        return data[self.name]

    def run(self, fn, cases=None, quiet=False):
        """Check ``fn`` on the stored cases (or on ``cases``: a list, or a string made by
        ``nnbook.exercises._store.dumps``).  True if every case passes, False (with a
        message) if ``fn`` is still a stub; raises :class:`ExerciseError` otherwise."""
        if isinstance(cases, str):
            cases = _store.loads(cases)
        cases = self.cases() if cases is None else cases
        if _not_attempted(fn):
            return self._stub(quiet)
        n = len(cases)
        for i, case in enumerate(cases):
            args, want = case["args"], case["want"]
            shown = self.show_args(args) if self.show_args else ", ".join(_fmt(a) for a in args)
            given = _copy(args)
            try:
                got = self.call(fn, given) if self.call else fn(*given)
            except NotImplementedError:
                return self._stub(quiet)
            except ExerciseError as e:
                raise ExerciseError(f"{self.name}: case {i + 1}/{n}: {e}\n  input: {shown}") from None
            except Exception as e:  # noqa: BLE001 - report the student's error
                tb = traceback.format_exception_only(type(e), e)[-1].strip()
                raise ExerciseError(f"{self.name}: case {i + 1}/{n} raised {tb}\n"
                                    f"  input: {shown}") from None
            if not _same_input(args, given):
                raise ExerciseError(f"{self.name}: case {i + 1} modified its input in place "
                                    f"(inputs must not be changed)")
            try:
                if self.compare is not None:
                    self.compare(got, want, args)
                else:
                    _default_compare(got, want, self.rtol, self.atol)
            except NotImplementedError:
                return self._stub(quiet)
            except ExerciseError as e:
                msg = f"{self.name}: case {i + 1}/{n} is wrong: {e}\n  input:    {shown}"
                if self.compare is None:
                    msg += f"\n  expected: {_fmt(want)}\n  got:      {_fmt(got)}"
                raise ExerciseError(msg) from None
            except Exception as e:  # noqa: BLE001 - e.g. a method of the student's layer failed
                tb = traceback.format_exception_only(type(e), e)[-1].strip()
                raise ExerciseError(f"{self.name}: case {i + 1}/{n} raised {tb}\n"
                                    f"  input: {shown}") from None
        if not quiet:
            print(f"Correct! {self.name} passed all {n} cases.")
        return True

    def _stub(self, quiet):
        if not quiet:
            print(f"{self.name}: not attempted yet — your answer still raises "
                  f"NotImplementedError. Replace that line with your code and run the cell again.")
        return False


def _default_compare(got, want, rtol, atol):
    if isinstance(want, tuple):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            raise ExerciseError(f"expected a tuple of {len(want)} results")
        for g, w in zip(got, want):
            _default_compare(g, w, rtol, atol)
        return
    w = np.asarray(want)
    try:
        g = np.asarray(got, dtype=np.result_type(w.dtype, np.float64) if w.dtype.kind == "f"
                       else None)
    except (TypeError, ValueError):
        raise ExerciseError(f"expected an array-like result, got {type(got).__name__}") from None
    if g.shape != w.shape:
        raise ExerciseError(f"shape {g.shape}, expected {w.shape}")
    if w.dtype.kind in "fc":
        if not np.allclose(g, w, rtol=rtol, atol=atol, equal_nan=False):
            err = np.max(np.abs(g - w))
            raise ExerciseError(f"values differ (max abs difference {err:.3g}; "
                                f"tolerance rtol={rtol:g}, atol={atol:g})")
    elif not np.array_equal(g, w):
        raise ExerciseError("values differ")


def register(name, prompt, **kw):
    """Register an exercise (names are ``"<chapter>.<exercise>"``); called by the modules
    of ``nnbook.exercise_sets``, whose name is the exercise's *set* (its data file)."""
    if name in REGISTRY:
        raise ValueError(f"name: exercise {name!r} is already registered")
    module = inspect.currentframe().f_back.f_globals.get("__name__", "")
    ex = Exercise(name, prompt, set=kw.pop("set", module.rpartition(".")[2]), **kw)
    REGISTRY[name] = ex
    return ex


def get(name) -> Exercise:
    _load_all()
    if name not in REGISTRY:
        raise ValueError(f"name: no exercise {name!r}; known: {sorted(REGISTRY)}")
    return REGISTRY[name]


def check(name, fn, cases=None, quiet=False):
    """Check ``fn`` against exercise ``name``: True when right, False (and a message) when
    ``fn`` is still a stub that raises NotImplementedError; raises ExerciseError when wrong.
    ``cases`` replaces the stored cases (an assignment's hidden tests pass their own)."""
    if not callable(fn):
        raise TypeError(f"fn: expected your function, got {type(fn).__name__}")
    return get(name).run(fn, cases=cases, quiet=quiet)


def show(chapter=None):
    """List exercises (of one chapter, if given)."""
    _load_all()
    for k, ex in sorted(REGISTRY.items()):
        if chapter is None or k.startswith(chapter + "."):
            print(f"{k}: {ex.prompt}")


def _load_set(name):
    if name not in _DATA:
        js, npz = DATA_DIR / f"{name}.json", DATA_DIR / f"{name}.npz"
        if not js.exists() or not npz.exists():
            raise RuntimeError(f"the stored cases of the exercise set {name!r} are missing "
                               f"({js}); regenerate them with `python -m nnbook.exercises build-data`")
        _DATA[name] = _store.load(js, npz)["exercises"]
    return _DATA[name]


def _load_all():
    # chapter modules register their exercises on import
    import importlib  # noqa: PLC0415
    import pkgutil  # noqa: PLC0415

    from .. import exercise_sets  # noqa: PLC0415
    for m in pkgutil.iter_modules(exercise_sets.__path__):
        importlib.import_module(f"{exercise_sets.__name__}.{m.name}")
