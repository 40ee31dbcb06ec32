#!/usr/bin/env bash
# Compares build-time variants of the tensor-core GEMV (gemv_mma.cu) on the GPU machine:
# for each variant in IMP_VARIANTS (space-separated; each a comma list of NAME=VALUE for the
# IMP_MMA_* macros, e.g. "TALL_KU=2,SMALL_KU=4" or "BULK_WARPS=8"), rebuilds imp_bench_cuda_gemv in build-gpu/
# with those -D flags and prints the fraction of copy bandwidth per format and 8B shape.
# Run after scripts/gpu-check.sh on a warm machine (build-gpu/ configured); the last
# variant built is left in build-gpu/, so the script ends by rebuilding the defaults.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=build-gpu
OUT=${OUT:-$BUILD/out}
mkdir -p "$OUT"
FORMATS=${IMP_GPU_GEMV_FORMATS:-q4_0,nvfp4_ckpt,q8_0,q4_k}
run_variant() {
  local name=$1 flags=""
  IFS=, read -ra kv <<< "$name"
  for x in "${kv[@]}"; do
    [ -z "$x" ] && continue
    # A misspelt knob would silently build the defaults: refuse names no kernel source uses.
    grep -rqw "IMP_MMA_${x%%=*}" src/backends/cuda || { echo "no knob IMP_MMA_${x%%=*} in src/backends/cuda"; return 1; }
    flags+=" -DIMP_MMA_${x}"
  done
  cmake -B "$BUILD" -DCMAKE_CUDA_FLAGS="$flags" > /dev/null 2>&1 || { echo "configure failed for $name"; return 1; }
  ninja -C "$BUILD" -j16 imp_bench_cuda_gemv > "$OUT/variant-build.log" 2>&1 || { grep error "$OUT/variant-build.log" | head; return 1; }
  # IMP_VARIANT_TESTS=1: the GEMV tests against the CPU reference, on this variant too.
  if [ "${IMP_VARIANT_TESTS:-0}" = 1 ]; then
    ninja -C "$BUILD" -j16 imp_cuda_tests > "$OUT/variant-build.log" 2>&1 || { grep error "$OUT/variant-build.log" | head; return 1; }
    "$BUILD/tests/cuda/imp_cuda_tests" --gtest_filter='*Gemv*:*Forward*:*Gemm*' > "$OUT/variant-tests.log" 2>&1
    echo "${name:-default} tests: $(grep -E '^\[  (PASSED|FAILED)  \] [0-9]+ test' "$OUT/variant-tests.log" | tr '\n' ' ')"
    grep -E '^\[  FAILED  \] [A-Z]' "$OUT/variant-tests.log" | head -5
  fi
  IMP_CUDA_PDL=0 "$BUILD/bench/imp_bench_cuda_gemv" --formats "$FORMATS" --json "$OUT/variant.json" > /dev/null 2>&1 || { echo "bench failed for $name"; return 1; }
  # IMP_VARIANT_PROFILE=1: Nsight Compute on this variant (scripts/gpu-profile-gemv.sh).
  [ "${IMP_VARIANT_PROFILE:-0}" = 1 ] && IMP_PROFILE_TAG="${name:-default}" bash scripts/gpu-profile-gemv.sh
  python3 - "$OUT/variant.json" "${name:-default}" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
cells = {}
for r in b["results"]:
    if "_mma" not in r["kernel"]: continue
    cells.setdefault(r["format"], []).append(f"{r['rows']}x{r['cols']} {r['fraction_of_copy']:.3f}/{r.get('fraction_of_copy_pdl', 0):.3f}")
for f, c in cells.items(): print(f"{sys.argv[2]:<28} {f:<12} " + "  ".join(c))
PY
}
for v in ${IMP_VARIANTS:-""}; do run_variant "$v"; done
run_variant ""
