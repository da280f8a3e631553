#!/usr/bin/env bash
# README command 2: install what is missing, build with warnings as errors,
# and run the whole test suite. Ends with CTest's summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
build=${RW_BUILD_DIR:-build-test}
cmake -S . -B "$build" -DRW_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo ${RW_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure
