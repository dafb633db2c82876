"""Assignments from the book's chapters, for a course (run from a checkout of the book).

* :func:`export` writes an nbgrader *source* assignment with a chapter's exercises: its
  prompts, one solution cell per exercise (the book's own solution, its function bodies
  between ``### BEGIN SOLUTION`` / ``### END SOLUTION``) and one autograded, locked test
  cell per exercise -- ``assert nb.exercises.check(...)`` on the cases every student can
  run, then, between ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``, the same check
  on cases drawn with another seed from the reference answers (``book/_exercises``), so
  an answer tuned to the visible cases does not pass.  nbgrader's own
  ``generate_assignment`` and ``autograde`` take it from there.
* :func:`student_edition` writes every chapter with the solutions removed: each
  exercise cell becomes a stub (its function bodies replaced by nbgrader's
  ``raise NotImplementedError()``) followed by its check, which reports the stub as not
  attempted yet instead of failing.

Solutions in the book are the code cells tagged ``hide-cell`` after a chapter's
"## Exercises" heading; a cell that calls ``nb.exercises.check`` is checked
automatically, any other is an exercise on paper.  Other code cells after the exercises
use the answers; the student edition leaves them out.

    python -m nnbook assignments export part1/backprop_one_hidden --out course/
    python -m nnbook assignments student-edition --out student/
"""
from __future__ import annotations

import ast
import copy
import hashlib
import json
import pathlib
import re

__all__ = ["find_book", "chapters", "exercises_of", "solution_regions", "clear_solutions",
           "export", "student_edition", "STUB", "NBGRADER_CONFIG"]

SOLUTION_TAG = "hide-cell"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
#: what replaces a solution region: nbgrader's default code stub, in both editions
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
HIDDEN_SEED = 1

NBGRADER_CONFIG = '''\
# nbgrader's configuration for this course folder (written by
# `python -m nnbook assignments export`; edit freely, it is not overwritten).
#   nbgrader generate_assignment ASSIGNMENT     -> release/ASSIGNMENT (no solutions, no hidden tests)
#   nbgrader autograde ASSIGNMENT               -> grades submitted/STUDENT/ASSIGNMENT
import os

c = get_config()  # noqa: F821  (provided by nbgrader)
c.CourseDirectory.course_id = "nnbook"
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
# a chapter's checks take seconds; the GPU-kernel exercises run in numba's CUDA
# simulator when the grading machine has no GPU, which is slower
c.ExecutePreprocessor.timeout = 600
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}
'''

_CHECK = re.compile(r"""exercises\.check\(\s*["']([\w.]+)["']""")


# ----------------------------------------------------------------------------- the book
def find_book(start=None) -> pathlib.Path:
    """The ``book/`` folder of the checkout that contains ``start`` (default: the current
    directory, then the folder this package was imported from)."""
    here = pathlib.Path(start or pathlib.Path.cwd()).resolve()
    for base in (here, *here.parents, *pathlib.Path(__file__).resolve().parents):
        cand = base / "book"
        if (cand / "_exercises").is_dir() and any(cand.glob("part*/*.ipynb")):
            return cand
    raise FileNotFoundError("the book's notebooks (book/part*/*.ipynb) were not found: run this "
                            "from a checkout of the nnbook repository, or pass --book")


def chapters(book=None) -> list[str]:
    """Every notebook of the book, as ``part1/basics`` (parts first, then the appendix)."""
    book = pathlib.Path(book) if book else find_book()
    return [str(p.relative_to(book).with_suffix("")) for p in
            sorted(book.glob("part*/*.ipynb")) + sorted(book.glob("appendix/*.ipynb"))]


