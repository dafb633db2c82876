#!/usr/bin/env bash
# Everything nnbook checks and measures on a CUDA GPU, in one command.
#
#   bash benchmarks/gpu_session.sh [OUT_DIR]        (from the repository root)
#
# Meant for a short lease of a GPU machine with no network: it needs Python with
# NumPy, CuPy, numba-cuda, pytest (+ pytest-xdist, hypothesis) and, for the
# PyTorch CUDA comparison, torch; nnbook itself is used from this checkout
# (PYTHONPATH), not installed.  Wheels missing there (the cuDNN frontend,
# `nvidia-cudnn-frontend`, for `bench cudnn`) can be put in .whl/ beforehand;
# they are installed from there without a network.  MNIST is not needed.
# For a Python 3.12 machine, e.g. (1.16.0 needs no other wheel; 1.32 pulls in
# nvidia-cutlass-dsl and apache-tvm-ffi):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --platform manylinux_2_28_x86_64 -d .whl nvidia-cudnn-frontend==1.16.0
#
# Steps, each with its own time limit, each logged to OUT_DIR/<step>.txt:
#   doctor       nvidia-smi and `python -m nnbook doctor`
#   pytest       the GPU tests: CPU/GPU parity of the package on CuPy, every kernel
#                version at full size, the cuDNN comparison's checks
#   bench_gpu    `python -m nnbook bench gpu`   -> OUT_DIR/gpu_dense.json
#   bench_cudnn  `python -m nnbook bench cudnn` -> OUT_DIR/cudnn.json
#   nccl         data parallelism through NCCL (tests/test_distributed.py -k nccl):
#                one GPU, and two if there are two; needs mpi4py + an mpiexec
#                (pip install "nnbook[mpi]"), else the tests say they were skipped
# A failing step does not stop the later ones; the exit status is 1 if any failed.
#
# Afterwards, on the development machine: copy the two JSON files to
# nnbook/results/, re-execute book/part1/gpu.ipynb, book/part1/cudnn.ipynb and
# book/appendix/performance.ipynb, and read the targets off them.
set -u -o pipefail

out=${1:-${OUT:-gpu_out}}
mkdir -p "$out"
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 CUPY_TF32=0
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if compgen -G ".whl/*.whl" > /dev/null; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/nnbook-site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/nnbook-site"
fi

status=0
step() {   # step NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit} s): $*"
    local t0=$SECONDS
    timeout "$limit" "$@" > "$out/$name.txt" 2>&1
    local rc=$?
    tail -n 30 "$out/$name.txt"
    echo "== $name: exit $rc after $((SECONDS - t0)) s"
    [ "$rc" -eq 0 ] || status=1
}

step doctor 60 bash -c "nvidia-smi; \"$py\" -m nnbook doctor"
step pytest 200 "$py" -m pytest -q -p no:cacheprovider -n 8 \
    tests/test_gpu_backend.py tests/test_kernels_dense.py tests/test_kernels_conv.py \
    tests/test_cudnn_results.py
step bench_gpu 150 "$py" -m nnbook bench gpu --out "$out/gpu_dense.json"
step bench_cudnn 150 "$py" -m nnbook bench cudnn --out "$out/cudnn.json"
step nccl 120 "$py" -m pytest -q -p no:cacheprovider -rs tests/test_distributed.py -k nccl
exit $status
