"""The exercises: checks that do not carry their answers.

* the stored cases shipped in ``nnbook/exercise_data`` are what the reference answers in
  ``book/_exercises`` produce (regenerated here and compared);
* every reference passes ``nb.exercises.check`` and every known-wrong answer fails it;
* no reference answer is in the installed package (nor in the wheel);
* the messages say which case failed, what was expected and what came back, and a stub
  that still raises NotImplementedError is reported as not attempted, without an error.
"""
import ast
import inspect
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

from nnbook import exercises
from nnbook.exercises import _store
from nnbook.exercises.build import build, load_solutions, verify

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOLUTIONS = load_solutions(ROOT / "book" / "_exercises")
exercises._load_all()
NAMES = sorted(exercises.REGISTRY)
WRONG = [(n, d) for n in NAMES for d in SOLUTIONS[n].wrong]


def test_every_exercise_has_a_reference_and_a_known_wrong_answer():
    assert sorted(SOLUTIONS) == NAMES
    assert all(SOLUTIONS[n].wrong for n in NAMES)


def test_shipped_data_match_the_references():
    """Regenerated from the references: structure, inputs and integers identical, floats
    equal to 1e-12 (another CPU's BLAS or libm may round the last bit differently)."""
    assert verify(ROOT / "book" / "_exercises") == []


def test_build_data_writes_the_same_bytes_twice(tmp_path):
    a = build(ROOT / "book" / "_exercises", tmp_path / "a")
    b = build(ROOT / "book" / "_exercises", tmp_path / "b")
    assert [p.name for p in a] == [p.name for p in b]
    assert all(p.read_bytes() == q.read_bytes() for p, q in zip(a, b))
    assert {p.name for p in a} == {p.name for p in exercises.DATA_DIR.iterdir()}


@pytest.mark.parametrize("name", NAMES)
def test_reference_passes(name, capsys):
    assert exercises.check(name, SOLUTIONS[name].reference) is True
    assert f"Correct! {name} passed all" in capsys.readouterr().out


@pytest.mark.parametrize("name, mistake", WRONG)
def test_known_wrong_answer_fails(name, mistake):
    with pytest.raises(exercises.ExerciseError) as e:
        exercises.get(name).run(SOLUTIONS[name].wrong[mistake], quiet=True)
    msg = str(e.value)
    assert msg.startswith(name) and "input" in msg
    assert any(w in msg for w in ("is wrong", "raised", "modified its input", "indexed outside"))


@pytest.mark.parametrize("name", NAMES)
def test_every_exercise_has_at_least_five_stored_cases(name):
    assert len(exercises.get(name).cases()) >= 5


def test_hidden_cases_differ_from_the_stored_ones_and_still_check():
    """An assignment's hidden tests draw the same generators with another seed."""
    from nnbook.exercises.build import make_cases
    for name in ("basics.softmax", "gd.logcosh_grad", "gpu.bias_relu_kernel"):
        hidden = make_cases(name, SOLUTIONS[name], seed=1)
        packed = _store.dumps(hidden)
        assert _store.same(_store.loads(packed), hidden) == []
        assert _store.same(hidden, exercises.get(name).cases()) != []
        assert exercises.check(name, SOLUTIONS[name].reference, cases=packed, quiet=True)


def test_store_round_trips_every_kind_of_value():
    value = {"a": (np.arange(3, dtype=np.int32), [1.5, float("inf"), float("nan")], None),
             "b": [np.float32(2.5), np.int64(7), True, "text", np.zeros((0, 2))],
             "c": np.array([[1 + 2j]])}
    back = _store.loads(_store.dumps(value))
    assert _store.same(back, value) == []
    assert type(back["b"][0]) is np.float32 and isinstance(back["a"], tuple)