def _read(path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _write(nb, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(nb, f, indent=1, ensure_ascii=False)
        f.write("\n")


def _src(cell) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def _lines(text):
    """nbformat's list-of-lines form of a cell's source."""
    return text.splitlines(keepends=True)


def exercises_of(nb) -> list[dict]:
    """The exercises of a notebook: ``{"cell": i, "prompt": j or None, "names": [...]}``,
    one per solution cell (a ``hide-cell`` code cell after the "## Exercises" heading);
    ``names`` is empty for an exercise on paper."""
    out, started = [], False
    for i, cell in enumerate(nb["cells"]):
        src = _src(cell)
        if cell["cell_type"] == "markdown" and re.search(r"^## Exercises", src, re.M):
            started = True
        if (started and cell["cell_type"] == "code"
                and SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])):
            prompt = i - 1 if i > 0 and nb["cells"][i - 1]["cell_type"] == "markdown" else None
            out.append({"cell": i, "prompt": prompt, "names": _CHECK.findall(src)})
    return out


# ----------------------------------------------------------------------------- code surgery
def _is_check(node) -> bool:
    return bool(_CHECK.search(ast.unparse(node)))


def _checks(src):
    """(name, the answer's expression) of every ``nb.exercises.check(name, answer)``."""
    out = []
    for node in ast.walk(ast.parse(src)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "check" and _CHECK.search(ast.unparse(node))):
            out.append((node.args[0].value, ast.get_source_segment(src, node.args[1])))
    return out


def _blank_or_comment(line):
    s = line.strip()
    return not s or s.startswith("#")


def _function_regions(fn, lines):
    """(first, last) 0-based line numbers of the body of ``fn`` that is the answer: after
    the signature and the docstring, through the last line of the body."""
    body = fn.body
    first = body[0]
    if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        if len(body) == 1:
            return None                      # only a docstring: nothing to hide
        start = first.end_lineno             # the line after the docstring (0-based)
    else:
        if first.lineno == fn.lineno:
            raise ValueError(f"{fn.name}: put the body of a solution on its own lines")
        # the signature's last line: the last code line before the body
        start = fn.lineno - 1
        for k in range(fn.lineno - 1, first.lineno - 1):
            if not _blank_or_comment(lines[k]):
                start = k
        start += 1
    return start, fn.end_lineno - 1


