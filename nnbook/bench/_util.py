"""Shared benchmark helpers: machine description, the stamp every results file carries
(date, command, git commit, BLAS kernel), thread limits, paired timing."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path


def limit_threads(n: int) -> None:
    """Ask BLAS/OpenMP pools for ``n`` threads (call before importing numpy, or via threadpoolctl)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415
        threadpool_limits(n)
    except ImportError:
        pass


def machine() -> dict:
    import numpy as np  # noqa: PLC0415
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {"platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0], "numpy": np.__version__}
    try:
        import nnbook  # noqa: PLC0415
        info["nnbook"] = nnbook.__version__
    except ImportError:
        pass
    try:
        cfg = np.show_config(mode="dicts")
        info["numpy_blas"] = cfg["Build Dependencies"]["blas"]["name"]
    except Exception:  # noqa: BLE001
        pass
    return info


def _command_line() -> str:
    """The command as typed: ``python -m nnbook bench mlp ...`` rather than the
    path of the ``__main__.py`` that Python puts in ``sys.argv[0]``."""
    argv = list(sys.argv)
    if argv and argv[0].endswith("__main__.py"):
        parts = os.path.normpath(argv[0]).split(os.sep)
        pkg = parts[-2] if len(parts) >= 2 else "nnbook"
        if len(parts) >= 3 and parts[-3] == "nnbook":
            pkg = "nnbook." + pkg
        argv[0:1] = ["-m", pkg]
    elif argv:
        argv[0] = os.path.relpath(argv[0]) if os.path.isabs(argv[0]) else argv[0]
    return " ".join(["python", *argv])


#: What :func:`blas_info` records where threadpoolctl is not installed.
BLAS_UNKNOWN = "unknown (threadpoolctl not installed)"


def _git(root, *args):
    """Output of ``git -C root *args`` (stripped), or None if git fails or is missing."""
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", LC_ALL="C")   # read-only: no index refresh
    try:
        r = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                           timeout=20, env=env, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def git_revision(root=None) -> dict:
    """``{"git_commit": sha or None, "git_dirty": bool or None}`` of the git checkout
    that nnbook runs from (``root``: the directory holding the ``nnbook`` package;
    default: this one).  ``git_dirty``: tracked files differ from the commit
    (untracked files do not count, as with ``git describe --dirty``).  Both are
    None outside a git checkout (an installed copy, even one inside some other
    repository's tree) or without git; never raises."""
    none = {"git_commit": None, "git_dirty": None}
    if root is None:
        root = Path(__file__).resolve().parent.parent.parent
    root = Path(root)
    top = _git(root, "rev-parse", "--show-toplevel")
    try:
        if top is None or Path(top).resolve() != root.resolve():
            return none
    except OSError:
        return none
    commit = _git(root, "rev-parse", "HEAD")
    if not commit:
        return none
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status)}


def blas_info():
    """The BLAS libraries loaded in this process and the kernel each runs, from
    ``threadpoolctl.threadpool_info()``: a list of ``{"internal_api", "version",
    "architecture", "threading_layer", "num_threads", "filepath"}`` (the file's
    basename; ``architecture`` is OpenBLAS's core type, e.g. ``Haswell`` or
    ``SkylakeX``, which ``OPENBLAS_CORETYPE`` overrides), or :data:`BLAS_UNKNOWN`."""
    try:
        from threadpoolctl import threadpool_info  # noqa: PLC0415
    except ImportError:
        return BLAS_UNKNOWN
    import numpy  # noqa: F401, PLC0415  (loads NumPy's BLAS, so that it is listed)
    try:
        pools = threadpool_info()
    except Exception as e:  # noqa: BLE001
        return f"unknown (threadpoolctl failed: {type(e).__name__}: {e})"
    out = []
    for p in pools:
        if p.get("user_api") != "blas":
            continue
        path = p.get("filepath")
        out.append({"internal_api": p.get("internal_api"), "version": p.get("version"),
                    "architecture": p.get("architecture", p.get("corename")),
                    "threading_layer": p.get("threading_layer"),
                    "num_threads": p.get("num_threads"),
                    "filepath": os.path.basename(path) if path else None})
    return out


