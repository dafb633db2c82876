"""Training without gradients: differential evolution, SHADE, SHADE-ILS and
their hybrids with gradient descent.

A network's parameters are one point of R^D (:func:`get_flat` / :func:`set_flat`);
a metaheuristic moves a *population* of such points, stored as the rows of a
matrix P of shape (popsize, D).  :func:`population_loss` evaluates the loss of
every row in one batched pass for an MLP (``X @ W[p]`` over the population
axis, with the array module of :func:`nnbook.get_xp`, so it runs on CuPy too),
and member by member for a convolutional network such as LeNet-5 (layer by
layer over chunks of the data; a BatchNorm layer in training mode normalises
with the statistics of the whole data, see :func:`calibrate_batchnorm`).

Algorithms (all minimise; all take ``seed`` and a budget ``max_evals`` in
function evaluations, and return an :class:`OptimizeResult` with the best point
and its history):

=====================  =========================================================
:func:`de`             differential evolution, DE/rand/1/bin or
                       DE/current-to-pbest/1/bin with an archive (Storn & Price
                       1997; Zhang & Sanderson 2009)
:func:`shade`          success-history adaptive DE (Tanabe & Fukunaga 2013)
:func:`shade_ils`      SHADE + iterated local search with L-BFGS-B and restarts
                       (Molina, LaTorre & Herrera 2018)
:func:`shade_gd`       SHADE whose local search is k epochs of an nnbook optimizer
:func:`shade_ils_gd`   SHADE-ILS choosing between L-BFGS-B and gradient descent
=====================  =========================================================

Objectives are *batched*: ``f(P)`` takes (popsize, D) and returns (popsize,).
:class:`NetProblem` wraps a model, a loss and training data into such an
objective that also offers ``value_and_grad`` (backpropagation, for L-BFGS-B)
and ``descend`` (epochs of an nnbook optimizer, for the hybrids).

Counting: one function evaluation (FE) is one evaluation of the objective at
one point (for a network, the loss over the whole training set).  A call of
``value_and_grad`` counts as one FE, and one epoch of mini-batch gradient
steps also counts as one FE (it visits every example once), although a
backward pass costs about two more forwards; wall-clock time is reported too.

The code lives in submodules, each importing only those above it; every name
is available here:

========================  ======================================================
``population``            flat parameter vectors, batched population evaluation
``problems``              :class:`NetProblem`, :class:`FunctionProblem`, test
                          functions, :func:`make_optimizer`
``operators``             mutation, crossover, repair, SHADE's memory update
``common``                :class:`OptimizeResult` and the algorithms' bookkeeping
``evolution``             :func:`de`, :func:`shade`
``local_search``          :class:`LBFGSB`, :class:`GradientDescentLS`
``memetic``               :func:`shade_ils`, :func:`shade_gd`, :func:`shade_ils_gd`
``metrics``               accuracy, balanced accuracy, MSE, R²
``datasets``              :func:`~nnbook.metaheuristics.datasets.load_dataset` (the thesis's data preparation)
``experiment``            the thesis's experiment: :func:`~nnbook.metaheuristics.experiment.run_gradient`,
                          :func:`~nnbook.metaheuristics.experiment.run_metaheuristic` and their networks
========================  ======================================================
"""
from __future__ import annotations

from .common import OptimizeResult
from .datasets import load_dataset  # noqa: F401
from .evolution import de, shade
from .experiment import (LENET5, MH_METHODS, MLP_HIDDEN, THESIS_PARAM_COUNTS,  # noqa: F401
                         build_lenet5, build_mlp, build_net,  # noqa: F401
                         fastai_tabular_param_count, run_gradient,  # noqa: F401
                         run_metaheuristic, task_metrics)  # noqa: F401
from .local_search import LBFGSB, GradientDescentLS
from .memetic import shade_gd, shade_ils, shade_ils_gd
from .metrics import accuracy, balanced_accuracy, mse, r2_score
from .operators import (binomial_crossover, bounce_back, current_to_pbest_1, de_rand_1,
                        lehmer_mean, midpoint_repair, sample_cr_f, shade_memory_update,
                        weighted_mean)
from .population import (_run_plan, calibrate_batchnorm, get_flat, param_count,  # noqa: F401
                         population_forward, population_loss, set_flat)
from .problems import (TEST_FUNCTIONS, FunctionProblem, NetProblem, make_optimizer, rastrigin,
                       rastrigin_grad, rosenbrock, rosenbrock_grad, sphere, sphere_grad)

__all__ = [
    "param_count", "get_flat", "set_flat", "population_forward", "population_loss",
    "calibrate_batchnorm", "NetProblem", "FunctionProblem", "OptimizeResult",
    "de", "shade", "shade_ils", "shade_gd", "shade_ils_gd",
    "LBFGSB", "GradientDescentLS", "make_optimizer",
    "lehmer_mean", "weighted_mean", "shade_memory_update", "sample_cr_f",
    "bounce_back", "midpoint_repair", "de_rand_1", "current_to_pbest_1", "binomial_crossover",
    "sphere", "rastrigin", "rosenbrock", "sphere_grad", "rastrigin_grad", "rosenbrock_grad",
    "TEST_FUNCTIONS", "accuracy", "balanced_accuracy", "mse", "r2_score",
]
