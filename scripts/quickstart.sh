#!/usr/bin/env bash
# README command 1: install what is missing, build, and run the main job on
# the built-in synthetic data. Results land in ./quickstart-out.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
echo "built: $(build/rewire --version | head -1); OpenBLAS kernel $(build/rewire --version --json | sed -n 's/.*"openblas_core": "\(.*\)".*/\1/p')"
exec build/rewire run --out quickstart-out "$@"
