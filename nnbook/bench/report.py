"""Render the GPU comparison results (:mod:`nnbook.bench.cudnn`) as tables and a roofline.

All functions take the results dict (as :func:`nnbook.bench.cudnn.load_results`
returns it) and compute everything from it; nothing here runs on a GPU.

* :func:`conv_table` -- GFLOP/s per layer and method, and percent of cuDNN.
* :func:`gemm_table`, :func:`epoch_table`, :func:`check_table`.
* :func:`targets` -- the chapter's stated targets, evaluated.
* :func:`roofline` -- a matplotlib roofline with every (layer, method) on it.
* :func:`markdown` -- any table as a Markdown string (for ``IPython.display.Markdown``).
* :func:`stamp_lines`, :func:`show_stamp`, :func:`provenance` -- what any results
  file of ``nnbook/results`` records about its run (date, command, machine,
  versions, git commit, BLAS kernel); files written before the commit and BLAS
  were recorded render without them.
* :func:`main` -- ``python -m nnbook.bench report``: the recorded results as Markdown.
"""
from __future__ import annotations

__all__ = ["header", "provenance", "stamp_lines", "show_stamp", "STAMP_KEYS", "conv_table", "gemm_table", "epoch_table", "check_table", "targets",
           "markdown", "arithmetic_intensity", "roofline", "TARGETS"]

#: (description, own methods, ratio threshold) for 3×3 layers; LeNet epoch separately
TARGETS = {
    "im2col": ("own im2col + cuBLAS ≥ 50% of cuDNN on 3×3 layers (median over layers and ops)",
               ("im2col+cublas",), 0.50),
    "direct": ("own best direct / implicit-GEMM kernel ≥ 30% of cuDNN on 3×3 layers (median)",
               ("direct-v1", "direct-v2", "igemm-v3"), 0.30),
    "epoch": ("own LeNet-5 epoch ≤ 2× cuDNN's time", ("own-igemm", "own-im2col"), 2.0),
}


def header(results):
    """One line: device, versions, date, command (and the git commit and host BLAS
    where the file records them)."""
    e = results["env"]
    sim = " (SIMULATED: times are meaningless)" if e.get("simulated") else ""
    prov = provenance(results)
    return (f"{e['device']} (cc {e['compute_capability']}), driver {e['driver']}, CUDA {e['cuda_runtime']}, "
            f"cuDNN {e.get('cudnn')}, CuPy {e['cupy']}, numba-cuda {e['numba_cuda']}, PyTorch {e.get('torch')}; "
            f"TF32 off; {results['settings']['repeats']} repeats after {results['settings']['warmup']} warm-up "
            f"calls; {results['date']}; `{results['command']}`{'; ' + prov if prov else ''}{sim}")


# ----------------------------------------------------------------------------- any results file

#: The keys :func:`stamp_lines` shows, in order (those a file lacks are left out).
STAMP_KEYS = ("date", "command", "commit", "blas", "cpu", "cpu_count", "platform", "python",
              "numpy", "torch", "nnbook", "device", "driver", "cuda_runtime", "cupy",
              "numba_cuda", "cudnn")


def _stamp_dict(r):
    """The part of a results file that holds its stamp: the top level, or ``meta``
    (the optimizer and metaheuristics records)."""
    meta = r.get("meta") if isinstance(r, dict) else None
    return {**r, **meta} if isinstance(meta, dict) else r


def _commit_text(s):
    if "git_commit" not in s:
        return None                              # recorded before commits were stamped
    c = s.get("git_commit")
    if not c:
        return "unknown (not run from a git checkout)"
    dirty = s.get("git_dirty")
    return f"{c[:12]}" + (" with uncommitted changes" if dirty else "" if dirty is False
                          else " (clean or not: unknown)")


def _blas_text(s):
    b = s.get("blas")
    if b is None:
        return None                              # recorded before the BLAS was stamped
    if isinstance(b, str):
        return b
    if not b:
        return "none found"
    parts = []
    for p in b:
        if not isinstance(p, dict):
            parts.append(str(p))
            continue
        name = " ".join(str(p[k]) for k in ("internal_api", "version") if p.get(k))
        kernel = f", {p['architecture']} kernel" if p.get("architecture") else ""
        threads = f", {p['num_threads']} threads" if p.get("num_threads") is not None else ""
        where = f" ({p['filepath']})" if p.get("filepath") else ""
        parts.append(f"{name or 'BLAS'}{kernel}{threads}{where}")
    return "; ".join(parts)


