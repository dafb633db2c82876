"""Compile every numba-cuda kernel of the package to PTX for a given GPU and report
its resources -- no GPU needed, only the CUDA toolkit's libNVVM (and ``ptxas`` for
the report).

    python -m nnbook.kernels._ptx [--cc 9.0] [--out DIR]

Covers the dense kernels (matmul, bias_act, softmax_xent, sgd) and the
convolution ones (conv2d, im2col, pool) at their GPU configuration
(:data:`nnbook.kernels.matmul.GPU_CONFIG`, :data:`nnbook.kernels.conv2d.IGEMM_GPU`
...), with the argument types their launchers pass (see :func:`kernels`).
Prints, per kernel, the registers per thread, shared memory per block, stack
frame and spill bytes that ``ptxas -v`` reports.  Run it in a fresh process: it
sets ``NNBOOK_KERNELS_SIM=0`` before the kernels are imported (and re-executes
itself when the simulator is already on).

Exit status: 0 every kernel compiled; 1 some kernel failed to compile (each is
listed as ``FAILED name: error`` after the table); 2 nothing can be compiled
here -- no toolkit/libNVVM (it prints ``cannot compile (why)``).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile


def _prepare():
    os.environ["NNBOOK_KERNELS_SIM"] = "0"
    os.environ["NUMBA_ENABLE_CUDASIM"] = "0"
    if "CUDA_HOME" not in os.environ and os.path.isdir("/usr/local/cuda"):
        os.environ["CUDA_HOME"] = "/usr/local/cuda"
    for d in sorted(p for p in os.listdir("/usr/local") if p.startswith("cuda-")) \
            if os.path.isdir("/usr/local") else []:
        os.environ.setdefault("CUDA_HOME", os.path.join("/usr/local", d))
    # numba-cuda asks NVRTC only for the list of architectures and its own path;
    # a toolkit without NVRTC can still compile through NVVM.
    try:
        from numba.cuda.cudadrv import nvrtc  # noqa: PLC0415
        nvrtc.get_supported_ccs()
    except Exception:  # noqa: BLE001
        from numba.cuda import cuda_paths  # noqa: PLC0415
        from numba.cuda.cudadrv import nvrtc  # noqa: PLC0415
        nvrtc.get_supported_ccs = lambda: ((7, 5), (8, 0), (8, 6), (8, 9), (9, 0))
        cuda_paths._get_nvrtc_path = lambda: None


#: The direct v2 forward kernel is specialised on the filter size and stride
#: (``_make_fwd_v2(TH, TW, KB, R, S, sh, sw)``); these are the (R, S, sh, sw) of
#: the benchmarked layers (:func:`nnbook.bench.cudnn.layers`: LeNet 5x5, ResNet 3x3).
CONV_V2_FILTERS = ((5, 5, 1, 1), (3, 3, 1, 1))
#: ``conv2d_forward``'s default ``v2_tile`` (TH, TW, KB).
CONV_V2_TILE = (8, 8, 4)


def kernels():
    """(name, python function, signature) of every kernel at its GPU configuration.

    The argument types are those the launchers pass: C-contiguous float32 device
    arrays (``to_device`` / CuPy allocations), int32 index arrays where the
    launcher makes them int32, Python ints as int64 and Python floats as float32
    where the launcher converts them (see each module's launcher).
    """
    from . import bias_act, conv2d, im2col, matmul, pool, sgd, softmax_xent  # noqa: PLC0415
    a2 = "float32[:, ::1]"
    a1 = "float32[::1]"
    a4 = "float32[:, :, :, ::1]"
    i4 = "int32[:, :, :, ::1]"
    out = []
    # ---- dense
    for v in (1, 2, 3, 4, 5):
        k = matmul.kernel(v, matmul.GPU_CONFIG[v]).kernel
        out.append((f"matmul_v{v}", k.py_func, f"void({a2}, {a2}, {a2}, int64, int64, int64)"))
    k = matmul.kernel("transpose", matmul.GPU_CONFIG["transpose"]).kernel
    out.append(("transpose", k.py_func, f"void({a2}, {a2}, int64, int64)"))
    c = bias_act.GPU_CONFIG
    out.append(("bias_act_fwd_v1", bias_act.bias_act_fwd_v1.py_func,
                f"void({a2}, {a1}, {a2}, int64, int64, int64)"))
    out.append(("bias_act_fwd_v2", bias_act.bias_act_fwd_v2.py_func,
                f"void({a2}, {a1}, {a2}, int64, int64, int64)"))
    out.append(("act_bwd_v1", bias_act.act_bwd_v1.py_func,
                f"void({a2}, {a2}, {a2}, int64, int64, int64)"))
    out.append(("colsum_v1", bias_act.colsum_v1.py_func, f"void({a2}, {a1}, int64, int64)"))
    out.append(("bias_act_bwd_v2", bias_act._make_bwd_v2(c["BX"], c["BY"]).py_func,
                f"void({a2}, {a2}, {a2}, {a1}, int64, int64, int64)"))
    B = softmax_xent.GPU_CONFIG["block_row"]
    # labels: int64 from the dense layer (NumPy/CuPy integer labels), int32 from
    # softmax_xent.check/benchmark (to_device(y, np.int32)): both are launched.
    for suffix, lab in (("", "int64[::1]"), ("_i32", "int32[::1]")):
        sig = f"void({a2}, {lab}, {a1}, {a1}, {a2}, int64, int64, float32, float32)"
        out.append(("softmax_xent_v1" + suffix, softmax_xent.softmax_xent_v1.py_func, sig))
        out.append(("softmax_xent_v2" + suffix, softmax_xent._make_v2(B).py_func, sig))
        out.append(("softmax_xent_v3" + suffix, softmax_xent._make_v3(B).py_func, sig))
    sig = f"void({a1}, {a1}, {a1}, int64, float32, float32, float32, float32, boolean, boolean)"
    out.append(("sgd_v1", sgd.sgd_v1.py_func, sig))
    out.append(("sgd_v2", sgd.sgd_v2.py_func, sig))
    # ---- convolution (conv2d.py): stride/padding ints from pair() -> int64
    s4 = "int64, int64, int64, int64"                       # sh, sw, ph, pw
    out.append(("conv2d_fwd_v1", conv2d._fwd_v1.py_func, f"void({a4}, {a4}, {a1}, {a4}, {s4})"))
    out.append(("conv2d_dgrad_v1", conv2d._dgrad_v1.py_func, f"void({a4}, {a4}, {a4}, {s4})"))
    out.append(("conv2d_wgrad_v1", conv2d._wgrad_v1.py_func, f"void({a4}, {a4}, {a4}, {s4})"))
    TH, TW, KB = CONV_V2_TILE
    for R, S, sh, sw in CONV_V2_FILTERS:
        k = conv2d._make_fwd_v2(TH, TW, KB, R, S, sh, sw)
        out.append((f"conv2d_fwd_v2_{R}x{S}s{sh}", k.py_func, f"void({a4}, {a4}, {a1}, {a4}, int64, int64)"))
    # implicit GEMM: kernel(A, B, bias, out.reshape(-1), rows, cols, depth, chunk, d) with
    # d = _dims(...), a tuple of 13 Python ints; forward/dgrad never split, wgrad both ways.
    g = conv2d.IGEMM_GPU
    sig = f"void({a4}, {a4}, {a1}, {a1}, int64, int64, int64, int64, UniTuple(int64, 13))"
    for op, short, split in (("forward", "fwd", False), ("dgrad", "dgrad", False),
                             ("wgrad", "wgrad", False), ("wgrad", "wgrad", True)):
        k = conv2d.make_igemm(op, g["BR"], g["BC"], g["BD"], g["TR"], g["TC"], split)
        out.append((f"conv2d_{short}_v3" + ("_splitk" if split else ""), k.py_func, sig))
    # ---- im2col.py: R, S, P, Q, sh, sw, ph, pw are Python ints
    s8 = ", ".join(["int64"] * 8)
    out.append(("im2col_v1", im2col._im2col_v1.py_func, f"void({a4}, {a2}, {s8})"))
    out.append(("col2im_v1", im2col._col2im_v1.py_func, f"void({a2}, {a4}, {s8})"))
    # ---- pool.py: idx is int32 (maxpool_forward allocates it, maxpool_backward converts it)
    s6 = ", ".join(["int64"] * 6)                           # kh, kw, sh, sw, ph, pw
    out.append(("maxpool_fwd_v1", pool._maxpool_fwd_v1.py_func, f"void({a4}, {a4}, {i4}, {s6})"))
    out.append(("maxpool_bwd_v1", pool._maxpool_bwd_v1.py_func, f"void({a4}, {i4}, {a4}, {s6})"))
    out.append(("avgpool_fwd_v1", pool._avgpool_fwd_v1.py_func, f"void({a4}, {a4}, {s6})"))
    out.append(("avgpool_bwd_v1", pool._avgpool_bwd_v1.py_func, f"void({a4}, {a4}, {s6})"))
    return out


def _compile_for(cc):
    """Make numba compile device functions for ``cc`` without a GPU.

    ``compile_ptx`` takes the target ``cc``, but a kernel that calls a
    non-inlined device function (``@cuda.jit(device=True)``, e.g. the gather
    functions of :mod:`.conv2d` or ``pool._window_range_dev``) has numba compile
    that function for ``get_current_device().compute_capability``, which needs
    the driver.  Answer with the target instead: only this compile-only tool does it.
    """
    from numba.cuda import dispatcher  # noqa: PLC0415

    class _TargetDevice:
        compute_capability = cc
        name = f"sm_{cc[0]}{cc[1]} (compile only)"

    dispatcher.get_current_device = _TargetDevice


def _probe(x):          # the smallest kernel: if it does not compile, the toolkit is the problem
    x[0] = 1.0


def _toolkit_problem(cc):
    """None if libNVVM compiles a trivial kernel for ``cc``, else why not (one line)."""
    try:
        from numba import cuda  # noqa: PLC0415
        from numba.cuda.cudadrv import nvvm  # noqa: PLC0415
        if not nvvm.is_available():
            return "libNVVM (CUDA toolkit) not found"
        cuda.compile_ptx(_probe, "void(float32[::1])", cc=cc)
    except Exception as e:  # noqa: BLE001
        if os.environ.get("NNBOOK_PTX_DEBUG"):
            raise
        return f"{type(e).__name__}: {e}".strip().splitlines()[0]
    return None


def _ptxas_info(ptxas, cc, path):
    r = subprocess.run([ptxas, f"-arch=sm_{cc[0]}{cc[1]}", "-v", path, "-o", os.devnull],
                       capture_output=True, text=True)
    txt = r.stdout + r.stderr
    if r.returncode != 0:
        raise RuntimeError("ptxas: " + (txt.strip().splitlines() or ["exit status %d" % r.returncode])[-1])
    regs = re.search(r"Used (\d+) registers", txt)
    smem = re.search(r"(\d+) bytes smem", txt)
    stack = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, "
                      r"(\d+) bytes spill loads", txt)
    return (f"regs={regs.group(1) if regs else '?'} smem={smem.group(1) if smem else 0}B "
            + (f"stack={stack.group(1)}B spill_st={stack.group(2)}B "
               f"spill_ld={stack.group(3)}B" if stack else ""))


def main(argv=None):
    """Exit status 0: every kernel compiled; 1: some kernel failed (each is named,
    with its error, after the table); 2: nothing can be compiled here (no toolkit)."""
    import argparse  # noqa: PLC0415
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cc", default="9.0")
    ap.add_argument("--out", default=None, help="directory for the .ptx files")
    args = ap.parse_args(argv)
    from . import on_simulator  # noqa: PLC0415
    if on_simulator():   # numba.cuda was imported in simulator mode: start afresh
        env = dict(os.environ, NNBOOK_KERNELS_SIM="0", NUMBA_ENABLE_CUDASIM="0")
        argv = list(sys.argv[1:] if argv is None else argv)
        return subprocess.run([sys.executable, "-m", "nnbook.kernels._ptx", *argv],
                              env=env).returncode
    _prepare()
    from numba import cuda  # noqa: PLC0415
    cc = tuple(int(x) for x in args.cc.split("."))
    why = _toolkit_problem(cc)
    if why is not None:
        print(f"nnbook.kernels._ptx: cannot compile ({why})")
        return 2
    _compile_for(cc)
    outdir = args.out or tempfile.mkdtemp(prefix="nnbook_ptx_")
    os.makedirs(outdir, exist_ok=True)
    ptxas = shutil.which("ptxas") or (os.path.join(os.environ.get("CUDA_HOME", ""), "bin", "ptxas"))
    rows, failed = [], []
    for name, fn, sig in kernels():   # an error in kernels() itself is a bug: let it raise
        try:
            ptx, _ = cuda.compile_ptx(fn, sig, cc=cc)
            path = os.path.join(outdir, name + ".ptx")
            with open(path, "w") as f:
                f.write(ptx)
            info = _ptxas_info(ptxas, cc, path) if os.path.exists(ptxas) else ""
        except Exception as e:  # noqa: BLE001 - name the kernel, go on with the others
            if os.environ.get("NNBOOK_PTX_DEBUG"):
                raise
            msg = f"{type(e).__name__}: {e}".strip()
            failed.append((name, msg))
            continue
        rows.append((name, info, ptx.count("fma.rn.f32")))
    for name, info, ffma in rows:
        print(f"{name:22s} {info}  fma.f32 in PTX: {ffma}")
    print(f"PTX written to {outdir}")
    for name, msg in failed:
        lines = [ln for ln in msg.splitlines() if ln.strip()]
        print(f"FAILED {name}: " + " | ".join(lines[:6]))
    if failed:
        print(f"nnbook.kernels._ptx: {len(failed)} of {len(rows) + len(failed)} kernels failed to compile: "
              + ", ".join(n for n, _ in failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
