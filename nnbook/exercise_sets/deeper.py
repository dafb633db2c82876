"""Exercises of the chapter "Deeper networks: normalisation, residual connections,
regularisation" (names ``deeper.*``; the checks, the stored cases are in
``nnbook/exercise_data/deeper.*``)."""
from ..exercises import register

register(
    "deeper.batchnorm_backward",
    "Write batchnorm_backward(x, gamma, dout, eps) for batch normalisation of x (N, D) in "
    "training mode, y = gamma * (x - mean) / sqrt(var + eps) + beta with the batch mean and "
    "the biased batch variance of each column: return (dx, dgamma, dbeta), the gradients "
    "of the loss given dout = dL/dy (N, D).",
    rtol=1e-7, atol=1e-9,
)

register(
    "deeper.residual_backward",
    "A residual block computes out = relu(x + relu(x @ W1) @ W2) for x (N, D), W1 (D, H), "
    "W2 (H, D), without biases. Write residual_backward(x, W1, W2, dout) returning "
    "(dx, dW1, dW2) for dout = dL/dout (N, D); take relu'(0) = 0.",
    rtol=1e-9, atol=1e-12,
)

register(
    "deeper.running_stats",
    "Batch normalisation of (m, D) batches keeps running statistics that start at mean 0 "
    "and variance 1. Write running_stats(batches, momentum) returning (mean, var) after the "
    "training-mode updates of PyTorch and nnbook: running = (1 - momentum) * running + "
    "momentum * batch statistic, with the unbiased (m - 1) batch variance.",
    rtol=1e-10, atol=1e-12,
)

register(
    "deeper.shift_images",
    "Write shift_images(X, dy, dx): images X (N, H, W), integer shifts dy, dx (N,); image n "
    "moves dy[n] rows down and dx[n] columns right (negative: up, left); pixels that come "
    "in from outside are 0 and pixels that leave are lost. Return a new array of X's dtype.",
)

register(
    "deeper.adamw",
    "AdamW with lr 0.01, weight decay 0.1, betas (0.9, 0.999), eps 1e-8 (PyTorch's rule: "
    "first p = p * (1 - lr * wd), then Adam's bias-corrected step, steps counted from "
    "t = 1). Apply the gradients grads (T, D) in turn to p0 (D,) and return the final p.",
    rtol=1e-7, atol=1e-10,
)

register(
    "deeper.bottleneck_params",
    "Write bottleneck_params(c_in, c_out, stride): the number of trainable parameters of "
    "nb.Bottleneck(c_in, c_out, stride=stride) as nnbook builds it, counted from the "
    "shapes, without building the layer. The main path is 1x1 conv (c_in -> w), 3x3 conv "
    "(w -> w, the stride), 1x1 conv (w -> c_out) with w = max(1, c_out // 4), each "
    "followed by batch norm (gamma and beta; the running statistics are not trained); "
    "convolutions before a batch norm have no bias. Where stride != 1 or c_in != c_out "
    "the shortcut is a 1x1 conv (c_in -> c_out) followed by batch norm, else the identity.",
)

register(
    "deeper.dropout_forward_backward",
    "Write dropout_forward_backward(x, mask, p, dout) for inverted dropout in training "
    "mode, as nnbook's Dropout computes it: mask (x's shape, boolean) is True where a "
    "unit is kept (each is dropped with probability p, 0 <= p < 1). Return (out, dx): "
    "the layer's output for x and the gradient of the loss with respect to x given "
    "dout = dL/dout.",
    rtol=1e-12, atol=1e-12,
)

register(
    "deeper.early_stopping",
    "Write early_stopping(val_losses, patience) for the chapter's EarlyStopping rule: "
    "epochs are counted from 0; after each epoch, its validation loss improves if it is "
    "strictly below the best so far (the first epoch always does; a tie does not), and "
    "training stops after the first epoch e with e - best_epoch >= patience. Return "
    "(best_epoch, stop_epoch) over the epochs of val_losses, with stop_epoch None if "
    "the rule never stops training.",
)