def stamp(command=None) -> dict:
    """What every results file records about its run, beside the machine: the date
    (UTC), the command, the git commit of nnbook's checkout (with a dirty flag) and
    the BLAS library and kernel that ran (see :func:`git_revision`, :func:`blas_info`)."""
    return {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": command or _command_line(), **git_revision(), "blas": blas_info()}


def timed(fn, pause=0.4):
    """Time one call of ``fn`` with a pause first (lets the other thread pool go idle)."""
    if pause:
        time.sleep(pause)
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def paired_rounds(runs, rounds, peer):
    """Time every function of ``runs`` (name -> function) once per round, in order
    (A B A B ...), after one warm-up call of each (first-touch memory, thread pools).
    Returns ``(times, ratios)``: seconds per name, and for every name but ``peer`` its
    per-round ratio to the peer's time of the same round."""
    for fn in runs.values():
        fn()
    times = {name: [] for name in runs}
    others = [name for name in runs if name != peer]
    for r in range(rounds):
        for name, fn in runs.items():
            times[name].append(timed(fn))
        rs = [times[name][-1] / times[peer][-1] for name in others]
        extra = "".join(f", {name} {x:.3f}" for name, x in zip(others[1:], rs[1:]))
        print(f"round {r + 1}: " + "  ".join(f"{name} {times[name][-1]:.3f} s" for name in runs)
              + f"  ratio {rs[0]:.3f}" + (f" ({extra[2:]})" if extra else ""))
    ratios = {name: [a / b for a, b in zip(times[name], times[peer])] for name in others}
    return times, ratios


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)


def cpu_bench_args(prog, doc, size_flag, size_default, size_help, argv):
    """Parse the options every CPU-vs-PyTorch suite shares and limit the threads."""
    import argparse  # noqa: PLC0415
    p = argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(size_flag, type=int, default=size_default, help=size_help)
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    limit_threads(args.threads)
    return args


def import_torch(threads):
    """PyTorch, limited to ``threads``, for the peer side of a CPU suite (None if absent)."""
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        print("error: PyTorch is not installed; this benchmark compares against it "
              "(pip install torch==2.13.0)")
        return None
    torch.set_num_threads(threads)
    return torch


def mnist_digits(n):
    """The first ``n`` MNIST training digits as float32 (n, 1, 28, 28) in [0, 1), with
    their labels: the input of the convolutional CPU suites."""
    import numpy as np  # noqa: PLC0415

    import nnbook as nb  # noqa: PLC0415
    (X, y), _ = nb.data.load_mnist()
    return (X[:n].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28), y[:n]


def torch_sgd_epoch(tm, topt, tloss, Xt, yt, batch_size, seed=0):
    """One PyTorch training epoch in a seeded batch order: the peer side of a CPU suite."""
    import numpy as np  # noqa: PLC0415
    import torch  # noqa: PLC0415
    n = len(Xt)
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(n))
    for i in range(0, n, batch_size):
        idx = perm[i:i + batch_size]
        topt.zero_grad()
        tloss(tm(Xt[idx]), yt[idx]).backward()
        topt.step()


def gpu_refusal(prog):
    """Why the GPU suite ``prog`` cannot time anything here (no working GPU, or numba
    in simulator mode), as one line for stderr; None when a real GPU is ready."""
    from ..backend import gpu_available  # noqa: PLC0415
    if not gpu_available():
        return (f"error: {prog}: no working CUDA GPU (CuPy cannot run a kernel here; "
                "pip install -e '.[gpu]'); nothing measured, nothing written")
    from ..kernels import on_simulator  # noqa: PLC0415
    if on_simulator():
        return (f"error: {prog}: numba-cuda is in simulator mode (NUMBA_ENABLE_CUDASIM or "
                "NNBOOK_KERNELS_SIM set); unset it to time the GPU")
    return None


