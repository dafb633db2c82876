"""Exercises of the chapter "Vanishing and exploding gradients; initialisation" (names
``init.*``; the checks, the stored cases are in ``nnbook/exercise_data/initialisation.*``)."""
from ..exercises import register

register(
    "init.glorot_std",
    "Return the standard deviation of Glorot's normal initialisation for a layer with "
    "fan_in inputs and fan_out outputs.",
)

register(
    "init.uniform_limit",
    "Return a such that U(-a, a) has the given variance (elementwise for an array).",
)

register(
    "init.relu_second_moments",
    "A ReLU MLP has weights N(0, scale*2/fan_in) and zero biases; its input has E[x^2] = q0. "
    "Return the predicted E[a_l^2] of the pre-activations of each Dense layer l (the first "
    "Dense layer sees x itself, the later ones see ReLU outputs).",
)

register(
    "init.spectral_radius",
    "Return the spectral radius of a square matrix J (the largest |eigenvalue|; the "
    "eigenvalues may be complex).",
    rtol=1e-8, atol=1e-10,
)

register(
    "init.relu_layer_jacobian",
    "A layer computes z_next = relu(a) with a = z @ W + b (W of shape (n_in, n_out), one "
    "sample). Given W and the pre-activation a (shape (n_out,)), return the Jacobian "
    "d z_next / d z, of shape (n_out, n_in).",
)

register(
    "init.clip_by_norm",
    "Clip a gradient vector g by its norm: return g * min(1, c / ||g||) (and g itself "
    "when g = 0).",
)
