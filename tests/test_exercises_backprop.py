"""The backprop chapters' exercises: each check accepts the reference and the
per-neuron solution from nnbook.neurons, and rejects its known-wrong answers."""
import pathlib

import numpy as np
import pytest

from nnbook import exercises
from nnbook import neurons as ne
from nnbook.exercises.build import load_solutions

REFERENCES = load_solutions(pathlib.Path(__file__).resolve().parents[1] / "book" / "_exercises")

NAMES = ["backprop.softmax_xent_grad", "backprop.sigmoid_bce_grad",
         "backprop.hidden_gradient", "backprop.input_gradient",
         "backprop.sigmoid_layer_gradient", "backprop.batch_weight_gradient"]

# solutions written with the thesis's per-neuron functions
SOLUTIONS = {
    "backprop.softmax_xent_grad": lambda Z, y: ne.softmax_xent_gradient(ne.softmax(Z), y),
    "backprop.sigmoid_bce_grad": lambda a, y: np.array(
        [ne.sigmoid_bce_output_gradient(ai, yi) for ai, yi in zip(a.ravel(), y.ravel())]
    ).reshape(a.shape),
    "backprop.hidden_gradient": lambda g, W1, a1: ne.neuron_gradients(g, W1, a1, "relu"),
    "backprop.input_gradient": ne.input_gradients,
    "backprop.sigmoid_layer_gradient": lambda g, W, a: ne.neuron_gradients(g, W, a, "sigmoid"),
    "backprop.batch_weight_gradient": lambda g, z: sum(
        ne.weight_gradients(g[n], z[n]) for n in range(len(g))) / len(g),
}


def test_all_registered():
    exercises._load_all()
    found = sorted(k for k in exercises.REGISTRY if k.startswith("backprop."))
    assert found == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_reference_passes_and_wrong_fails(name):
    ex = exercises.get(name)
    assert ex.run(REFERENCES[name].reference, quiet=True)
    assert exercises.check(name, SOLUTIONS[name])
    for wrong in REFERENCES[name].wrong.values():
        with pytest.raises(exercises.ExerciseError):
            ex.run(wrong, quiet=True)
