#!/usr/bin/env bash
# Create .venv with convscope installed (editable). Pass --test to add the test tools:
# pytest, ruff (the linter), httpx2 (Starlette's test client), torch 2.13.0 (CPU, a test-only
# reference), Playwright (the browser tests), hypothesis (the fuzz suite, tests/fuzz), onnx with
# onnxruntime (the ONNX export tests; onnx is also the `convscope[onnx]` extra), and mpi4py with
# the mpich wheel (the `convscope[mpi]` extra: the data-parallel tests run `mpiexec -n 2`).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e .
if [ "${1:-}" = "--test" ]; then
  .venv/bin/python -m pip install -q pytest playwright ruff==0.17.6 httpx2 hypothesis
  # ONNX export is checked by running the exported graphs in onnxruntime (1.32 reads opset 18 / IR 8)
  .venv/bin/python -m pip install -q onnx onnxruntime \
    || echo "note: onnx/onnxruntime could not be installed; the ONNX export tests will skip"
  .venv/bin/python -m pip install -q mpi4py mpich \
    || echo "note: mpi4py/mpich could not be installed; the MPI tests will skip"
  # torch is only an extra oracle for the tests; they skip its comparisons without it
  .venv/bin/python -m pip install -q torch==2.13.0 \
    || echo "note: torch==2.13.0 could not be installed; the PyTorch comparison tests will skip"
fi
