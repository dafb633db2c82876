"""Exercises of the chapters "Backpropagation with one hidden layer" and
"Backpropagation with two hidden layers" (the checks; the stored cases are in
``nnbook/exercise_data/backprop.*``).  Several of the known-wrong answers the checks
reject are errata of the source thesis."""
from ..exercises import register

# --- chapter: one hidden layer --------------------------------------------------------
register(
    "backprop.softmax_xent_grad",
    "Write grad(Z, y): dE/dZ for E = -sum_k y_k log softmax(Z)_k, for logits Z of shape (K,) "
    "and a target y that sums to 1. It must be finite for very large |Z|.",
    rtol=1e-7, atol=1e-12,
)

register(
    "backprop.sigmoid_bce_grad",
    "Write grad(a_hat, y): dH/da_hat for one sigmoid output per sample, "
    "H = -[y log z + (1 - y) log(1 - z)], z = sigmoid(a_hat), elementwise over arrays "
    "a_hat, y of the same shape (y in [0, 1]); finite for any a_hat.",
    rtol=1e-7, atol=1e-12,
)

register(
    "backprop.hidden_gradient",
    "Write gradient_h1(gradient_Z, W1, a1) for a ReLU hidden layer: dE/da1_p = "
    "sum_k gradient_Z_k W1[p, k] ReLU'(a1_p), with W1 of shape (P, K), a1 of shape (P,), "
    "and ReLU'(0) = 0.",
    rtol=1e-7, atol=1e-12,
)

register(
    "backprop.input_gradient",
    "Write gradient_input(gradient_h1, W0): dE/dx_i for the input neurons, with W0 of "
    "shape (I, P) joining input i to hidden neuron p.",
    rtol=1e-7, atol=1e-12,
)

# --- chapter: two hidden layers ---------------------------------------------------------
register(
    "backprop.sigmoid_layer_gradient",
    "Write gradient_h2(gradient_Z, W2, a2) for a sigmoid hidden layer: dE/da2_p = "
    "sum_k gradient_Z_k W2[p, k] sigmoid'(a2_p), W2 of shape (P, K); finite for any a2.",
    rtol=1e-7, atol=1e-12,
)

register(
    "backprop.batch_weight_gradient",
    "nnbook's loss is the MEAN over a batch of N samples. Given the per-sample gradients "
    "gradient_next (N, Q) = dE_n/da_next and the previous layer's outputs z_prev (N, J), "
    "write dW(gradient_next, z_prev): the (J, Q) gradient of the batch loss.",
    rtol=1e-7, atol=1e-12,
)
