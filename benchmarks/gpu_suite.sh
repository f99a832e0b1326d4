#!/usr/bin/env bash
# The GPU suite in one command (benchmarks/gpu_suite.py says what it checks). On a CUDA machine:
#   benchmarks/gpu_suite.sh                 Llama-3.2-3B-shaped random model, NF4 on cuda:0 (≤ 8 min)
#   benchmarks/gpu_suite.sh --shape tiny    the same suite end to end on CPU in about 2 minutes
# Uses .venv/bin/python when it exists (make install), else python3; results in benchmarks/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
export PATH="$(dirname "$(command -v "$PY")"):$PATH"
exec "$PY" benchmarks/gpu_suite.py "$@"
