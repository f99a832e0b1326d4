#!/usr/bin/env bash
# The GPU suite in one command (benchmarks/gpu_suite.py says what it checks). On a CUDA machine:
#   benchmarks/gpu_suite.sh                 Llama-3.2-3B-shaped random model, NF4 on cuda:0
#   benchmarks/gpu_suite.sh --shape tiny    the same suite end to end on CPU in about 2 minutes
# Uses .venv/bin/python when it exists (make install), else python3. On a bare GPU image without
# network, the packages it lacks come from gpu-wheels/ (benchmarks/gpu_wheels.sh, run beforehand where
# PyPI is reachable), installed offline into .gpu-packages/. Results in benchmarks/results/.
# GPU_WHEELS / GPU_PACKAGES move those two folders; GPU_SUITE_INSTALL=1 installs the carried wheels
# even where the packages import already (the tests: the suite then runs on the carried builds).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
WHEELS="${GPU_WHEELS:-$PWD/gpu-wheels}"
PACKAGES="${GPU_PACKAGES:-$PWD/.gpu-packages}"
export PATH="$(dirname "$(command -v "$PY")"):$PATH"
export PYTHONPATH="$PWD/src:$PACKAGES${PYTHONPATH:+:$PYTHONPATH}"
if [ "${GPU_SUITE_INSTALL:-0}" = 1 ] || ! "$PY" -c "import pydantic, bitsandbytes, datasets" 2>/dev/null; then
  if ! ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    echo "gpu_suite: pydantic, bitsandbytes or datasets missing and no wheels in $WHEELS (run benchmarks/gpu_wheels.sh where PyPI is reachable)" >&2
    exit 2
  fi
  "$PY" -m pip install --quiet --no-index --no-deps --upgrade --target "$PACKAGES" "$WHEELS"/*.whl
  # the carried wheels against the image's own packages (benchmarks/gpu-image.txt lists what is unverified)
  "$PY" -c "import pydantic, bitsandbytes, datasets" || { echo "gpu_suite: a carried wheel does not work with the image (above)" >&2; exit 2; }
fi
exec "$PY" benchmarks/gpu_suite.py "$@"
