#!/usr/bin/env bash
# Download benchmarks/gpu-wheels.txt for the GPU image (Python 3.12, manylinux x86_64) into
# gpu-wheels/, which travels with the tree (≤ 48 MiB) and which benchmarks/gpu_suite.sh installs
# from, offline, when the image lacks them. Run on a machine that reaches PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf gpu-wheels && mkdir gpu-wheels
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -r benchmarks/gpu-wheels.txt -d gpu-wheels
size=$(du -sm gpu-wheels | cut -f1)
echo "gpu-wheels/: $(ls gpu-wheels | wc -l) wheels, ${size} MiB"
[ "$size" -le 48 ] || { echo "over the 48 MiB that travel with the tree" >&2; exit 1; }