def provenance(results):
    """``"commit <sha> ...; BLAS <library, kernel, threads>"`` from a results file, or
    ``""`` for a file recorded before these were stamped."""
    s = _stamp_dict(results)
    out = []
    c, b = _commit_text(s), _blas_text(s)
    if c is not None:
        out.append(f"commit {c}")
    if b is not None:
        out.append(f"BLAS {b}")
    return "; ".join(out)


def stamp_lines(results, keys=STAMP_KEYS):
    """``"key: value"`` lines for what a results file records about its run (date,
    command, git commit, BLAS library and kernel, machine, versions); keys the
    file lacks are left out, so files of any age render."""
    s = _stamp_dict(results)
    lines = []
    for k in keys:
        if k == "commit":
            v = _commit_text(s)
        elif k == "blas":
            v = _blas_text(s)
        else:
            v = s.get(k)
        if v is not None:
            lines.append(f"{k:>12}: {v}")
    return lines


def show_stamp(results, keys=STAMP_KEYS, file=None):
    """Print :func:`stamp_lines`, indented (the performance appendix's listing)."""
    import textwrap  # noqa: PLC0415
    for line in stamp_lines(results, keys):
        # long values (several BLAS libraries) wrap under their own column
        indent = " " * (2 + line.index(":") + 2) if ":" in line else "    "
        print(textwrap.fill(line, 88, initial_indent="  ", subsequent_indent=indent,
                            break_on_hyphens=False, break_long_words=False), file=file)


def _key(r):
    return (r["layer"], r["op"])


def conv_table(results, op=None, methods=None):
    """Rows ``{"layer", "op", "<method>": GFLOP/s, "<method> %": percent of cuDNN}``.

    Percent columns appear only where cuDNN was measured for that layer and op.
    """
    rows = {}
    order = []
    for r in results["conv"]:
        if op is not None and r["op"] != op:
            continue
        if methods is not None and r["method"] not in methods:
            continue
        k = _key(r)
        if k not in rows:
            rows[k] = {"layer": r["layer"], "op": r["op"]}
            order.append(k)
        rows[k][r["method"]] = r["gflops"]
    out = []
    for k in order:
        row = rows[k]
        ref = row.get("cudnn")
        for m in [m for m in list(row) if m not in ("layer", "op")]:
            if ref and m != "cudnn":
                row[f"{m} %"] = 100.0 * row[m] / ref
        out.append(row)
    return out


def gemm_table(results):
    """Rows ``{"n", "<method>": GFLOP/s, "<method> %": percent of cuBLAS}``."""
    rows, order = {}, []
    for r in results["gemm"]:
        k = (r["M"], r["N"], r["K"])
        if k not in rows:
            rows[k] = {"n": r["M"] if r["M"] == r["N"] == r["K"] else f"{r['M']}x{r['N']}x{r['K']}"}
            order.append(k)
        rows[k][r["method"]] = r["gflops"]
    for row in rows.values():
        ref = row.get("cublas")
        for m in [m for m in list(row) if m not in ("n", "cublas")]:
            if ref:
                row[f"{m} %"] = 100.0 * row[m] / ref
    return [rows[k] for k in order]


def epoch_table(results):
    """Rows ``{"method", "seconds", "× cuDNN"}`` for the LeNet-5 epoch."""
    ref = next((r["seconds"] for r in results["epoch"] if r["method"] == "cudnn"), None)
    return [{"method": r["method"], "seconds": r["seconds"], "data": r["data"],
             **({"× cuDNN": r["seconds"] / ref} if ref else {})} for r in results["epoch"]]


def check_table(results):
    """Rows ``{"method", "op", "max rel. error"}``: worst agreement with the float64 reference."""
    worst = {}
    for r in results["check"]:
        k = (r["method"], r["op"])
        worst[k] = max(worst.get(k, 0.0), r["rel_error"])
    return [{"method": m, "op": o, "max rel. error": e} for (m, o), e in worst.items()]


def _median(xs):
    xs = sorted(xs)
    n = len(xs)
    if not n:
        return None
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def targets(results):
    """Evaluate :data:`TARGETS`; rows ``{"target", "value", "met"}`` (value None if unmeasured)."""
    out = []
    by = {}
    for r in results["conv"]:
        if r["R"] == 3 and r["S"] == 3:
            by.setdefault((r["layer"], r["op"]), {})[r["method"]] = r["gflops"]
    for key in ("im2col", "direct"):
        text, methods, thr = TARGETS[key]
        ratios = []
        for d in by.values():
            own = [d[m] for m in methods if m in d]
            if "cudnn" in d and own:
                ratios.append(max(own) / d["cudnn"])
        v = _median(ratios)
        out.append({"target": text, "value": v, "met": None if v is None else v >= thr})
    text, methods, thr = TARGETS["epoch"]
    t = {r["method"]: r["seconds"] for r in results["epoch"]}
    own = [t[m] for m in methods if m in t]
    v = min(own) / t["cudnn"] if own and "cudnn" in t else None
    out.append({"target": text, "value": v, "met": None if v is None else v <= thr})
    return out


