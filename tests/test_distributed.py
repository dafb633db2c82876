"""Data-parallel training (nnbook.distributed).

* In one process, without MPI: the weighted gradient average (a fake
  communicator, then ranks as threads), the allreduce algorithms, deadlock and
  error reporting, the α–β formulas.
* Under ``mpiexec -n 2`` (and 3), each run in a subprocess with a timeout: p
  processes on global batch B train the weights of one process on batch B (MLP
  and a small conv net), the book's allreduces agree with MPI's, and a rank that
  raises ends the job with its error.  Skipped where mpi4py or mpiexec is missing.
* NCCL (marker ``gpu``): skipped without a GPU, and the two-process run without two.

The contract's tolerance: after 14 SGD steps with momentum the weights of p
processes differ from one process's by a relative (norm-wise) 1e-7 in float32 and
2e-16 in float64 (measured); the tests allow 1e-5 and 1e-13.  They are not equal
bit for bit because a shard's gradient is a sum over fewer rows, added to the
other shards' afterwards: the same numbers summed in another order.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

import nnbook as nb
import nnbook.distributed as dist
from nnbook.distributed import launch
from nnbook.engine import compile_step

MPI_OK, MPI_WHY = launch.available()
needs_mpi = pytest.mark.skipif(not MPI_OK, reason=f"needs MPI: {MPI_WHY}")
TIMEOUT = 180          # seconds for any one mpiexec job (they take 1-5 s)
F32_TOL, F64_TOL = 1e-5, 1e-13


# ------------------------------------------------------------------ one process, no MPI
@pytest.mark.parametrize("n,p", [(10, 3), (128, 4), (2, 3), (0, 2), (7, 1)])
def test_shards_cover_the_batch_in_order(n, p):
    parts = [dist.shard(n, p, r) for r in range(p)]
    rows = [i for s in parts for i in range(n)[s]]
    assert rows == list(range(n))
    sizes = [s.stop - s.start for s in parts]
    assert max(sizes) - min(sizes) <= 1


class FakeComm(dist.Communicator):
    """Rank 0 of ``size`` ranks whose other ranks' (already weighted) gradients are
    given: allreduce_ adds them, as a real allreduce would."""
    name = "fake"

    def __init__(self, size, others):
        self.rank, self.size, self.others = 0, size, others

    def _allreduce_(self, buf):
        buf += self.others
        return buf


def test_gradients_are_weighted_by_shard_size():
    layer = nb.Dense(3, 2)
    opt = nb.SGD(layer.parameters(), lr=1.0)
    mine = {k: np.full_like(v, 2.0) for k, v in layer.params.items()}
    layer.grads.update({k: g.copy() for k, g in mine.items()})
    n = sum(v.size for v in layer.params.values())
    others = np.arange(n, dtype=np.float32)
    d = dist.DistributedOptimizer(opt, FakeComm(3, others))
    d.weight = 5 / 12                  # this rank trained on 5 rows of a batch of 12
    before = {k: v.copy() for k, v in layer.params.items()}
    d.step()
    start = 0
    for p in opt.params:               # grad = (5/12)·mine + others, then p -= 1.0 · grad
        want = 5 / 12 * mine[p.name] + others[start:start + p.value.size].reshape(p.shape)
        np.testing.assert_allclose(p.grad, want, rtol=1e-6)
        np.testing.assert_allclose(p.value, before[p.name] - want, rtol=1e-6)
        start += p.value.size


def _dense_model():
    return nb.Sequential(nb.Dense(12, 16), nb.ReLU(), nb.Dense(16, 5))


def _conv_model():
    return nb.Sequential(nb.Conv2D(1, 4, 3, padding=1), nb.MaxPool2D(2), nb.ReLU(), nb.Flatten(),
                         nb.Dense(4 * 3 * 3, 5))


# batches of 10, 3, 1 (fewer rows than ranks: some shards are empty) and 20
BATCHES = [np.arange(0, 10), np.arange(10, 13), np.arange(13, 14), np.arange(20, 40)]


def _steps(make, X, y, comm=None, engine=True):
    nb.seed(1)
    model = make()
    opt = nb.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss = nb.SoftmaxCrossEntropy()
    step = (compile_step(model, loss, opt, engine=engine) if comm is None
            else dist.DataParallelStep(model, loss, opt, comm, engine=engine))
    vals = [step(step.gather(X, idx), y[idx]) for idx in BATCHES]
    return [p.value.copy() for p in model.parameters()], vals


@pytest.mark.parametrize("make,shape", [(_dense_model, (40, 12)), (_conv_model, (40, 1, 6, 6))])
@pytest.mark.parametrize("p", [1, 2, 3, 4])
@pytest.mark.parametrize("ordered", [False, True])
def test_threads_equal_one_process(make, shape, p, ordered):
    nb.set_default_dtype("float64")
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal(shape), rng.integers(0, 5, shape[0])
    want, want_vals = _steps(make, X, y)
    out = dist.run_threads(lambda comm: _steps(make, X, y, comm), p, ordered=ordered)
    for weights, vals in out:
        for a, b in zip(weights, want):
            assert nb.rel_error(a, b) < F64_TOL
        for (v, c), (wv, wc) in zip(vals, want_vals):
            assert c == wc and math.isclose(v, wv, rel_tol=1e-13)
    for weights, _ in out[1:]:                       # the replicas agree bit for bit
        assert all(np.array_equal(a, b) for a, b in zip(weights, out[0][0]))


def test_reference_layers_too():
    nb.set_default_dtype("float64")
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 12)), rng.integers(0, 5, 40)
    want, _ = _steps(_dense_model, X, y, engine=False)
    out = dist.run_threads(lambda comm: _steps(_dense_model, X, y, comm, engine=False), 3)
    assert all(nb.rel_error(a, b) < F64_TOL for a, b in zip(out[2][0], want))


def test_fit_with_a_one_process_communicator_equals_fit():
    nb.set_default_dtype("float64")
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((100, 12)), rng.integers(0, 5, 100)
    res = []
    for comm in (None, dist.LocalComm()):
        nb.seed(3)
        model = _dense_model()
        opt = nb.SGD(model.parameters(), lr=0.1)
        hist = nb.fit(model, nb.SoftmaxCrossEntropy(), opt, X, y, epochs=2, batch_size=16,
                      progress=False, comm=comm)
        res.append((model, hist))
    (m1, h1), (m2, h2) = res
    assert h1["acc"] == h2["acc"]
    assert all(nb.rel_error(a.value, b.value) < F64_TOL
               for a, b in zip(m1.parameters(), m2.parameters()))


def test_ranks_that_draw_different_batches_stop_together():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 12)).astype(np.float32), rng.integers(0, 5, 40)

    def rank(comm):
        nb.seed(0)
        model = _dense_model()
        step = dist.DataParallelStep(model, nb.SoftmaxCrossEntropy(),
                                     nb.SGD(model.parameters(), lr=0.1), comm)
        idx = np.arange(8) + comm.rank            # rank 1 is one row off
        step(step.gather(X, idx), y[idx])
    with pytest.raises(RuntimeError, match="trained on different batches"):
        dist.run_threads(rank, 2)


def test_ranks_with_different_models_are_refused():
    def rank(comm):
        nb.seed(0)
        model = nb.mlp([12, 16 + comm.rank, 5])
        dist.DataParallelStep(model, nb.SoftmaxCrossEntropy(),
                              nb.SGD(model.parameters(), lr=0.1), comm)
    with pytest.raises(ValueError, match="the ranks differ"):
        dist.run_threads(rank, 2)


def test_parameters_start_from_rank_0():
    def rank(comm):
        nb.seed(comm.rank)                         # different initial weights
        model = _dense_model()
        dist.broadcast_parameters(model, comm)
        return [p.value.copy() for p in model.parameters()], dist.replicas_agree(model, comm)
    out = dist.run_threads(rank, 3)
    nb.seed(0)
    want = [p.value for p in _dense_model().parameters()]
    for weights, agree in out:
        assert agree and all(np.array_equal(a, b) for a, b in zip(weights, want))


def test_batchnorm_is_warned_about():
    def rank(comm):
        model = nb.Sequential(nb.Dense(4, 3), nb.BatchNorm1d(3))
        dist.DataParallelStep(model, nb.MSE(), nb.SGD(model.parameters(), lr=0.1), comm)
    with pytest.warns(RuntimeWarning, match="BatchNorm"):
        dist.run_threads(rank, 2)


@pytest.mark.parametrize("algorithm", [dist.naive_allreduce, dist.tree_allreduce,
                                       dist.ring_allreduce])
@pytest.mark.parametrize("p", [1, 2, 3, 4, 5, 8])
@pytest.mark.parametrize("n", [1, 3, 10, 1001])
def test_allreduce_algorithms_with_threads(algorithm, p, n):
    rng = np.random.default_rng(p * n)
    xs = [rng.integers(-100, 100, n).astype(np.float64) for _ in range(p)]
    copies = [x.copy() for x in xs]
    out = dist.run_threads(algorithm, p, [(x,) for x in xs])
    want = np.sum(xs, axis=0)
    assert all(np.array_equal(o, want) for o in out)          # integers: exact in any order
    assert all(np.array_equal(a, b) for a, b in zip(xs, copies))


def test_ring_sends_two_p_minus_one_over_p_of_the_array():
    def rank(comm, x):
        dist.ring_allreduce(comm, x)
        return comm.sent
    p, n = 4, 1000
    sent = dist.run_threads(rank, p, [(np.ones(n),)] * p, collectives=False)
    assert sent == [2 * (p - 1) * n // p] * p


def test_send_first_ring_is_a_deadlock_not_a_hang():
    def bad(comm, x):
        buf = np.empty_like(x)
        comm.Send(x, dest=(comm.rank + 1) % comm.size)
        comm.Recv(buf, source=(comm.rank - 1) % comm.size)
        return x + buf
    with pytest.raises(dist.DeadlockError, match="use Sendrecv"):
        dist.run_threads(bad, 3, [(np.ones(4),)] * 3)


def test_an_error_on_one_rank_stops_every_rank():
    def rank(comm, x):
        if comm.rank == 2:
            raise KeyError("rank 2 is broken")
        return dist.ring_allreduce(comm, x)
    with pytest.raises(KeyError, match="rank 2 is broken"):
        dist.run_threads(rank, 4, [(np.ones(8),)] * 4)


def test_alpha_beta_costs():
    n, a, b = 1e6, 1e-6, 1e-9
    assert dist.allreduce_time("ring", n, 1, a, b) == 0
    assert math.isclose(dist.allreduce_time("ring", n, 4, a, b), 6 * a + 1.5 * n * b)
    assert math.isclose(dist.allreduce_time("naive", n, 4, a, b), 6 * (a + n * b))
    assert math.isclose(dist.allreduce_time("tree", n, 5, a, b), 6 * (a + n * b))
    # the ring's bandwidth term tends to 2 n β: it does not grow with p
    assert dist.allreduce_time("ring", n, 1024, 0, b) < 2 * n * b


def test_cli_has_the_flag():
    from nnbook.cli import build_parser
    args = build_parser().parse_args(["train", "mlp", "--distributed"])
    assert args.distributed is True


def test_bench_suite_is_registered():
    from nnbook.bench import suites
    assert "distributed" in suites()


# ------------------------------------------------------------------------ under mpiexec
def _json(res):
    res.check()
    lines = [l for l in res.stdout.splitlines() if l.startswith("{")]
    assert len(lines) == 1, res.stdout
    return json.loads(lines[0])


def _selfcheck(n, *args):
    return _json(launch.run(n, ["-m", "nnbook.distributed.selfcheck", *args], timeout=TIMEOUT))


@needs_mpi
@pytest.mark.parametrize("model", ["mlp", "conv"])
@pytest.mark.parametrize("dtype,tol", [("float32", F32_TOL), ("float64", F64_TOL)])
def test_mpi_two_processes_equal_one(model, dtype, tol):
    r = _selfcheck(2, "contract", "--model", model, "--dtype", dtype)
    assert r["processes"] == 2 and r["replicas_agree"] and r["acc_equal"]
    assert r["max_rel_error"] < tol and r["loss_rel_error"] < tol


@needs_mpi
def test_mpi_three_processes_uneven_shards_ordered_sum():
    # batches of 32 over 3 ranks: shards of 11, 11, 10; the last batch of 8: 3, 3, 2
    r = _selfcheck(3, "contract", "--model", "mlp", "--dtype", "float64", "--ordered")
    assert r["replicas_agree"] and r["acc_equal"] and r["max_rel_error"] < F64_TOL


@needs_mpi
@pytest.mark.parametrize("algorithm", ["ring", "tree", "naive"])
@pytest.mark.parametrize("p", [2, 3])
def test_mpi_book_allreduce_equals_mpis(algorithm, p):
    r = _selfcheck(p, "allreduce", "--algorithm", algorithm)
    assert r["integers_exact"] and r["inputs_unchanged"]
    assert r["max_rel_error"] < 1e-13          # floats: the same sum in another order


@needs_mpi
def test_mpi_a_failing_rank_ends_the_job_with_its_error():
    res = launch.run(2, ["-m", "nnbook.distributed.selfcheck", "fail", "--rank", "1"],
                     timeout=TIMEOUT)
    assert not res.timed_out, "the job hung instead of ending"
    assert res.returncode != 0
    assert "ValueError: deliberate failure on rank 1" in res.stderr
    assert "[rank 1]" in res.stderr


def _mnist_cached():
    try:
        nb.data.load_mnist()
        return True
    except Exception:  # noqa: BLE001
        return False


@needs_mpi
@pytest.mark.skipif(not _mnist_cached(), reason="MNIST is not in the cache (make data)")
def test_mpi_cli_trains_like_one_process():
    argv = ["-m", "nnbook", "train", "mlp", "--epochs", "1", "--limit", "1024",
            "--batch-size", "64", "--quiet"]
    two = launch.run(2, argv + ["--distributed"], timeout=TIMEOUT).check()
    one = launch.run(1, argv, timeout=TIMEOUT).check()
    assert "data parallel: 2 processes (mpi), global batch 64 (32 per process)" in two.stdout
    lines = [l for l in two.stdout.splitlines() if not l.startswith("data parallel")]
    assert lines == one.stdout.splitlines()          # the same losses and accuracies, printed once


# ------------------------------------------------------------------------------- NCCL
def _gpus():
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount()
    except Exception:  # noqa: BLE001
        return 0


@pytest.mark.gpu
@needs_mpi
def test_nccl_one_gpu_runs_the_same_step():
    r = _selfcheck(1, "contract", "--backend", "nccl", "--dtype", "float64")
    assert r["backend"] == "nccl" and r["max_rel_error"] < F64_TOL


@pytest.mark.gpu
@needs_mpi
@pytest.mark.skipif(_gpus() < 2, reason="NCCL data parallelism needs at least two GPUs "
                                        "(one process per GPU)")
@pytest.mark.parametrize("model", ["mlp", "conv"])
def test_nccl_two_gpus_equal_one(model):
    r = _selfcheck(2, "contract", "--backend", "nccl", "--model", model, "--dtype", "float32")
    assert r["replicas_agree"] and r["max_rel_error"] < F32_TOL


if __name__ == "__main__":           # pragma: no cover
    sys.exit(pytest.main([str(Path(__file__))]))
