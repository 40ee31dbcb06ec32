#!/usr/bin/env bash
# Copies the header-only dependencies and the GoogleTest source tree from this (Debian)
# machine into .gpu-deps/ (gitignored), to be carried to the GPU machine, which has no
# -dev packages and no network:
#   /usr/include/fmt       → .gpu-deps/include/fmt        (used with FMT_HEADER_ONLY)
#   /usr/include/nlohmann  → .gpu-deps/include/nlohmann
#   /usr/src/googletest    → .gpu-deps/googletest         (built from source there; gmock off)
# (/usr/include/gtest is not needed: the source tree carries its own headers.)
# scripts/gpu-check.sh uses them only when the packages are not installed there.
set -euo pipefail
cd "$(dirname "$0")/.."
for p in /usr/include/fmt/format.h /usr/include/nlohmann/json.hpp /usr/src/googletest/CMakeLists.txt; do
  [ -e "$p" ] || { echo "missing $p (apt-get install libfmt-dev nlohmann-json3-dev googletest)" >&2; exit 1; }
done
rm -rf .gpu-deps
mkdir -p .gpu-deps/include
cp -r /usr/include/fmt /usr/include/nlohmann .gpu-deps/include/
cp -r /usr/src/googletest .gpu-deps/googletest
du -sh .gpu-deps
