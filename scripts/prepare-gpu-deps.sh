#!/usr/bin/env bash
# Copies the header-only dependencies and the GoogleTest source tree from this (Debian)
# machine into .gpu-deps/ (gitignored), to be carried to the GPU machine, which has no
# -dev packages and no network:
#   /usr/include/fmt       → .gpu-deps/include/fmt        (used with FMT_HEADER_ONLY)
#   /usr/include/nlohmann  → .gpu-deps/include/nlohmann
#   /usr/src/googletest    → .gpu-deps/googletest         (built from source there; gmock off)
#   /usr/include/CLI       → .gpu-deps/include/CLI        (CLI11, header-only: the imp binary)
#   pcre2.h, libpcre2-8.a  → .gpu-deps/pcre2/{include,lib} (static: the tokenizers' regexes)
# (/usr/include/gtest is not needed: the source tree carries its own headers.)
# scripts/gpu-check.sh uses them only when the packages are not installed there.
set -euo pipefail
cd "$(dirname "$0")/.."
PCRE2_LIB=/usr/lib/x86_64-linux-gnu/libpcre2-8.a
for p in /usr/include/fmt/format.h /usr/include/nlohmann/json.hpp /usr/src/googletest/CMakeLists.txt \
         /usr/include/CLI/CLI.hpp /usr/include/pcre2.h "$PCRE2_LIB"; do
  [ -e "$p" ] || { echo "missing $p (apt-get install libfmt-dev nlohmann-json3-dev googletest libcli11-dev libpcre2-dev)" >&2; exit 1; }
done
rm -rf .gpu-deps
mkdir -p .gpu-deps/include
cp -r /usr/include/fmt /usr/include/nlohmann /usr/include/CLI .gpu-deps/include/
mkdir -p .gpu-deps/pcre2/include .gpu-deps/pcre2/lib
cp /usr/include/pcre2.h .gpu-deps/pcre2/include/
cp "$PCRE2_LIB" .gpu-deps/pcre2/lib/
cp -r /usr/src/googletest .gpu-deps/googletest
du -sh .gpu-deps
