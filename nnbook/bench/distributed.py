"""Data-parallel training over MPI on this machine: 1, 2 and 4 processes.

``python -m nnbook bench distributed [--procs 1 2 4] [--epochs 3] [--rounds 3] [--limit 60000] [--out FILE]``

Starts ``mpiexec -n p`` for each p (one BLAS thread per process) and measures, in
each job:

* point-to-point between ranks 0 and 1 (p = 2 only): half the round trip of a
  ping-pong for sizes from 8 B to 16 MiB; the latency α is the 8-byte time, the
  seconds per byte β the slope of a least-squares line through the sizes from
  64 KiB up;
* MPI's ``Allreduce`` on float32 buffers from 8 B to 16 MiB: time, algorithm
  bandwidth (bytes / time) and bus bandwidth (× 2(p-1)/p, nccl-tests' convention);
* the MLP's gradient (784-256-128-10, 235,146 float32) summed four ways: MPI's
  Allreduce, the ordered sum (allgather, then add in rank order), the book's
  ring (``nnbook.distributed.ring_allreduce``, Python over MPI point-to-point),
  and the α–β model's prediction for a ring from the ping-pong's α and β (and
  the same plus (p-1)/p · n γ, the additions, with γ the seconds per byte of
  ``a += b`` on 1 MiB; and with β measured while both ranks send at once, with
  ``Sendrecv``, as every step of a ring does);
* training the MLP on MNIST (plain SGD, lr 0.1) for ``--epochs`` epochs with the
  loop of ``nb.fit(..., comm=)``: *strong* scaling (global batch 128, shared by the
  processes) and *weak* scaling (128 per process, global batch 128 p); seconds per
  epoch and, per step, compute (forward, backward, update), waiting for the
  slowest rank (a barrier before each exchange measures it apart), packing (the
  gradients into one buffer and back) and communication (the allreduces of the
  gradient and of the loss).

One process without MPI (``nb.fit``'s engine with the plain-SGD update fused, 1
and 2 BLAS threads) is the baseline of the parallel efficiency T₁ / (p T_p).
Every configuration runs once per round, the rounds interleaved, and the file
records each round and the median of every figure over the rounds (the machine
may be shared: the load average before and after is recorded too).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from ._util import machine, median, stamp, write_json

SIZES = [784, 256, 128, 10]
KINDS = ("compute", "wait", "packing", "communication")
ALLREDUCE_BYTES = [8, 1024, 16384, 262144, 1048576, 4194304, 16777216]
PINGPONG_BYTES = [8, 1024, 65536, 262144, 1048576, 4194304, 16777216]


def _reps(nbytes, budget=0.25, most=400, least=5):
    """Repetitions for a message size: about ``budget`` seconds at 2 GB/s."""
    return int(max(least, min(most, budget * 2e9 / max(nbytes, 1) / 4)))


def _pingpong(comm, MPI, nbytes):
    import numpy as np  # noqa: PLC0415
    buf = np.zeros(nbytes, dtype=np.uint8)
    times = []
    for _ in range(_reps(nbytes) + 2):
        comm.Barrier()
        t = time.perf_counter()
        if comm.rank == 0:
            comm.Send(buf, dest=1)
            comm.Recv(buf, source=1)
        elif comm.rank == 1:
            comm.Recv(buf, source=0)
            comm.Send(buf, dest=0)
        times.append((time.perf_counter() - t) / 2)
    return median(times[2:])


def _exchange(comm, nbytes):
    """Ranks 0 and 1 send each other ``nbytes`` at the same time (Sendrecv): the
    time of one such exchange, as every ring step does it."""
    import numpy as np  # noqa: PLC0415
    a, b = np.zeros(nbytes, dtype=np.uint8), np.zeros(nbytes, dtype=np.uint8)
    other = 1 - comm.rank
    times = []
    for _ in range(_reps(nbytes) + 2):
        comm.Barrier()
        t = time.perf_counter()
        if comm.rank < 2:
            comm.Sendrecv(a, dest=other, recvbuf=b, source=other)
        times.append(time.perf_counter() - t)
    return median(times[2:])


def _timed(comm, fn, reps):
    """Median over ranks-synchronised repetitions of the slowest rank's time."""
    import numpy as np  # noqa: PLC0415
    times = []
    for _ in range(reps + 2):
        comm.Barrier()
        t = time.perf_counter()
        fn()
        dt = np.array([time.perf_counter() - t])
        comm.Allreduce(dt.copy(), dt, op=_MPI().MAX)
        times.append(float(dt[0]))
    return median(times[2:])


