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
from .layers import (Dense, Dropout, Flatten, Identity, Layer, LeakyReLU, Param, ReLU,
                     Sigmoid, Softmax, Tanh, register_layer)
from .conv import Conv2D
from .pool import AdaptiveAvgPool2D, AvgPool2D, GlobalAvgPool2D, MaxPool2D
from .norm import BatchNorm1d, BatchNorm2d
from .residual import BasicBlock, Bottleneck
from .losses import MSE, BinaryCrossEntropy, Loss, SoftmaxCrossEntropy, get_loss
from .models import LeNet5, Sequential, load_model, mlp
from .optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop
from .train import History, accuracy, evaluate, fit
from . import (autodiff, conv, exercises, lenet, losses, models,  # noqa: F401
               norm, optim, pool, residual, results, schedules, train)

__version__ = "0.1.0"

__all__ = [
    "use", "get_xp", "xp", "backend_name", "gpu_available", "to_numpy", "asarray", "seed",
    "get_rng", "set_default_dtype", "get_default_dtype", "doctor",
    "Layer", "Param", "Dense", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Identity", "Softmax",
    "Dropout",
    "Sequential", "mlp", "load_model", "register_layer",
    "Loss", "SoftmaxCrossEntropy", "BinaryCrossEntropy", "MSE", "get_loss",
    "Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "Adagrad",
    "fit", "evaluate", "History", "accuracy",
    "Conv2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "AdaptiveAvgPool2D", "Flatten",
    "BatchNorm1d", "BatchNorm2d", "BasicBlock", "Bottleneck", "LeNet5",
    "numerical_gradient", "rel_error", "check_layer", "check_model", "check_loss",
    "data", "functional", "gradcheck", "init", "neurons", "autodiff", "conv", "engine",
    "exercises", "explorers", "lenet", "losses", "models", "norm", "optim", "pool", "results",
    "residual", "schedules", "train",
]


def __getattr__(name):
    # ``nb.xp`` always names the *active* array module, even after nb.use(...).
    if name == "xp":
        return get_xp()
    # the explorers (drawing and widgets) are imported on first use of ``nb.explorers``
    # so is the training engine (it loads numba for its compiled kernels): on the
    # first ``nb.fit`` or ``nb.engine``
    if name in ("explorers", "engine"):
        import importlib  # noqa: PLC0415
        return importlib.import_module("." + name, __name__)
    raise AttributeError(f"module 'nnbook' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"xp", "explorers", "engine"})
