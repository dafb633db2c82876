"""Regenerate the stored cases from the reference answers (run from a checkout).

The references live with the book's sources, ``book/_exercises/<set>.py``, one module
per exercise set; each defines ``SOLUTIONS = {name: Solution(...)}``.  This module
imports them by path (they are not part of the installed package), draws every
exercise's cases with a fixed seed, computes the expected results with the reference,
and writes ``nnbook/exercise_data/<set>.json`` and ``<set>.npz``::

    python -m nnbook.exercises build-data            # rewrite the shipped data
    python -m nnbook.exercises build-data --check    # regenerate in memory and compare
"""
from __future__ import annotations

import dataclasses
import importlib.util
import pathlib
import sys
from typing import Callable

import numpy as np

from . import DATA_DIR, REGISTRY, _load_all, _store

__all__ = ["Solution", "find_solutions", "load_solutions", "make_cases", "build", "verify",
           "SEED", "main"]

#: seed of the stored (public) cases; an assignment's hidden cases use another
SEED = 0
FORMAT = 1


@dataclasses.dataclass
class Solution:
    """The reference answer of one exercise, how its cases are drawn, and the classic
    mistakes its check must reject.

    ``cases(rng)`` returns a list of argument tuples (random inputs *and* edge cases);
    ``wrong`` maps a description of a mistake to an answer that makes it;
    ``expect(exercise, reference, args)`` computes a case's expected result (default:
    what the exercise's own ``call`` gets from the reference); ``store_want=False`` for
    exercises whose check needs no expected result (a gradient checked against finite
    differences).
    """
    reference: Callable
    cases: Callable
    wrong: dict
    expect: Callable | None = None
    store_want: bool = True
    name: str = ""
    set: str = ""


def find_solutions(start=None) -> pathlib.Path:
    """``book/_exercises`` of the checkout that contains ``start`` (default: the current
    directory, then the directory this package was imported from)."""
    here = pathlib.Path(start or pathlib.Path.cwd()).resolve()
    for base in (here, *here.parents, *pathlib.Path(__file__).resolve().parents):
        cand = base / "book" / "_exercises"
        if cand.is_dir():
            return cand
    raise FileNotFoundError("the reference answers (book/_exercises) were not found: run this "
                            "from a checkout of the nnbook repository, not from an installed copy")


def _import(path: pathlib.Path):
    name = f"nnbook_solutions.{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def load_solutions(solutions_dir=None) -> dict[str, Solution]:
    """Every ``Solution`` in ``solutions_dir`` (default: :func:`find_solutions`), by name."""
    d = pathlib.Path(solutions_dir) if solutions_dir else find_solutions()
    out = {}
    for path in sorted(d.glob("*.py")):
        if path.name.startswith("_"):
            continue
        for name, sol in _import(path).SOLUTIONS.items():
            if name in out:
                raise ValueError(f"{path}: {name} is defined twice")
            out[name] = dataclasses.replace(sol, name=name, set=path.stem)
    return out


def _args(c):
    return list(c) if isinstance(c, tuple) else [c]


def make_cases(name, sol: Solution, seed=SEED):
    """``[{"args": [...], "want": ...}]`` of exercise ``name`` drawn with ``seed``."""
    _load_all()
    ex = REGISTRY[name]
    out = []
    for c in sol.cases(np.random.default_rng(seed)):
        args = _args(c)
        if not sol.store_want:
            want = None
        elif sol.expect is not None:
            want = sol.expect(ex, sol.reference, [_copy(a) for a in args])
        else:
            given = [_copy(a) for a in args]
            want = ex.call(sol.reference, given) if ex.call else sol.reference(*given)
        out.append({"args": args, "want": want})
    return out


def _copy(a):
    from . import _copy as c  # noqa: PLC0415
    return c(a)


def _data(solutions) -> dict[str, dict]:
    """{set: {"format": 1, "exercises": {name: cases}}}, checking that the references and
    the registered exercises correspond one to one."""
    _load_all()
    registered = {n: ex.set for n, ex in REGISTRY.items()}
    missing = sorted(set(registered) - set(solutions))
    extra = sorted(set(solutions) - set(registered))
    if missing or extra:
        raise ValueError(f"references and registered exercises differ: no reference for "
                         f"{missing}; no registered exercise for {extra}")
    sets: dict[str, dict] = {}
    for name in sorted(solutions):
        sol = solutions[name]
        if sol.set != registered[name]:
            raise ValueError(f"{name}: registered in set {registered[name]!r} but its reference "
                             f"is in {sol.set}.py")
        sets.setdefault(sol.set, {"format": FORMAT, "exercises": {}})
        sets[sol.set]["exercises"][name] = make_cases(name, sol)
    return sets


def build(solutions_dir=None, out_dir=None) -> list[pathlib.Path]:
    """Write the stored cases of every set; returns the files written."""
    out = pathlib.Path(out_dir) if out_dir else DATA_DIR
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for s, data in _data(load_solutions(solutions_dir)).items():
        js, npz = out / f"{s}.json", out / f"{s}.npz"
        _store.save(data, js, npz)
        written += [js, npz]
    return written


def verify(solutions_dir=None, data_dir=None) -> list[str]:
    """Differences between the shipped data and data regenerated from the references
    ([] when they agree: structure, inputs and integers exactly, floats to 1e-12)."""
    d = pathlib.Path(data_dir) if data_dir else DATA_DIR
    problems = []
    fresh = _data(load_solutions(solutions_dir))
    shipped = {p.stem for p in d.glob("*.json")}
    for s in sorted(shipped - set(fresh)):
        problems.append(f"{s}.json: no exercise set of that name")
    for s, data in fresh.items():
        js, npz = d / f"{s}.json", d / f"{s}.npz"
        if not js.exists() or not npz.exists():
            problems.append(f"{s}: not shipped")
            continue
        problems += [f"{s}: {p}" for p in _store.same(_store.load(js, npz), data)]
    return problems


def main(argv=None):
    import argparse  # noqa: PLC0415
    p = argparse.ArgumentParser(prog="python -m nnbook.exercises",
                                description="Stored exercise cases, regenerated from the "
                                            "reference answers of a checkout.")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build-data", help="regenerate nnbook/exercise_data from book/_exercises")
    b.add_argument("--solutions", default=None, help="folder of the reference answers "
                   "(default: book/_exercises of this checkout)")
    b.add_argument("--out", default=None, help=f"output folder (default: {DATA_DIR})")
    b.add_argument("--check", action="store_true",
                   help="write nothing: regenerate in memory and compare with the shipped data")
    args = p.parse_args(argv)
    if args.check:
        problems = verify(args.solutions, args.out)
        for line in problems:
            print(line)
        print("the shipped data match the references" if not problems
              else f"{len(problems)} difference(s): run build-data")
        return 1 if problems else 0
    for path in build(args.solutions, args.out):
        print(f"wrote {path}")
    return 0
