"""Every exercise's check accepts the reference and rejects the known-wrong answer."""
import pytest

from nnbook import exercises

exercises._load_all()
NAMES = sorted(exercises.REGISTRY)


@pytest.mark.parametrize("name", NAMES)
def test_reference_passes(name, capsys):
    ex = exercises.get(name)
    assert ex.run(ex.reference) is True
    assert "Correct!" in capsys.readouterr().out


@pytest.mark.parametrize("name", NAMES)
def test_known_wrong_answer_fails(name):
    ex = exercises.get(name)
    with pytest.raises(exercises.ExerciseError) as e:
        ex.run(ex.wrong, quiet=True)
    msg = str(e.value)
    assert name in msg and ("expected" in msg or "raised" in msg or "modified" in msg)


def test_messages_are_helpful():
    with pytest.raises(exercises.ExerciseError, match=r"(?s)case 1/\d+ is wrong.*\n  input: .*\n  expected: .*\n  got: "):
        exercises.check("basics.softmax", lambda z: z)
    with pytest.raises(exercises.ExerciseError, match="raised ZeroDivisionError"):
        exercises.check("basics.softmax", lambda z: 1 / 0)
    with pytest.raises(ValueError, match="no exercise 'basics.nope'"):
        exercises.check("basics.nope", lambda z: z)
    with pytest.raises(TypeError, match="fn: expected your function"):
        exercises.check("basics.softmax", 3)


def test_inputs_modified_in_place_are_caught():
    def bad(z):
        z -= z.max(axis=1, keepdims=True)
        import numpy as np
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    with pytest.raises(exercises.ExerciseError, match="modified its input in place"):
        exercises.check("basics.softmax", bad)
