"""Reference answers of the exercises of "Many devices" (``distributed.*``)."""
import numpy as np

from nnbook.distributed import naive_allreduce
from nnbook.exercises.build import Solution


def ring_allreduce(comm, x):
    r, p = comm.rank, comm.size
    total = np.array(x, copy=True)
    if p == 1:
        return total
    parts = np.array_split(total.reshape(-1), p)          # views of total, sizes differ by <= 1
    right, left = (r + 1) % p, (r - 1) % p
    for s in range(p - 1):                               # reduce-scatter
        incoming = np.empty_like(parts[(r - s - 1) % p])
        comm.Sendrecv(parts[(r - s) % p], dest=right, recvbuf=incoming, source=left)
        parts[(r - s - 1) % p] += incoming
    for s in range(p - 1):                               # allgather
        comm.Sendrecv(parts[(r + 1 - s) % p], dest=right, recvbuf=parts[(r - s) % p], source=left)
    return total


def _ring_cases(rng):
    """(p, [x_0, ..., x_{p-1}]): one rank, two ranks, uneven chunks, fewer elements than ranks."""
    cases = [(1, (5,), np.float64), (2, (8,), np.float64), (3, (10,), np.float64),
             (4, (1000,), np.float64), (5, (7,), np.float64), (4, (3,), np.float64),
             (3, (4, 5), np.float32), (6, (97,), np.float64)]
    cases.append((int(rng.integers(2, 8)), (int(rng.integers(1, 300)),), np.float64))
    return [(p, [rng.standard_normal(shape).astype(dtype) for _ in range(p)])
            for p, shape, dtype in cases]


def _sum_over_ranks(exercise, reference, args):
    p, xs = args
    want = xs[0].astype(np.float64)
    for x in xs[1:]:
        want = want + x
    return want


def step_time(compute_s, p, nbytes, alpha, beta):
    comm = 0.0 if p == 1 else 2 * (p - 1) * alpha + 2 * (p - 1) / p * nbytes * beta
    return compute_s / p + comm


SOLUTIONS = {
    "distributed.ring_allreduce": Solution(
        ring_allreduce, _ring_cases, expect=_sum_over_ranks,
        wrong={"right sums, but through rank 0: it sends (p-1)·n elements": naive_allreduce}),
    "distributed.step_time": Solution(
        step_time,
        lambda rng: [(0.1, 1, 4e6, 5e-6, 1e-9), (0.1, 2, 4e6, 5e-6, 1e-9),
                     (2e-3, 8, 1e8, 3e-6, 1 / 450e9), (2e-3, 64, 1e8, 10e-6, 1 / 50e9),
                     (1e-3, 4, 940584, 1e-6, 1 / 5e9)]
        + [(float(rng.uniform(1e-4, 1)), int(rng.integers(2, 512)), float(rng.uniform(1e3, 1e9)),
            float(rng.uniform(1e-7, 1e-4)), float(1 / rng.uniform(1e9, 1e12))) for _ in range(4)],
        wrong={"the whole array in every step": lambda compute_s, p, nbytes, alpha, beta: (
            compute_s / p + (0.0 if p == 1 else 2 * (p - 1) * (alpha + nbytes * beta)))}),
}
