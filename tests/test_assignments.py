"""Coursework from the book: nbgrader assignments and the student edition.

* every chapter exports as an nbgrader source assignment whose cell metadata follow
  nbgrader's schema; run as they are, its reference answers pass its own test cells
  (hidden tests included), and with nbgrader's stubs in their place every test fails;
* with nbgrader installed (the ``[teach]`` extra): ``nbgrader generate_assignment``
  makes a student version without solutions or hidden tests, and ``nbgrader autograde``
  gives the reference answers full marks and a submission with known-wrong answers fewer;
* the student edition has no solution left, and its notebooks run to the end with the
  stubs in place: each check reports "not attempted yet" instead of stopping the notebook.
"""
import copy
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

from nnbook import assignments as A

ROOT = pathlib.Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CHAPTERS = [c for c in A.chapters(BOOK)
            if any(ex["names"] for ex in A.exercises_of(A._read(BOOK / f"{c}.ipynb")))]
#: the two chapters whose student edition CI executes (among the quickest to run)
EXECUTED = ["part1/backprop_one_hidden", "part2/autodiff"]
NBGRADER_KEYS = {"grade", "grade_id", "locked", "points", "schema_version", "solution", "task"}


def _cells(path):
    return json.loads(pathlib.Path(path).read_text(encoding="utf-8"))["cells"]


def _meta(cell):
    return cell["metadata"].get("nbgrader")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    out = tmp_path_factory.mktemp("course")
    return out, {c: A.export(c, out, book=BOOK) for c in CHAPTERS}


def test_every_chapter_with_exercises_exports(course):
    out, paths = course
    assert len(CHAPTERS) >= 12 and (out / "nbgrader_config.py").exists()
    for chapter, path in paths.items():
        nb = A._read(BOOK / f"{chapter}.ipynb")
        auto = [n for ex in A.exercises_of(nb) for n in ex["names"]]
        cells = _cells(path)
        tests = [c for c in cells if (_meta(c) or {}).get("grade")]
        answers = [c for c in cells if (_meta(c) or {}).get("solution")]
        assert len(tests) == len(auto) and len(answers) == len(auto), chapter
        for c in tests:
            src = "".join(c["source"])
            assert "### BEGIN HIDDEN TESTS" in src and "### END HIDDEN TESTS" in src
            assert _meta(c)["locked"] and _meta(c)["points"] == 1
        for c in answers:
            src = "".join(c["source"])
            assert src.count(A.BEGIN) == src.count(A.END) >= 1
            assert "exercises.check" not in src          # the check is in the test cell
        ids = [_meta(c)["grade_id"] for c in cells if _meta(c)]
        assert len(ids) == len(set(ids))


def test_cell_metadata_follow_nbgraders_schema(course):
    _, paths = course
    jsonschema = pytest.importorskip("jsonschema")
    try:
        import nbgrader.nbgraderformat as fmt
        schema = json.loads((pathlib.Path(fmt.__file__).parent / "v3.json").read_text())
    except ImportError:
        schema = None
    for path in paths.values():
        for c in _cells(path):
            meta = _meta(c)
            if meta is None:
                continue
            assert set(meta) <= NBGRADER_KEYS and meta["schema_version"] == 3
            if schema is not None:
                jsonschema.validate(meta, schema)


DRIVER = textwrap.dedent('''
    import json, os, re, sys
    from nnbook import assignments as A
    failures = []
    for path in sys.argv[1:]:
        cells = json.load(open(path, encoding="utf-8"))["cells"]
        for student in (False, True):
            env = {}
            for c in cells:
                meta = c["metadata"].get("nbgrader", {})
                src = "".join(c["source"])
                if c["cell_type"] != "code" or not meta:
                    continue
                if meta.get("solution") and student:
                    src = A.clear_solutions(src)
                try:
                    exec(compile(src, path, "exec"), env)
                except NotImplementedError:
                    if not student:
                        failures.append(f"{path}: {meta['grade_id']} raised NotImplementedError")
                except AssertionError as e:
                    if not student or not meta.get("grade"):
                        failures.append(f"{path}: {meta['grade_id']} failed: {str(e)[:300]}")
                else:
                    if student and meta.get("grade"):
                        failures.append(f"{path}: {meta['grade_id']} passes without an answer")
    print("\\n".join(failures))
    sys.exit(1 if failures else 0)
''')