def solution_regions(src) -> str:
    """The answer part of a solution cell, with each function body (and each method body
    of a class) between ``### BEGIN SOLUTION`` and ``### END SOLUTION``.  Imports and
    definitions are kept; the rest -- the check, and code that uses the answer to show
    something -- is left out."""
    tree = ast.parse(src)
    lines = src.splitlines()
    keep, regions = [], []
    for node in tree.body:
        if not isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef,
                                 ast.AsyncFunctionDef, ast.ClassDef)):
            continue                           # the check, and whatever uses the answer
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        keep.append((first - 1, node.end_lineno - 1))
        fns = [node] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else [
            n for n in getattr(node, "body", []) if isinstance(node, ast.ClassDef)
            and isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for fn in fns:
            r = _function_regions(fn, lines)
            if r:
                regions.append(r)
    begins = {a: b for a, b in regions}
    ends = {b for a, b in regions}
    out, prev = [], None
    for a, b in keep:
        if prev is not None and a > prev + 1:
            out.append("")
        for k in range(a, b + 1):
            if k in begins:
                indent = re.match(r"\s*", lines[k] if lines[k].strip() else lines[begins[k]]).group(0)
                out.append(indent + BEGIN)
            out.append(lines[k])
            if k in ends:
                out.append(indent + END)
        prev = b
    return "\n".join(out).rstrip() + "\n"


def clear_solutions(src) -> str:
    """What nbgrader's ``generate_assignment`` does to a solution region: the region
    becomes :data:`STUB`, indented like its ``### BEGIN SOLUTION`` line."""
    out, inside = [], False
    for line in src.split("\n"):
        if BEGIN in line:
            indent = re.match(r"\s*", line).group(0)
            out += [indent + s for s in STUB.split("\n")]
            inside = True
        elif END in line:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def _myst_to_jupyter(md) -> str:
    """MyST roles that only the book renders, in words a notebook shows as they are."""
    md = re.sub(r"\{eq\}`([^`]*)`", r"(`\1` in the chapter)", md)
    md = re.sub(r"\{(?:doc|ref|numref)\}`(?:([^`<]*?)\s*<[^`>]*>|([^`]*))`",
                lambda m: (m.group(1) or m.group(2)).split("/")[-1], md)
    md = re.sub(r"\{cite[pt]?\}`[^`]*`", "", md)
    return md


def _prompt(nb, ex) -> str:
    if ex["prompt"] is None:
        return ""
    md = _src(nb["cells"][ex["prompt"]])
    m = re.search(r"^\*\*\d", md, re.M)            # from "**1." on: drop the section's intro
    return _myst_to_jupyter(md[m.start():] if m else md).strip()


def _title(nb) -> str:
    for cell in nb["cells"]:
        m = re.search(r"^# (.+)$", _src(cell), re.M)
        if cell["cell_type"] == "markdown" and m:
            return m.group(1).strip()
    return "Exercises"


def _setup_code(nb, kernels) -> str:
    """The chapter's imports (and its seed and default dtype), from its first code cell."""
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    src = _src(first)
    keep = []
    for node in ast.parse(src).body:
        text = ast.get_source_segment(src, node)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            keep.append(text)
        elif isinstance(node, ast.Expr) and re.match(
                r"(nb\.seed|nb\.set_default_dtype|threadpool_limits)\(", text):
            keep.append(text)
    if not any("nnbook.exercises" in k for k in keep):
        keep.append("import nnbook.exercises  # noqa: F401  (nb.exercises.check)")
    if kernels:
        keep.append("from nnbook.kernels import cuda  # numba-cuda; its CUDA simulator without a GPU")
    return "\n".join(keep) + "\n"


def _nbgrader(grade_id, *, grade=False, solution=False, locked=False, points=None, task=False):
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": task}
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def _cell(kind, source, metadata=None):
    digest = hashlib.sha1(f"{kind}\n{source}\n{metadata}".encode()).hexdigest()[:8]
    cell = {"cell_type": kind, "id": digest, "metadata": metadata or {}, "source": _lines(source)}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


# ----------------------------------------------------------------------------- nbgrader
def export(chapter, out, book=None, seed=HIDDEN_SEED, points=1) -> pathlib.Path:
    """Write ``out/source/<name>/<name>.ipynb``, the nbgrader source assignment of
    ``chapter`` (e.g. ``"part1/backprop_one_hidden"``), and ``out/nbgrader_config.py`` if
    there is none.  Returns the notebook's path."""
    from .exercises import _store  # noqa: PLC0415
    from .exercises.build import load_solutions, make_cases  # noqa: PLC0415
    book = pathlib.Path(book) if book else find_book()
    path = book / f"{chapter}.ipynb"
    if not path.exists():
        raise ValueError(f"chapter: no notebook {path}; chapters: {', '.join(chapters(book))}")
    nb = _read(path)
    found = exercises_of(nb)
    if not any(ex["names"] for ex in found):
        raise ValueError(f"chapter: {chapter} has no exercise that checks itself")
    references = load_solutions(book / "_exercises")
    name = pathlib.PurePath(chapter).name
    kernels = any("@cuda.jit" in _src(nb["cells"][ex["cell"]]) for ex in found)
    cells = [
        _cell("markdown", f"# {_title(nb)}: exercises\n\n"
              "Write each answer in the cell below its exercise, replacing "
              "`raise NotImplementedError()`, and run it; the cell after it checks your answer "
              "on inputs that include edge cases and says which input failed, what was "
              "expected and what came back. Grading runs the same checks on further inputs "
              "you do not see.", _nbgrader("header", locked=True)),
        _cell("code", _setup_code(nb, kernels), _nbgrader("setup", locked=True)),
    ]
    number = 0
    for ex in found:
        number += 1
        prompt = _prompt(nb, ex)
        if not ex["names"]:                      # on paper: the prompt, and room to work
            cells.append(_cell("markdown", prompt + "\n\n*(Not graded automatically.)*"))
            cells.append(_cell("code", "# your working\n"))
            continue
        slug = re.sub(r"\W", "_", ex["names"][0])
        cells.append(_cell("markdown", prompt, _nbgrader(f"{slug}_prompt", locked=True)))
        src = _src(nb["cells"][ex["cell"]])
        cells.append(_cell("code", solution_regions(src),
                           _nbgrader(f"{slug}_answer", solution=True)))
        for k, (ex_name, answer) in enumerate(_checks(src)):
            if ex_name not in references:
                raise ValueError(f"{chapter}: no reference answer for {ex_name} in {book / '_exercises'}")
            hidden = _store.dumps(make_cases(ex_name, references[ex_name], seed=seed))
            test = (f"# {points:g} point{'s' if points != 1 else ''}: exercise {ex_name}\n"
                    f'assert nb.exercises.check("{ex_name}", {answer})\n'
                    f"### BEGIN HIDDEN TESTS\n"
                    f"# further cases, drawn with seed {seed} from the reference answers\n"
                    f'assert nb.exercises.check("{ex_name}", {answer}, quiet=True, cases=(\n'
                    f"    {hidden!r}))\n"
                    f"### END HIDDEN TESTS\n")
            cells.append(_cell("code", test, _nbgrader(
                f"{slug}_check" + (f"_{k}" if k else ""), grade=True, locked=True, points=points)))
    source = {"cells": cells, "metadata": {"kernelspec": nb["metadata"].get("kernelspec", {
        "display_name": "Python 3", "language": "python", "name": "python3"}),
        "language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    out = pathlib.Path(out)
    target = out / "source" / name / f"{name}.ipynb"
    _write(source, target)
    config = out / "nbgrader_config.py"
    if not config.exists():
        config.write_text(NBGRADER_CONFIG, encoding="utf-8")
    return target


# ----------------------------------------------------------------------------- student edition
_NOTE = ("> **Student edition.** The solutions of this chapter's exercises are removed: each "
         "exercise's code cell is a stub to complete. Running it checks your answer — or "
         "says that it is not attempted yet.")


def _stub_cell(cell):
    src = _src(cell)
    checks = _checks(src)
    new = copy.deepcopy(cell)
    if checks:
        body = clear_solutions(solution_regions(src)).rstrip("\n")
        calls = "\n".join(f'nb.exercises.check("{n}", {a});' for n, a in checks)
        new["source"] = _lines(f"{body}\n\n\n{calls}")
    else:
        new["source"] = _lines("# Your answer (this exercise is not checked automatically).\n")
    new["outputs"], new["execution_count"] = [], None
    tags = [t for t in new["metadata"].get("tags", []) if t != SOLUTION_TAG]
    if tags:
        new["metadata"]["tags"] = tags
    else:
        new["metadata"].pop("tags", None)
    new["metadata"].pop("execution", None)
    return new


def student_edition(out, book=None, only=None) -> list[pathlib.Path]:
    """Write every chapter (or those in ``only``) under ``out`` with each exercise's
    solution replaced by a stub; returns the notebooks written."""
    book = pathlib.Path(book) if book else find_book()
    out = pathlib.Path(out)
    written = []
    for chapter in only or chapters(book):
        nb = _read(book / f"{chapter}.ipynb")
        found = exercises_of(nb)
        for ex in found:
            nb["cells"][ex["cell"]] = _stub_cell(nb["cells"][ex["cell"]])
        if found:
            # other code after the exercises uses the answers (e.g. feeds mistakes to a
            # check that subclass the solution): it has nothing to run on here
            solutions = {ex["cell"] for ex in found}
            nb["cells"] = [c for i, c in enumerate(nb["cells"])
                           if i < found[0]["cell"] or i in solutions or c["cell_type"] != "code"]
            nb["cells"].insert(1, _cell("markdown", _NOTE))
        target = out / f"{chapter}.ipynb"
        _write(nb, target)
        written.append(target)
    return written