# ------------------------------------------------------------------ no answers in the package
def _functions(tree):
    """ast.unparse of every function and class, docstrings removed: code, not comments."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            node = ast.parse(ast.unparse(node)).body[0]
            for n in ast.walk(node):
                body = getattr(n, "body", None)
                if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                        and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
                    n.body = body[1:] or [ast.Pass()]
            node.decorator_list = []
            out.append(ast.unparse(node))
    return out


def test_no_reference_answer_is_importable_from_the_package():
    """No reference answer is shipped.  (Some exercises ask for a function that the
    package implements for the book's own use -- softmax, the DE operators -- and a
    reader may of course call that one; the references here are separate code.)"""
    # the registered exercise carries no answer
    fields = {f.name for f in exercises.Exercise.__dataclass_fields__.values()}
    assert not fields & {"reference", "wrong", "solution"}
    for name in NAMES:
        assert not hasattr(exercises.get(name), "reference")
    # no reference is an object of the package ...
    package_code = set()
    for path in (ROOT / "nnbook").rglob("*.py"):
        package_code.update(_functions(ast.parse(path.read_text(encoding="utf-8"))))
    for name, sol in SOLUTIONS.items():
        ref = getattr(sol.reference, "py_func", sol.reference)
        assert ref.__module__.split(".")[0] != "nnbook", name
        # ... and no reference's code (without docstrings and decorators) is in its sources
        src = textwrap.dedent(inspect.getsource(ref))
        for code in _functions(ast.parse(src))[:1]:
            assert code not in package_code, f"{name}: the reference's code is in nnbook"


def test_the_wheel_carries_the_checks_but_no_answers(tmp_path):
    """Build the wheel from pyproject.toml and nnbook/ alone and list what it contains."""
    src = tmp_path / "src"
    src.mkdir()
    for f in ("pyproject.toml", "README.md", "LICENSE", "LICENSE-TEXT"):
        shutil.copy(ROOT / f, src / f)
    shutil.copytree(ROOT / "nnbook", src / "nnbook", ignore=shutil.ignore_patterns("__pycache__"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "-q", str(src), "-w", str(tmp_path / "dist")],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {r.stderr[-300:]}")
    (whl,) = (tmp_path / "dist").glob("*.whl")
    names = zipfile.ZipFile(whl).namelist()
    shipped = {p.name for p in exercises.DATA_DIR.iterdir()}
    assert shipped <= {pathlib.PurePath(n).name for n in names if "/exercise_data/" in n}
    assert not [n for n in names if "_exercises" in n or n.startswith("book/")]
    text = "".join(zipfile.ZipFile(whl).read(n).decode("utf-8", "replace")
                   for n in names if n.endswith(".py"))
    assert not re.search(r"^SOLUTIONS = \{", text, re.M)


# ------------------------------------------------------------------------------ messages
def test_messages_are_helpful():
    with pytest.raises(exercises.ExerciseError, match=r"(?s)case 1/\d+ is wrong.*\n  input: .*\n  expected: .*\n  got: "):
        exercises.check("basics.softmax", lambda z: z)
    with pytest.raises(exercises.ExerciseError, match="raised ZeroDivisionError"):
        exercises.check("basics.softmax", lambda z: 1 / 0)
    with pytest.raises(ValueError, match="no exercise 'basics.nope'"):
        exercises.check("basics.nope", lambda z: z)
    with pytest.raises(TypeError, match="fn: expected your function"):
        exercises.check("basics.softmax", 3)
    with pytest.raises(exercises.ExerciseError, match="pass the kernel itself"):
        exercises.check("gpu.bias_relu_kernel", lambda Z, b, out: None)


def test_inputs_modified_in_place_are_caught():
    def bad(z):
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    with pytest.raises(exercises.ExerciseError, match="modified its input in place"):
        exercises.check("basics.softmax", bad)


def test_a_stub_is_not_attempted_yet_not_an_error(capsys):
    def softmax(z):
        # YOUR CODE HERE
        raise NotImplementedError()

    class ELU:
        def __init__(self, alpha=1.0):
            raise NotImplementedError()

    from nnbook.kernels import cuda

    @cuda.jit
    def bias_relu(Z, b, out):
        raise NotImplementedError()

    for name, stub in (("basics.softmax", softmax), ("layer_l.elu_layer", ELU),
                       ("gpu.bias_relu_kernel", bias_relu)):
        assert exercises.check(name, stub) is False
        assert "not attempted yet" in capsys.readouterr().out