def _MPI():
    from mpi4py import MPI  # noqa: PLC0415
    return MPI


def _train(dist, nb, comm, X, y, batch, epochs, lr=0.1):
    import numpy as np  # noqa: PLC0415
    nb.seed(0)
    model = nb.mlp(SIZES)
    opt = nb.SGD(model.parameters(), lr=lr)
    loss = nb.SoftmaxCrossEntropy()
    step = dist.DataParallelStep(model, loss, opt, dist.MPIComm(comm), split_wait=True)
    n = len(X)
    rows = []
    for _ in range(epochs):
        before = [step.seconds[k] for k in KINDS]
        s0 = step.steps
        comm.Barrier()
        t = time.perf_counter()
        for idx in nb.train.iterate_minibatches(n, batch):        # the loop of nb.fit
            step(step.gather(X, idx), y[idx])
        comm.Barrier()
        rows.append([time.perf_counter() - t]
                    + [step.seconds[k] - b for k, b in zip(KINDS, before)] + [step.steps - s0])
    step.close()
    allr = comm.gather(rows, root=0)
    if comm.rank:
        return None
    a = np.array(allr)                      # (ranks, epochs, 2 + len(KINDS))
    steps = a[0, :, -1]
    res = {"epoch_s": a[0, :, 0].tolist(), "median_epoch_s": float(np.median(a[0, :, 0])),
           "steps_per_epoch": int(steps[0])}
    for i, k in enumerate(KINDS, start=1):   # per step: mean over ranks, median over epochs
        res[f"{k}_per_step_s"] = float(np.median(a[:, :, i].mean(axis=0) / steps))
    return res


