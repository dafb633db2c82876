"""nnbook: neural networks from first principles, fast on CPUs and GPUs.

>>> import nnbook as nb
>>> nb.seed(0)
>>> model = nb.Sequential(nb.Dense(4, 3), nb.ReLU(), nb.Dense(3, 2))
>>> model.forward(nb.xp.ones((5, 4), dtype="float32")).shape
(5, 2)
"""
from __future__ import annotations

from . import backend, data, functional, gradcheck, init, neurons  # noqa: F401
from .backend import (asarray, backend_name, get_default_dtype, get_rng, get_xp,
                      gpu_available, seed, set_default_dtype, to_numpy, use)
from .doctor import doctor
from .gradcheck import check_layer, check_loss, check_model, numerical_gradient, rel_error
from .layers import Dense, Identity, Layer, Param, ReLU, Sigmoid, Softmax, Tanh
from .losses import MSE, BinaryCrossEntropy, Loss, SoftmaxCrossEntropy, get_loss
from .models import Sequential, load_model, mlp, register_layer
from .optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop
from .train import History, accuracy, evaluate, fit
from .conv import AvgPool2D, BatchNorm1d, BatchNorm2d, Conv2D, Flatten, MaxPool2D
from .lenet import LeNet5
from . import (autodiff, conv, exercises, explorers, lenet, losses, models, optim,  # noqa: F401
               results, schedules, train)

__version__ = "0.1.0"

__all__ = [
    "use", "get_xp", "xp", "backend_name", "gpu_available", "to_numpy", "asarray", "seed",
    "get_rng", "set_default_dtype", "get_default_dtype", "doctor",
    "Layer", "Param", "Dense", "ReLU", "Sigmoid", "Tanh", "Identity", "Softmax",
    "Sequential", "mlp", "load_model", "register_layer",
    "Loss", "SoftmaxCrossEntropy", "BinaryCrossEntropy", "MSE", "get_loss",
    "Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "Adagrad",
    "fit", "evaluate", "History", "accuracy",
    "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten", "BatchNorm1d", "BatchNorm2d", "LeNet5",
    "numerical_gradient", "rel_error", "check_layer", "check_model", "check_loss",
    "data", "functional", "gradcheck", "init", "neurons", "autodiff", "conv", "exercises",
    "explorers", "lenet", "losses", "models", "optim", "results", "schedules", "train",
]


def __getattr__(name):
    # ``nb.xp`` always names the *active* array module, even after nb.use(...).
    if name == "xp":
        return get_xp()
    raise AttributeError(f"module 'nnbook' has no attribute {name!r}")