def _fmt(v):
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-2 or abs(v) >= 1e5):
            return f"{v:.2e}"
        return f"{v:.1f}" if abs(v) >= 10 else f"{v:.3g}"
    return str(v)


def markdown(rows, columns=None):
    """A Markdown table of ``rows`` (list of dicts); missing cells show '–'."""
    if not rows:
        return "*(no rows)*"
    if columns is None:
        columns = []
        for r in rows:
            columns += [c for c in r if c not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def arithmetic_intensity(r, itemsize=4):
    """FLOPs per byte of the *layer*, if x, w and y crossed device memory exactly once."""
    N, C, H, W, K, R, S = (r[k] for k in ("N", "C", "H", "W", "K", "R", "S"))
    P = (H + 2 * r["padding"] - R) // r["stride"] + 1
    Q = (W + 2 * r["padding"] - S) // r["stride"] + 1
    flops = 2 * N * K * P * Q * C * R * S
    return flops / (itemsize * (N * C * H * W + K * C * R * S + N * K * P * Q))


def roofline(results, op="forward", ax=None, peak_gflops=None, bandwidth_gbs=None):
    """Roofline: GFLOP/s against the layer's arithmetic intensity, one marker per method.

    The roofs come from ``env.peak_fp32_gflops`` and ``env.peak_bandwidth_gbs``
    (or the arguments).  Returns the matplotlib Axes.
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    env = results["env"]
    peak = peak_gflops or env.get("peak_fp32_gflops")
    bw = bandwidth_gbs or env.get("peak_bandwidth_gbs")
    rows = [r for r in results["conv"] if r["op"] == op]
    if not rows:
        raise ValueError(f"op: no conv rows for {op!r} in the results")
    markers = dict(zip(("direct-v1", "direct-v2", "igemm-v3", "im2col+cublas", "cudnn", "torch", "torch-nocudnn"),
                       "v^sDo*x"))
    ais = [arithmetic_intensity(r) for r in rows]
    lo, hi = min(ais) / 2, max(ais) * 2
    if peak and bw:
        xs = [lo * (hi / lo) ** (i / 100) for i in range(101)]
        ax.plot(xs, [min(peak, bw * x) for x in xs], "k-", lw=1.5, label="FP32 roof")
        ax.axvline(peak / bw, color="0.7", ls=":", lw=1)
    for m in dict.fromkeys(r["method"] for r in rows):
        pts = [(arithmetic_intensity(r), r["gflops"]) for r in rows if r["method"] == m]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], marker=markers.get(m, "."), label=m, alpha=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity of the layer (FLOP/byte, compulsory traffic)")
    ax.set_ylabel("GFLOP/s")
    ax.set_title(f"conv {op}: {env['device']}")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(True, which="both", alpha=0.3)
    if not (peak and bw):
        ax.text(0.02, 0.95, "roof unknown (no peak figures in env)", transform=ax.transAxes, fontsize=8)
    return ax



def main(argv=()):
    """``python -m nnbook.bench report [--path FILE]``: print the recorded results as Markdown."""
    import argparse  # noqa: PLC0415

    from .cudnn import OPS, load_results  # noqa: PLC0415
    p = argparse.ArgumentParser(prog="python -m nnbook.bench report",
                                description="Print the recorded cuDNN/cuBLAS comparison as Markdown tables")
    p.add_argument("--path", default=None, help="results file (default nnbook/results/cudnn.json)")
    args = p.parse_args(list(argv))
    res = load_results(args.path)
    if res is None:
        print("no results recorded: run `python -m nnbook.bench cudnn` on a CUDA machine first")
        return 1
    print(header(res) + "\n")
    for op in OPS:
        print(f"### conv {op}: GFLOP/s and % of cuDNN\n\n{markdown(conv_table(res, op))}\n")
    print(f"### SGEMM: GFLOP/s and % of cuBLAS\n\n{markdown(gemm_table(res))}\n")
    print(f"### LeNet-5 epoch\n\n{markdown(epoch_table(res))}\n")
    print(f"### Targets\n\n{markdown(targets(res))}")
    return 0