def worker(argv):
    """One MPI job of the suite (rank 0 prints one JSON line)."""
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--limit", type=int, default=60000)
    p.add_argument("--baseline", action="store_true", help="one process, no MPI: nb.fit")
    args = p.parse_args(argv)
    import numpy as np  # noqa: PLC0415

    import nnbook as nb  # noqa: PLC0415
    nb.use("numpy")
    (X, y), _ = nb.data.load_mnist()
    X = nb.data.scale(nb.data.flatten(X))[:args.limit].astype(np.float32)
    y = y[:args.limit]
    if args.baseline:
        times = []
        for _ in range(args.epochs):
            nb.seed(0)
            model = nb.mlp(SIZES)
            opt = nb.SGD(model.parameters(), lr=0.1)
            t = time.perf_counter()
            nb.fit(model, nb.SoftmaxCrossEntropy(), opt, X, y, epochs=1, batch_size=128,
                   progress=False)
            times.append(time.perf_counter() - t)
        print(json.dumps({"epoch_s": times, "median_epoch_s": median(times)}))
        return 0
    import nnbook.distributed as dist  # noqa: PLC0415
    MPI = _MPI()
    comm = MPI.COMM_WORLD
    out = {"processes": comm.size}
    with dist.abort_on_error(dist.MPIComm(comm)):
        if comm.size == 2:
            pp = [_pingpong(comm, MPI, n) for n in PINGPONG_BYTES]
            big = [(n, t) for n, t in zip(PINGPONG_BYTES, pp) if n >= 65536]
            beta, a0 = np.polyfit([n for n, _ in big], [t for _, t in big], 1)
            ex = [_exchange(comm, n) for n in PINGPONG_BYTES]
            big = [(n, t) for n, t in zip(PINGPONG_BYTES, ex) if n >= 65536]
            beta2, _ = np.polyfit([n for n, _ in big], [t for _, t in big], 1)
            # γ: seconds per byte of the additions a reduction does (a += b, 1 MiB)
            x, z = np.ones(1 << 18, np.float32), np.ones(1 << 18, np.float32)
            gamma = _timed(comm, lambda: np.add(x, z, out=x), 200) / x.nbytes
            out["pingpong"] = {"bytes": PINGPONG_BYTES, "seconds": pp, "alpha_s": pp[0],
                               "beta_s_per_byte": float(beta), "intercept_s": float(a0),
                               "bandwidth_GBs": float(1 / beta / 1e9),
                               "gamma_s_per_byte": gamma, "exchange_seconds": ex,
                               "beta_exchange_s_per_byte": float(beta2),
                               "exchange_bandwidth_GBs": float(1 / beta2 / 1e9)}
        if comm.size > 1:
            sweep = []
            for nbytes in ALLREDUCE_BYTES:
                buf = np.ones(nbytes // 4, dtype=np.float32)
                t = _timed(comm, lambda: comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM),
                           _reps(nbytes))
                sweep.append(t)
            f = 2 * (comm.size - 1) / comm.size
            out["allreduce"] = {"bytes": ALLREDUCE_BYTES, "seconds": sweep,
                                "algbw_GBs": [n / t / 1e9 for n, t in zip(ALLREDUCE_BYTES, sweep)],
                                "busbw_GBs": [f * n / t / 1e9 for n, t in zip(ALLREDUCE_BYTES, sweep)]}
            nparam = sum(a * b + b for a, b in zip(SIZES[:-1], SIZES[1:]))
            g = np.random.default_rng(comm.rank).standard_normal(nparam).astype(np.float32)
            ordered = dist.MPIComm(comm, ordered=True)
            total, buf = np.empty_like(g), g.copy()        # (buf grows by p per repetition)
            reps = 30
            out["gradient"] = {
                "floats": nparam, "bytes": 4 * nparam,
                "mpi_allreduce_s": _timed(comm, lambda: comm.Allreduce(g, total, op=MPI.SUM),
                                          reps),
                "ordered_s": _timed(comm, lambda: ordered.allreduce_(buf), reps),
                "book_ring_s": _timed(comm, lambda: dist.ring_allreduce(comm, g), reps)}
        for mode in ("strong", "weak"):
            batch = 128 if mode == "strong" else 128 * comm.size
            if comm.size == 1 and mode == "weak":
                continue
            r = _train(dist, nb, comm, X, y, batch, args.epochs)
            if comm.rank == 0:
                out[mode] = {"global_batch": batch, **r}
    if comm.rank == 0:
        print(json.dumps(out))
    return 0


def _last_json(text):
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no results in the output:\n{text[-2000:]}")


def _median_merge(objs):
    """The element-wise median of equally shaped JSON values (dicts, lists, numbers);
    anything else is taken from the first."""
    first = objs[0]
    if isinstance(first, dict):
        return {k: _median_merge([o[k] for o in objs]) for k in first}
    if isinstance(first, list) and all(isinstance(o, list) and len(o) == len(first) for o in objs):
        return [_median_merge(list(t)) for t in zip(*objs)]
    if isinstance(first, (int, float)) and not isinstance(first, bool):
        return median(objs) if isinstance(first, float) else first
    return first


def predict_ring(alpha, beta, nbytes, p):
    from ..distributed import allreduce_time  # noqa: PLC0415
    return allreduce_time("ring", nbytes, p, alpha, beta)


