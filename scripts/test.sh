#!/usr/bin/env bash
# Set up the test environment (idempotent) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
# one BLAS thread: the suite is many small products, and OpenBLAS threads busy-waiting
# beside torch's OpenMP threads slow it down many times over on 2 cores
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
exec .venv/bin/python -m pytest "$@"
