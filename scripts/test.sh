#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs what it needs, builds, and runs
# every test through ctest (GoogleTest unit tests, pytest reference tests, bounded fuzzing).
# GPU tests are built when nvcc is present and skip themselves when no GPU is visible.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/fetch-models.sh
bash scripts/build.sh
cd "${IMP_BUILD_DIR:-build}"
ctest --output-on-failure --timeout 1500 -j 2
