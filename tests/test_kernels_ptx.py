"""Every numba-cuda kernel compiles for a real GPU (PTX for sm_90), no GPU needed.

The other kernel tests run the kernels in numba's CUDA simulator, which executes
device code as Python: it cannot see code the CUDA compiler rejects (unsupported
constructs, type-unification errors, wrong signatures).  Here
``python -m nnbook.kernels._ptx`` compiles each kernel of
:func:`nnbook.kernels._ptx.kernels` with libNVVM, in a fresh process on the real
CUDA target, and ``ptxas -v`` (when present) reports registers and spills.

Skipped only when the CUDA toolkit (libNVVM) is missing -- the tool then exits
with status 2 and says it cannot compile; a kernel that fails to compile fails
the test with the kernel's name and error.
"""
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from nnbook.kernels._ptx import kernels

CC = "9.0"
#: kernels allowed to spill at the GPU configuration: {name: reason}.  None do now.
SPILL_OK: dict = {}

ROW = re.compile(r"^(\w+)\s+regs=(\d+) smem=(\d+)B stack=(\d+)B spill_st=(\d+)B spill_ld=(\d+)B", re.M)


def _env():
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)     # the test session runs on the simulator
    env["NNBOOK_KERNELS_SIM"] = "0"           # real CUDA target (compile only), no re-exec
    return env


def _run(args, timeout=300):
    return subprocess.run([sys.executable, *args], env=_env(), capture_output=True,
                          text=True, timeout=timeout)


def _skip_if_no_toolkit(r):
    out = r.stdout + r.stderr
    if r.returncode == 2 and "cannot compile" in out:
        pytest.skip(out.strip().splitlines()[-1])


def _has_ptxas():
    home = os.environ.get("CUDA_HOME") or "/usr/local/cuda"
    return bool(shutil.which("ptxas")) or os.path.exists(os.path.join(home, "bin", "ptxas"))


def test_every_kernel_compiles_to_ptx_without_spills(tmp_path):
    names = [name for name, _, _ in kernels()]
    assert len(names) == len(set(names)), f"duplicate kernel names: {names}"
    r = _run(["-m", "nnbook.kernels._ptx", "--cc", CC, "--out", str(tmp_path)])
    _skip_if_no_toolkit(r)
    out = r.stdout + r.stderr
    failed = re.findall(r"^FAILED .*$", out, re.M)
    assert r.returncode == 0, (f"_ptx exited with {r.returncode}; kernels that failed to compile:\n"
                               + ("\n".join(failed) or out[-4000:]))
    missing = [n for n in names if not (tmp_path / f"{n}.ptx").is_file()]
    assert not missing, f"no PTX written for {missing}\n{out[-4000:]}"
    for n in names:
        ptx = (tmp_path / f"{n}.ptx").read_text()
        assert ".entry" in ptx, f"{n}.ptx has no .entry (not a kernel?)"
        assert f".target sm_{CC.replace('.', '')}" in ptx, f"{n}.ptx is not for sm_{CC}"
    if not _has_ptxas():
        return
    rows = {m.group(1): m.groups()[1:] for m in ROW.finditer(out)}
    assert set(rows) == set(names), (f"ptxas report missing for {sorted(set(names) - set(rows))}"
                                     f"\n{out[-4000:]}")
    spills = {n: f"spill_st={v[3]}B spill_ld={v[4]}B" for n, v in rows.items()
              if (int(v[3]) or int(v[4])) and n not in SPILL_OK}
    assert not spills, f"kernels spill registers at the GPU configuration (cc {CC}): {spills}"


