"""Exercises that check themselves.

Each exercise is registered under a name such as ``"basics.softmax"`` with a
reference implementation, a generator of test inputs (random ones *and* edge
cases) and a comparison.  A student calls::

    nb.exercises.check("basics.softmax", my_softmax)

and gets ``Correct! (12 cases)`` or an :class:`ExerciseError` that says which
input failed, what was expected and what came back.  ``nb.exercises.show()``
lists the exercises.  The book's published solutions are run through the same
checks in CI, and each exercise carries a known-wrong answer that CI feeds to
its check to prove the check can fail.
"""
from __future__ import annotations

import dataclasses
import traceback
from typing import Callable

import numpy as np

__all__ = ["Exercise", "ExerciseError", "register", "check", "get", "show", "REGISTRY"]

REGISTRY: dict[str, "Exercise"] = {}


class ExerciseError(AssertionError):
    """A student's answer disagreed with the reference (the message says where)."""


def _fmt(v, limit=400):
    if isinstance(v, np.ndarray):
        s = np.array2string(v, precision=5, threshold=30, edgeitems=3)
        return f"array(shape={v.shape}, dtype={v.dtype}) {s}"[:limit]
    return repr(v)[:limit]


@dataclasses.dataclass
class Exercise:
    name: str
    prompt: str
    reference: Callable
    cases: Callable            # rng -> list of argument tuples
    wrong: Callable            # a known-wrong answer, to prove the check can fail
    rtol: float = 1e-6
    atol: float = 1e-9
    compare: Callable | None = None   # custom (got, want) -> None or raise ExerciseError

    def run(self, fn, seed=0, quiet=False):
        rng = np.random.default_rng(seed)
        cases = self.cases(rng)
        for i, args in enumerate(cases):
            args = args if isinstance(args, tuple) else (args,)
            want = self.reference(*[_copy(a) for a in args])
            given = [_copy(a) for a in args]
            try:
                got = fn(*given)
            except Exception as e:  # noqa: BLE001 - report the student's error
                tb = traceback.format_exception_only(type(e), e)[-1].strip()
                raise ExerciseError(f"{self.name}: case {i + 1}/{len(cases)} raised {tb}\n"
                                    f"  input: {', '.join(_fmt(a) for a in args)}") from None
            for a, g in zip(args, given):
                if isinstance(a, np.ndarray) and not np.array_equal(a, g, equal_nan=True):
                    raise ExerciseError(f"{self.name}: case {i + 1} modified its input in place "
                                        f"(inputs must not be changed)")
            try:
                if self.compare is not None:
                    self.compare(got, want)
                else:
                    _default_compare(got, want, self.rtol, self.atol)
            except ExerciseError as e:
                raise ExerciseError(f"{self.name}: case {i + 1}/{len(cases)} is wrong: {e}\n"
                                    f"  input:    {', '.join(_fmt(a) for a in args)}\n"
                                    f"  expected: {_fmt(want)}\n"
                                    f"  got:      {_fmt(got)}") from None
        if not quiet:
            print(f"Correct! {self.name} passed all {len(cases)} cases.")
        return True


def _copy(a):
    return a.copy() if isinstance(a, np.ndarray) else a


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


def register(name, prompt, reference, cases, wrong, **kw):
    """Register an exercise (names are ``"<chapter>.<exercise>"``)."""
    if name in REGISTRY:
        raise ValueError(f"name: exercise {name!r} is already registered")
    ex = Exercise(name, prompt, reference, cases, wrong, **kw)
    REGISTRY[name] = ex
    return ex


def get(name) -> Exercise:
    _load_all()
    if name not in REGISTRY:
        raise ValueError(f"name: no exercise {name!r}; known: {sorted(REGISTRY)}")
    return REGISTRY[name]


def check(name, fn, seed=0):
    """Run ``fn`` against exercise ``name``'s reference; raise ExerciseError if it differs."""
    if not callable(fn):
        raise TypeError(f"fn: expected your function, got {type(fn).__name__}")
    return get(name).run(fn, seed=seed)


def show(chapter=None):
    """List exercises (of one chapter, if given)."""
    _load_all()
    for k, ex in sorted(REGISTRY.items()):
        if chapter is None or k.startswith(chapter + "."):
            print(f"{k}: {ex.prompt}")


def _load_all():
    # chapter modules register their exercises on import
    import importlib  # noqa: PLC0415
    import pkgutil  # noqa: PLC0415

    from . import exercise_sets  # noqa: PLC0415
    for m in pkgutil.iter_modules(exercise_sets.__path__):
        importlib.import_module(f"{exercise_sets.__name__}.{m.name}")