def conv_times(x_shape, W_shape, stride=(1, 1), padding=(0, 0), first=False, pool=False,
               reps=15, seed=0):
    """Seconds per call of one float32 convolution as the training engine runs it,
    forward and backward, with the compiled kernels (``"kernel"``: the stride-1 or
    the phase-split strided plan of :mod:`nnbook.engine.cpu_kernels`, whatever the
    engine's rule) and with BLAS (``"numpy"``: the row-lowered or im2col op), timed
    alternately, the fastest of ``reps`` calls each (what a call costs when no other
    process takes the CPU).  ``pool``: the convolution with the 2x2 max-pool and ReLU
    after it, as one op.  Also ``"engine"``: which of the two the engine's rule picks.
    Without numba only ``"numpy"`` is timed."""
    import numpy as np  # noqa: PLC0415

    import nnbook as nb  # noqa: PLC0415
    from nnbook.engine import cpu_kernels, ops  # noqa: PLC0415
    rng = np.random.default_rng(seed)
    conv = nb.Conv2D(W_shape[1], W_shape[0], W_shape[2:], stride=stride, padding=padding,
                     dtype="float32")
    x = rng.random(x_shape, dtype=np.float32)
    kinds = ("kernel", "numpy") if cpu_kernels.HAVE_NUMBA else ("numpy",)
    choice = {"kernel": "kernel", "numpy": "blas"}
    res = {"engine": "kernel" if cpu_kernels.applies(x_shape, W_shape, tuple(stride),
                                                     tuple(padding)) else "numpy"}
    saved, op = cpu_kernels.CHOICE, {}
    try:
        for kind in kinds:
            cpu_kernels.CHOICE = choice[kind]
            op[kind] = (ops.ConvPoolOp(conv, nb.MaxPool2D(2), first, relu=nb.ReLU()) if pool
                        else ops.ConvOp(conv, first))
            out = op[kind].forward(x)
        d = rng.random(out.shape, dtype=np.float32)
        t = {k: ([], []) for k in kinds}
        for _ in range(reps + 1):                # the first round: warm-up
            for kind in kinds:
                cpu_kernels.CHOICE = choice[kind]
                t0 = time.perf_counter()
                op[kind].forward(x)
                t1 = time.perf_counter()
                op[kind].backward(d)
                t[kind][0].append(t1 - t0)
                t[kind][1].append(time.perf_counter() - t1)
    finally:
        cpu_kernels.CHOICE = saved
    for kind in kinds:
        res[kind] = {"forward_s": min(t[kind][0][1:]), "backward_s": min(t[kind][1][1:])}
    return res


def train_test_epoch(model, loss, opt, Xtr, ytr, Xte, yte, batch_size):
    """One training epoch with ``nb.fit`` (whatever batch order nnbook's generator gives),
    then the test loss and accuracy; the figures a recorded run keeps per epoch:
    ``train_loss``, ``train_acc``, ``test_loss``, ``test_acc``, ``seconds_per_epoch``,
    ``seconds_test`` and ``load_average_1min``."""
    import nnbook as nb  # noqa: PLC0415
    t = time.perf_counter()
    h = nb.fit(model, loss, opt, Xtr, ytr, epochs=1, batch_size=batch_size, progress=False)
    sec = time.perf_counter() - t
    t = time.perf_counter()
    tl, ta = nb.evaluate(model, loss, Xte, yte, batch_size=500)
    return {"train_loss": float(h["loss"][0]), "train_acc": float(h["acc"][0]),
            "test_loss": float(tl), "test_acc": float(ta), "seconds_per_epoch": sec,
            "seconds_test": time.perf_counter() - t,
            "load_average_1min": float(os.getloadavg()[0])}


def epoch_line(e):
    """One line for an epoch of :func:`train_test_epoch`: losses, accuracies, seconds."""
    return (f"loss {e['train_loss']:.4f} acc {e['train_acc']:.4f} test {e['test_acc']:.4f} "
            f"({e['seconds_per_epoch']:.1f} s, test {e['seconds_test']:.1f} s)")