def main(argv=()):
    ap = argparse.ArgumentParser(prog="python -m nnbook bench distributed",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--procs", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=60000, help="training images per epoch")
    ap.add_argument("--rounds", type=int, default=3,
                    help="repeat every configuration, interleaved; figures are medians")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per MPI job")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    from ..distributed import launch  # noqa: PLC0415
    ok, why = launch.available()
    if not ok:
        print(f"error: python -m nnbook bench distributed: {why}", file=sys.stderr)
        return 2
    me = ["-m", "nnbook.bench.distributed", "--epochs", str(args.epochs), "--limit", str(args.limit)]
    res = {"benchmark": "distributed", "model": "784-256-128-10 ReLU MLP, float32, plain SGD lr 0.1",
           "images": args.limit, "epochs": args.epochs, "rounds": args.rounds}
    import os  # noqa: PLC0415
    res["load_average_before"] = list(os.getloadavg())
    rounds = []
    for k in range(args.rounds):            # every configuration once per round: A B C A B C
        rnd = {"baseline": {}, "runs": {}}
        for threads in (1, 2):
            r = launch.run(1, me + ["--baseline"], timeout=args.timeout, threads=threads).check()
            rnd["baseline"][f"threads{threads}"] = _last_json(r.stdout)
        for p in args.procs:
            r = launch.run(p, me, timeout=args.timeout, threads=1).check()
            rnd["runs"][str(p)] = _last_json(r.stdout)
        rounds.append(rnd)
        print(f"round {k + 1}: one process " + ", ".join(
            f"{t} thread(s) {rnd['baseline'][f'threads{t}']['median_epoch_s']:.3f} s" for t in (1, 2))
            + "; global batch 128: " + ", ".join(
            f"{p} processes {rnd['runs'][str(p)]['strong']['median_epoch_s']:.3f} s"
            for p in args.procs) + " per epoch", flush=True)
    res["each_round"] = rounds
    merged = _median_merge(rounds)          # the median over rounds of every figure
    res["baseline"], res["runs"] = merged["baseline"], merged["runs"]
    for p in args.procs:
        s = res["runs"][str(p)]["strong"]
        print(f"{p} process(es), global batch 128: {s['median_epoch_s']:.3f} s/epoch; per step "
              f"compute {s['compute_per_step_s'] * 1e3:.3f} ms, wait "
              f"{s['wait_per_step_s'] * 1e3:.3f} ms, packing {s['packing_per_step_s'] * 1e3:.3f} "
              f"ms, communication {s['communication_per_step_s'] * 1e3:.3f} ms", flush=True)
    pp = next((r["pingpong"] for r in res["runs"].values() if "pingpong" in r), None)
    t1 = res["baseline"]["threads1"]["median_epoch_s"]
    summary = []
    for p, run in sorted(res["runs"].items(), key=lambda kv: int(kv[0])):
        p = int(p)
        row = {"processes": p, "strong_epoch_s": run["strong"]["median_epoch_s"],
               "strong_efficiency": t1 / (p * run["strong"]["median_epoch_s"])}
        if "weak" in run:
            w = run["weak"]
            # weak scaling: the same 60,000 images per epoch in fewer, larger steps
            row.update(weak_epoch_s=w["median_epoch_s"],
                       weak_efficiency=t1 / (p * w["median_epoch_s"]))
        if "gradient" in run and pp is not None:
            g = run["gradient"]
            pred = predict_ring(pp["alpha_s"], pp["beta_s_per_byte"], g["bytes"], p)
            row.update(gradient_allreduce_s=g["mpi_allreduce_s"], predicted_ring_s=pred,
                       prediction_error=(pred - g["mpi_allreduce_s"]) / g["mpi_allreduce_s"],
                       allreduce_busbw_GBs=2 * (p - 1) / p * g["bytes"] / g["mpi_allreduce_s"] / 1e9,
                       communication_per_step_s=run["strong"]["communication_per_step_s"])
            if "gamma_s_per_byte" in pp:          # the same model plus the additions' cost
                pred3 = pred + (p - 1) / p * g["bytes"] * pp["gamma_s_per_byte"]
                row.update(predicted_ring_abg_s=pred3,
                           prediction_error_abg=(pred3 - g["mpi_allreduce_s"]) / g["mpi_allreduce_s"])
            if "beta_exchange_s_per_byte" in pp:  # β of both ranks sending at once
                pred4 = predict_ring(pp["alpha_s"], pp["beta_exchange_s_per_byte"], g["bytes"], p)
                row.update(predicted_ring_exchange_s=pred4,
                           prediction_error_exchange=(pred4 - g["mpi_allreduce_s"])
                           / g["mpi_allreduce_s"])
        summary.append(row)
        print("  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in row.items()), flush=True)
    res["summary"] = summary
    res["load_average_after"] = list(os.getloadavg())     # other work on the machine
    res.update(**machine(), **stamp())
    if args.out:
        write_json(args.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(worker(sys.argv[1:]))