def test_exported_reference_answers_pass_and_stubs_fail(course):
    """Every exported assignment, run cell by cell in a fresh process: the reference
    answers pass every test cell, hidden tests included; nbgrader's stubs fail them."""
    _, paths = course
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM=os.environ.get("NUMBA_ENABLE_CUDASIM", "1"),
               MPLBACKEND="Agg")
    r = subprocess.run([sys.executable, "-c", DRIVER, *map(str, paths.values())],
                       capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def test_solution_regions_and_stubs_keep_signatures():
    src = ("import math\n\n\nclass ELU(nb.Layer):\n    \"\"\"doc\"\"\"\n\n"
           "    def __init__(self, alpha=1.0):\n        super().__init__()\n        self.alpha = alpha\n\n"
           "    def forward(self, x):\n        # comment\n        return x\n\n\n"
           "def f(a,\n      b):\n    \"\"\"Docstring.\"\"\"\n    return a + b\n\n\n"
           "nb.exercises.check(\"layer_l.elu_layer\", ELU)\nprint(f(1, 2))\n")
    marked = A.solution_regions(src)
    assert marked.count(A.BEGIN) == 3 and "print" not in marked and "check" not in marked
    stub = A.clear_solutions(marked)
    assert "def f(a,\n      b):\n    \"\"\"Docstring.\"\"\"\n    # YOUR CODE HERE\n    raise NotImplementedError()" in stub
    assert "    def forward(self, x):\n        # YOUR CODE HERE\n        raise NotImplementedError()" in stub
    assert "return a + b" not in stub and "super().__init__()" not in stub and "import math" in stub
    ns = {"nb": __import__("nnbook")}
    exec(stub, ns)                                    # the stub is valid Python


# ----------------------------------------------------------------------------- nbgrader
WRONG = {   # a submission: one right, two classic mistakes, one left as it was released
    "backprop_softmax_xent_grad_answer": None,            # the reference answer
    "backprop_sigmoid_bce_grad_answer":                   # sigmoid' applied a second time
        "def grad(a_hat, y):\n    s = 1 / (1 + np.exp(-a_hat))\n    return (s - y) * s * (1 - s)\n",
    "backprop_input_gradient_answer":                     # the thesis's eq. 3.48 as printed
        "def gradient_input(gradient_h1, W0):\n    return np.full(W0.shape[0], gradient_h1.sum())\n",
}


def _nbgrader(course, *args):
    exe = shutil.which("nbgrader", path=str(pathlib.Path(sys.executable).parent)) or "nbgrader"
    path = os.pathsep.join([str(pathlib.Path(sys.executable).parent), os.environ.get("PATH", "")])
    r = subprocess.run([exe, *args], cwd=course, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, NUMBA_ENABLE_CUDASIM="1", MPLBACKEND="Agg",
                                PATH=path))        # nbgrader runs alembic from PATH
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r


def _submit(course, name, student, release, answers):
    nb = copy.deepcopy(release)
    for c in nb["cells"]:
        gid = (_meta(c) or {}).get("grade_id")
        if (_meta(c) or {}).get("solution") and answers.get(gid) is not None:
            c["source"] = A._lines(answers[gid])
    path = course / "submitted" / student / name / f"{name}.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")


def test_nbgrader_generates_the_student_version_and_autogrades(tmp_path):
    pytest.importorskip("nbgrader", reason="nbgrader is not installed (pip install 'nnbook[teach]')")
    from nbgrader.api import Gradebook

    name = "backprop_one_hidden"
    r = subprocess.run([sys.executable, "-m", "nnbook", "assignments", "export", f"part1/{name}",
                        "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    source = tmp_path / "source" / name / f"{name}.ipynb"
    _nbgrader(tmp_path, "generate_assignment", name, "--force")
    release = json.loads((tmp_path / "release" / name / f"{name}.ipynb").read_text())
    text = json.dumps(release)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "cases=(" not in text
    assert "np.exp(Z - Z.max())" not in text and "W0 @ gradient_h1" not in text
    stubs = ["".join(c["source"]) for c in release["cells"] if (_meta(c) or {}).get("solution")]
    assert len(stubs) == 4 and all("raise NotImplementedError()" in s for s in stubs)

    answers = {_meta(c)["grade_id"]: "\n".join(
        line for line in "".join(c["source"]).split("\n") if "SOLUTION" not in line)
        for c in _cells(source) if (_meta(c) or {}).get("solution")}
    _submit(tmp_path, name, "reference", release, answers)
    _submit(tmp_path, name, "mistakes", release,
            {k: answers[k] if v is None else v for k, v in WRONG.items()})
    _nbgrader(tmp_path, "autograde", name, "--force")
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
        ref = gb.find_submission(name, "reference")
        wrong = gb.find_submission(name, "mistakes")
        assert ref.max_score == 4 and ref.score == 4
        assert wrong.score == 1                           # the one right answer


# ----------------------------------------------------------------------------- student edition
@pytest.fixture(scope="module")
def student(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    r = subprocess.run([sys.executable, "-m", "nnbook", "assignments", "student-edition",
                        "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert {f"{c}.ipynb" for c in A.chapters(BOOK)} == {
        str(p.relative_to(out)) for p in out.rglob("*.ipynb")}
    return out


def test_the_student_edition_has_no_solutions(student):
    for chapter in A.chapters(BOOK):
        book_nb = A._read(BOOK / f"{chapter}.ipynb")
        cells = _cells(student / f"{chapter}.ipynb")
        assert not any("hide-cell" in c["metadata"].get("tags", []) for c in cells)
        # the exercise cells: stubs followed by their checks
        text = "".join("".join(c["source"]) for c in cells if "exercises.check(" in "".join(c["source"]))
        for ex in A.exercises_of(book_nb):
            if not ex["names"]:
                continue
            solution = A.solution_regions("".join(book_nb["cells"][ex["cell"]]["source"]))
            body, inside = [], False                  # the lines inside the solution regions
            for line in solution.split("\n"):
                inside = (inside or A.BEGIN in line) and A.END not in line
                if inside and A.BEGIN not in line and line.strip() and not line.strip().startswith("#"):
                    body.append(line.strip())
            assert body and not any(l in text for l in body if len(l) > 12), chapter


@pytest.mark.parametrize("chapter", EXECUTED)
def test_the_student_edition_runs_to_the_end_with_the_stubs(student, chapter):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    path = student / f"{chapter}.ipynb"
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(BOOK / chapter.split("/")[0])}})
    client.execute()                                  # raises if a cell raises
    stubs = [c for c in nb.cells if c.cell_type == "code" and "exercises.check(" in c.source
             and "NotImplementedError" in c.source]
    assert len(stubs) >= 4
    for c in stubs:
        out = "".join(o.get("text", "") for o in c.outputs)
        assert "not attempted yet" in out, c.source
