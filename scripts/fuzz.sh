#!/usr/bin/env bash
# Bounded fuzzing: builds every libFuzzer target (tests/fuzz/fuzz_*.cc) with clang, ASan and
# UBSan in build-fuzz/, then runs each for FUZZ_SECONDS (default 60) starting from its seed
# corpus tests/fuzz/corpus/<name>/ (new inputs go to build-fuzz/corpus/<name>/, crashes to
# build-fuzz/artifacts/). Exits non-zero on the first crash, leak or timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
jobs="${FUZZ_BUILD_JOBS:-2}"
build=build-fuzz
mkdir -p "$build"

cmake -S . -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMP_BUILD_FUZZ=ON -DIMP_BUILD_TESTS=OFF -DIMP_BUILD_BENCH=OFF \
  -DIMP_CUDA=OFF > "$build/configure.log" || { cat "$build/configure.log"; exit 1; }
targets=()
for src in tests/fuzz/fuzz_*.cc; do targets+=("$(basename "$src" .cc)"); done
ninja -C "$build" -j "$jobs" "${targets[@]}"

mkdir -p "$build/artifacts"
for t in "${targets[@]}"; do
  name="${t#fuzz_}"
  mkdir -p "$build/corpus/$name"
  seeds=()
  [ -d "tests/fuzz/corpus/$name" ] && seeds+=("tests/fuzz/corpus/$name")
  echo "== $t: ${seconds}s"
  "$build/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$name-" "$build/corpus/$name" "${seeds[@]}"
done
