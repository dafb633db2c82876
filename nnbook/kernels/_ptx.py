"""Compile every dense kernel to PTX for a given GPU and report its resources --
no GPU needed, only the CUDA toolkit's libNVVM (and ``ptxas`` for the report).

    python -m nnbook.kernels._ptx [--cc 9.0] [--out DIR]

Prints, per kernel, the registers per thread, shared memory per block, stack
frame and spill bytes that ``ptxas -v`` reports for the GPU configuration
(:data:`nnbook.kernels.matmul.GPU_CONFIG` ...).  Run it in a fresh process: it
sets ``NNBOOK_KERNELS_SIM=0`` before the kernels are imported.  Without the
toolkit it prints why and exits with status 2.
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


def kernels():
    """(name, python function, signature) of every kernel at its GPU configuration."""
    from . import bias_act, matmul, sgd, softmax_xent  # noqa: PLC0415
    a2 = "float32[:, ::1]"
    a1 = "float32[::1]"
    out = []
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
    sig = f"void({a2}, int64[::1], {a1}, {a1}, {a2}, int64, int64, float32, float32)"
    out.append(("softmax_xent_v1", softmax_xent.softmax_xent_v1.py_func, sig))
    out.append(("softmax_xent_v2", softmax_xent._make_v2(B).py_func, sig))
    out.append(("softmax_xent_v3", softmax_xent._make_v3(B).py_func, sig))
    sig = f"void({a1}, {a1}, {a1}, int64, float32, float32, float32, float32, boolean, boolean)"
    out.append(("sgd_v1", sgd.sgd_v1.py_func, sig))
    out.append(("sgd_v2", sgd.sgd_v2.py_func, sig))
    return out


def main(argv=None):
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
    outdir = args.out or tempfile.mkdtemp(prefix="nnbook_ptx_")
    os.makedirs(outdir, exist_ok=True)
    ptxas = shutil.which("ptxas") or (os.path.join(os.environ.get("CUDA_HOME", ""), "bin", "ptxas"))
    rows = []
    try:
        for name, fn, sig in kernels():
            ptx, _ = cuda.compile_ptx(fn, sig, cc=cc)
            path = os.path.join(outdir, name + ".ptx")
            with open(path, "w") as f:
                f.write(ptx)
            info = ""
            if os.path.exists(ptxas):
                r = subprocess.run([ptxas, f"-arch=sm_{cc[0]}{cc[1]}", "-v", path, "-o", os.devnull],
                                   capture_output=True, text=True)
                txt = r.stdout + r.stderr
                regs = re.search(r"Used (\d+) registers", txt)
                smem = re.search(r"(\d+) bytes smem", txt)
                stack = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, "
                                  r"(\d+) bytes spill loads", txt)
                info = (f"regs={regs.group(1) if regs else '?'} smem={smem.group(1) if smem else 0}B "
                        + (f"stack={stack.group(1)}B spill_st={stack.group(2)}B "
                           f"spill_ld={stack.group(3)}B" if stack else ""))
            ffma = ptx.count("fma.rn.f32")
            rows.append((name, info, ffma))
    except Exception as e:  # noqa: BLE001
        if os.environ.get("NNBOOK_PTX_DEBUG"):
            raise
        print(f"nnbook.kernels._ptx: cannot compile ({type(e).__name__}: {e})".splitlines()[0])
        return 2
    for name, info, ffma in rows:
        print(f"{name:18s} {info}  fma.f32 in PTX: {ffma}")
    print(f"PTX written to {outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
