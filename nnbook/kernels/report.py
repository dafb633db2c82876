"""Figures and tables of the chapter "GPU adaptation" (no GPU needed).

* :func:`tiling_figure` -- which thread of which block computes which output element.
* :func:`warp_sectors` / :func:`coalescing_figure` -- memory sectors one warp touches.
* :func:`occupancy` -- resident warps per SM from registers, shared memory, block size.
* :func:`dense_step_table` -- every kernel of one training step with FLOPs and bytes.
* :func:`roofline_figure` -- the roofline of a GPU with kernels placed on it.
* :func:`sgemm_figure`, :func:`results_summary` -- recorded results of ``nnbook.bench gpu``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["H100_SXM", "tiling_figure", "warp_sectors", "coalescing_figure", "occupancy",
           "dense_step_table", "roofline_figure", "sgemm_figure", "results_summary"]

#: published H100 SXM5 figures (NVIDIA H100 datasheet; Hopper architecture whitepaper):
#: spec numbers, not measurements
H100_SXM = {"name": "H100 SXM5 (spec)", "fp32_flops": 67e12, "hbm_bytes_per_s": 3.35e12,
            "sms": 132, "regs_per_sm": 65536, "max_threads_per_sm": 2048,
            "max_blocks_per_sm": 32, "smem_per_sm": 228 * 1024, "max_warps_per_sm": 64,
            "pcie_gen5_x16_bytes_per_s": 64e9, "nvlink4_bytes_per_s": 900e9}


def _thread_map(M, N, block, mapping):
    """Arrays (block id, lane id) for every output element, plus the grid."""
    if mapping != "v2":     # v1: x -> row, i.e. v2's layout of the transposed matrix
        blk, lane, grid = _thread_map(N, M, block, "v2")
        return blk.T, lane.T, grid
    bdx, bdy = block        # v2: x -> column
    blk = np.full((M, N), -1)
    lane = np.full((M, N), -1)
    gx, gy = -(-N // bdx), -(-M // bdy)
    for by in range(gy):
        for bx in range(gx):
            for ty in range(bdy):
                for tx in range(bdx):
                    r, c = by * bdy + ty, bx * bdx + tx
                    if r < M and c < N:
                        blk[r, c] = by * gx + bx
                        lane[r, c] = ty * bdx + tx
    return blk, lane, (gx, gy)


def tiling_figure(M=20, N=12, block=(8, 4), mapping="v2", ax=None, warp_size=32):
    """Colour each element of an M×N output by the block whose thread computes it;
    numbers are the thread's lane (linear index in its block); the first warp of
    block 0 is outlined.  ``mapping``: ``"v2"`` (threadIdx.x → column) or
    ``"v1"`` (threadIdx.x → row).  Returns (figure, grid (gx, gy), idle threads)."""
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.colors import ListedColormap  # noqa: PLC0415
    blk, lane, (gx, gy) = _thread_map(M, N, block, mapping)
    threads = gx * gy * block[0] * block[1]
    idle = threads - M * N
    if ax is None:
        fig, ax = plt.subplots(figsize=(min(10, 0.45 * N + 2), min(8, 0.4 * M + 1.5)))
    else:
        fig = ax.figure
    cmap = ListedColormap(plt.get_cmap("tab20").colors)
    ax.imshow(blk % 20, cmap=cmap, vmin=0, vmax=19, interpolation="nearest")
    if M * N <= 600:
        for r in range(M):
            for c in range(N):
                ax.text(c, r, str(lane[r, c]), ha="center", va="center", fontsize=6)
    first = (blk == 0) & (lane < warp_size)
    rr, cc = np.nonzero(first)
    for r, c in zip(rr, cc):
        ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, lw=1.5, ec="k"))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"column of C (N = {N})")
    ax.set_ylabel(f"row of C (M = {M})")
    ax.set_title(f"{mapping}: grid {gx}×{gy} blocks of {block[0]}×{block[1]} threads, "
                 f"{idle} idle threads", fontsize=9)
    return fig, (gx, gy), idle


def warp_sectors(mapping, K=784, N=256, row0=0, col0=0, k=0, warp_size=32, sector=32):
    """32-byte sectors touched by one warp's loads of A[row, k] and B[k, col] in one
    iteration of the naive (v1) or coalesced (v2) SGEMM, float32 row-major."""
    lanes = np.arange(warp_size)
    if mapping == "v1":          # lanes walk down rows; one column
        a_addr = ((row0 + lanes) * K + k) * 4
        b_addr = np.full(warp_size, (k * N + col0) * 4)
    else:                        # lanes walk along columns; one row
        a_addr = np.full(warp_size, ((row0) * K + k) * 4)
        b_addr = (k * N + col0 + lanes) * 4
    return {"A": len(np.unique(a_addr // sector)), "B": len(np.unique(b_addr // sector)),
            "a_addr": a_addr, "b_addr": b_addr}


def coalescing_figure(K=784, N=256):
    import matplotlib.pyplot as plt  # noqa: PLC0415
    fig, axes = plt.subplots(1, 2, figsize=(10, 2.8), sharey=True)
    for ax, m in zip(axes, ("v1", "v2")):
        s = warp_sectors(m, K, N)
        ax.scatter(s["a_addr"] / 1024, np.arange(32), s=10, label=f"A: {s['A']} sectors")
        ax.scatter(s["b_addr"] / 1024, np.arange(32), s=10, marker="x",
                   label=f"B: {s['B']} sectors")
        ax.set_xlabel("byte address (KiB)")
        ax.set_title(f"{m}: one warp, one k", fontsize=9)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("lane")
    fig.tight_layout()
    return fig


def occupancy(threads_per_block, regs_per_thread, smem_per_block=0, gpu=H100_SXM,
              reg_unit=256):
    """(blocks per SM, fraction of the SM's warp slots in use).

    Simplified CUDA occupancy calculator: registers are allocated per warp in
    units of ``reg_unit``; the limits are registers, shared memory, threads and
    blocks per SM."""
    warps = -(-threads_per_block // 32)
    regs_warp = -(-regs_per_thread * 32 // reg_unit) * reg_unit
    lim = [gpu["max_blocks_per_sm"], gpu["max_threads_per_sm"] // (warps * 32),
           gpu["regs_per_sm"] // (regs_warp * warps)]
    if smem_per_block:
        lim.append(gpu["smem_per_sm"] // smem_per_block)
    blocks = min(lim)
    return blocks, blocks * warps / gpu["max_warps_per_sm"]


def dense_step_table(sizes=(784, 256, 128, 10), B=128):
    """Kernels of one training step of an MLP (kernel engine): a list of dicts with
    op, kernel, flops, bytes (fewest bytes through device memory, float32)."""
    rows = []
    L = len(sizes) - 1
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        rows.append({"op": f"fwd {i + 1}: Z = X W", "kernel": "matmul",
                     "flops": 2 * B * a * b, "bytes": 4 * (B * a + a * b + B * b)})
        act = "relu" if i < L - 1 else "identity"
        rows.append({"op": f"fwd {i + 1}: A = {act}(Z + b)", "kernel": "bias_act.forward",
                     "flops": 2 * B * b, "bytes": 4 * (2 * B * b + b)})
    K = sizes[-1]
    rows.append({"op": "loss: softmax + xent + (O - Y)/N", "kernel": "softmax_xent",
                 "flops": 5 * B * K, "bytes": 4 * (2 * B * K + B)})
    for i in range(L - 1, -1, -1):
        a, b = sizes[i], sizes[i + 1]
        rows.append({"op": f"bwd {i + 1}: dZ = dA f'(A), db", "kernel": "bias_act.backward",
                     "flops": 2 * B * b, "bytes": 4 * (3 * B * b + b)})
        rows.append({"op": f"bwd {i + 1}: X^T", "kernel": "transpose",
                     "flops": 0, "bytes": 4 * 2 * B * a})
        rows.append({"op": f"bwd {i + 1}: dW = X^T dZ", "kernel": "matmul",
                     "flops": 2 * a * B * b, "bytes": 4 * (a * B + B * b + a * b)})
        if i > 0:
            rows.append({"op": f"bwd {i + 1}: W^T", "kernel": "transpose",
                         "flops": 0, "bytes": 4 * 2 * a * b})
            rows.append({"op": f"bwd {i + 1}: dX = dZ W^T", "kernel": "matmul",
                         "flops": 2 * B * b * a, "bytes": 4 * (B * b + b * a + B * a)})
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        for name, n in (("W", a * b), ("b", b)):
            rows.append({"op": f"sgd {name}{i + 1}", "kernel": "sgd",
                         "flops": 2 * n, "bytes": 4 * 3 * n})
    return rows


def roofline_figure(points, gpu=H100_SXM, ax=None, measured=None):
    """Log-log roofline: attainable FLOP/s = min(peak, intensity × bandwidth).
    ``points``: {label: intensity}; ``measured``: {label: (intensity, flop/s)}."""
    import matplotlib.pyplot as plt  # noqa: PLC0415
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4.2))
    else:
        fig = ax.figure
    peak, bw = gpu["fp32_flops"], gpu["hbm_bytes_per_s"]
    x = np.logspace(-2, 3.5, 200)
    ax.loglog(x, np.minimum(peak, x * bw) / 1e12, "k-", lw=2, label=f"{gpu['name']} roof")
    ax.axvline(peak / bw, color="0.6", ls=":", lw=1)
    for i, (label, I) in enumerate(points.items()):
        y = min(peak, I * bw) / 1e12
        ax.plot([I], [y], "o", color=plt.get_cmap("tab10")(i % 10))
        ax.annotate(label, (I, y), textcoords="offset points", xytext=(4, -10 - 9 * (i % 2)),
                    fontsize=7)
    for label, (I, f) in (measured or {}).items():
        ax.plot([I], [f / 1e12], "kx")
        ax.annotate(label, (I, f / 1e12), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel("arithmetic intensity (FLOP / byte of device memory)")
    ax.set_ylabel("attainable TFLOP/s (FP32)")
    ax.set_title(f"ridge point at {peak / bw:.0f} FLOP/B", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def sgemm_figure(res, ax=None):
    """GFLOP/s of every SGEMM version against size, from a results dict."""
    import matplotlib.pyplot as plt  # noqa: PLC0415
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4))
    else:
        fig = ax.figure
    rows = res["sgemm"]
    for v in sorted({r["version"] for r in rows}):
        rs = sorted((r for r in rows if r["version"] == v), key=lambda r: r["M"])
        ax.plot([r["M"] for r in rs], [r["gflops"] for r in rs], "o-",
                label="cuBLAS (v0)" if v == 0 else f"v{v}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("M = N = K")
    ax.set_ylabel("GFLOP/s")
    ax.set_title(f"SGEMM on {res['device']['name']} (FP32, TF32 off)", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def results_summary(res) -> dict:
    """Key numbers of a results dict: per SGEMM version the GFLOP/s at the largest
    size and its fraction of cuBLAS; train-step times; epoch speed-ups."""
    rows = res["sgemm"]
    n = max(r["M"] for r in rows)
    at = {r["version"]: r["gflops"] for r in rows if r["M"] == n}
    out = {"size": n, "gflops": at,
           "of_cublas": {v: g / at[0] for v, g in at.items()} if 0 in at else {}}
    out["train_step_ms"] = {(r["engine"], r["with_transfer"]): r["seconds"] * 1e3
                            for r in res.get("train_step", [])}
    ep = res.get("epoch") or {}
    if ep.get("cpu_seconds"):
        out["epoch_speedup"] = {k: ep["cpu_seconds"] / v for k, v in ep["gpu_seconds"].items()}
    return out