def test_compile_failure_fails_and_missing_toolkit_exits_2(tmp_path):
    # One process: the tool's exit status with libNVVM reported missing (2), then
    # with a kernel numba-cuda cannot type (1, naming it) next to a good one.
    code = textwrap.dedent(f"""
        import sys
        import nnbook.kernels._ptx as P
        from numba.cuda.cudadrv import nvvm

        def broken(x, n):          # type-unification error: float vs tuple
            v = 0.0
            if n > 0:
                v = (1, 2)
            x[0] = v

        real = nvvm.is_available
        nvvm.is_available = lambda: False
        print("RC_NO_TOOLKIT", P.main(["--cc", "{CC}", "--out", sys.argv[1]]))
        nvvm.is_available = real
        good = [k for k in P.kernels() if k[0] == "sgd_v1"]
        P.kernels = lambda: good + [("broken_kernel", broken, "void(float32[::1], int64)")]
        print("RC_BROKEN", P.main(["--cc", "{CC}", "--out", sys.argv[1]]))
    """)
    r = _run(["-c", code, str(tmp_path)])
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "RC_NO_TOOLKIT 2" in out and "cannot compile (libNVVM" in out, out[-4000:]
    if "RC_BROKEN 2" in out:           # the toolkit really is missing
        pytest.skip([ln for ln in out.splitlines() if "cannot compile" in ln][-1])
    assert "RC_BROKEN 1" in out, out[-4000:]
    assert re.search(r"^FAILED broken_kernel: TypingError: .*[Uu]nify", out, re.M), out[-4000:]
    assert re.search(r"^sgd_v1 ", out, re.M), out[-4000:]


def test_signatures_are_the_ones_the_launchers_pass(monkeypatch):
    # On the simulator every launch goes through FakeCUDAKernel.__call__: record the
    # numba types of the arguments each launcher really passes (C-contiguous
    # float32 arrays, int32 indices, Python ints -> int64, np.float32 scalars ...)
    # and require kernels() -- what the PTX test compiles -- to list each of them.
    import collections

    import numba
    import numpy as np
    from numba.core import sigutils

    from nnbook.kernels import bias_act, conv2d, im2col, matmul, on_simulator, pool, sgd, softmax_xent
    if not on_simulator():
        pytest.skip("records launches through numba's CUDA simulator")
    from numba.cuda.simulator import kernel as sim

    seen = collections.defaultdict(set)
    call = sim.FakeCUDAKernel.__call__

    def record(self, *args):
        if not self._device and not sim._kernel_context:
            seen[(self.fn.__module__, self.fn.__qualname__)].add(tuple(numba.typeof(a) for a in args))
        return call(self, *args)

    monkeypatch.setattr(sim.FakeCUDAKernel, "__call__", record)
    rng = np.random.default_rng(0)
    for v in (1, 2, 3, 4, 5):
        matmul.check(v, 7, 9, 5)
    matmul.transpose(rng.uniform(-1, 1, (5, 7)).astype(np.float32))
    A = rng.uniform(0.1, 1, (5, 7)).astype(np.float32)
    for v in bias_act.VERSIONS:
        bias_act.check(v, 5, 7, act="sigmoid")
        bias_act.backward(A, A, act="sigmoid", version=v)
    z = rng.uniform(-1, 1, (6, 5)).astype(np.float32)
    for v in softmax_xent.VERSIONS:
        softmax_xent.check(v, 6, 5)                                     # int32 labels
        softmax_xent.forward_backward(z, np.arange(6) % 5, version=v)    # int64 labels (dense layer)
    for v in sgd.VERSIONS:
        sgd.check(v, 37)
        sgd.check(v, 37, momentum=0.9, nesterov=True, weight_decay=1e-4)
    for op, versions in (("forward", conv2d.FORWARD_VERSIONS), ("dgrad", conv2d.DGRAD_VERSIONS),
                         ("wgrad", conv2d.WGRAD_VERSIONS)):
        for v in versions:
            conv2d.check(op, v, (1, 2, 5, 4), 3, (3, 3), 1, 1, tile=conv2d.IGEMM_SMALL,
                         splits=1 if op == "wgrad" else None)
    conv2d.check("wgrad", 3, (1, 2, 5, 4), 3, (3, 3), 1, 1, tile=conv2d.IGEMM_SMALL, splits=2)
    for op in ("im2col", "col2im"):
        im2col.check(op, (1, 2, 5, 4), 3, (3, 3), 1, 1)
    for op in ("max", "avg"):
        pool.check(op, (1, 2, 4, 4), 2)

    listed = collections.defaultdict(set)
    for _, fn, sig in kernels():
        listed[(fn.__module__, fn.__qualname__)].add(tuple(sigutils.normalize_signature(sig)[0]))
    assert set(seen) == set(listed), (f"launched but not in kernels(): {sorted(set(seen) - set(listed))}; "
                                      f"in kernels() but never launched: {sorted(set(listed) - set(seen))}")
    wrong = {k: sorted(map(str, s - listed[k])) for k, s in seen.items() if s - listed[k]}
    assert not wrong, f"launch signatures kernels() does not compile: {wrong}"
