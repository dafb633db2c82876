"""Exercises of the chapter "Machine-learning basics" (the checks; the stored cases are
in ``nnbook/exercise_data/basics.*``)."""
from ..exercises import register

register(
    "basics.learning_curve",
    "A learning curve: for each n in sizes (in that order), fit the least-squares polynomial "
    "of degree `degree` to the first n training pairs (x_train[:n], y_train[:n]), as "
    "np.polynomial.Polynomial.fit does, and return the held-out errors, a float array of "
    "shape (len(sizes),): each fit's mean squared error over all the test pairs (x_test, "
    "y_test). Every n is between degree + 1 and len(x_train), so each fit is unique.",
    rtol=1e-8, atol=1e-12,
)

register(
    "basics.softmax",
    "Write softmax(z) for a batch z of shape (N, K), row by row, stable for large |z|.",
)

register(
    "basics.sigmoid_grad",
    "Write the derivative of the logistic sigmoid, elementwise, for any real x.",
    rtol=1e-6, atol=1e-12,
)

register(
    "basics.relu_grad",
    "Write the derivative of ReLU, elementwise, as an array of the input's shape, taking "
    "ReLU'(0) = 0 (nnbook's convention).",
)

register(
    "basics.one_hot",
    "Write one_hot(y, K): integer labels y of shape (N,) in 0..K-1 -> an (N, K) float array "
    "with a single 1 per row, in the column of the label (K may exceed max(y) + 1).",
)

register(
    "basics.cross_entropy",
    "Write the mean cross-entropy of predicted probabilities P (N, K), rows summing to 1, "
    "against integer labels y (N,): -(1/N) sum_n ln P[n, y_n]. Return a float. (Some "
    "probabilities of the wrong classes may be exactly 0.)",
    rtol=1e-10,
)

register(
    "basics.gradient_descent",
    "Minimise f(x) = x^T A x / 2 - b^T x (A symmetric) by gradient descent: starting at x0, "
    "take `steps` steps x <- x - lr * grad f(x) and return the last x (a new array: do not "
    "change x0).",
    rtol=1e-9,
)
