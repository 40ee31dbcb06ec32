#!/usr/bin/env bash
# A/B of GEMV kernels on the GPU machine, same build, same run: after scripts/gpu-check.sh
# (build-gpu/ and build-gpu/out/gemv.json present), runs the GEMV benchmark again with
# IMP_GEMV_DISABLE (comma-separated kernel names, IMP_CUDA_DISABLE_KERNELS syntax) and prints
# both fractions of copy bandwidth per format and shape: chosen kernel now / with those off.
#   IMP_GEMV_DISABLE=q4_0_mma_bulk,q8_0_mma_bulk bash scripts/gpu-gemv-compare.sh
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=build-gpu
OUT=${OUT:-$BUILD/out}
IMP_CUDA_DISABLE_KERNELS="${IMP_GEMV_DISABLE:?kernel names}" IMP_CUDA_PDL=0 timeout 240 "$BUILD/bench/imp_bench_cuda_gemv" \
  --json "$OUT/gemv-alt.json" ${IMP_GPU_GEMV_FORMATS:+--formats "$IMP_GPU_GEMV_FORMATS"} > "$OUT/bench-alt.log" 2>&1
python3 - "$OUT/gemv.json" "$OUT/gemv-alt.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
def index(j):
    return {(r["format"], f"{r['rows']}x{r['cols']}"): r for r in j["results"] if "_mma" in r["kernel"]}
ia, ib = index(a), index(b)
print(f"copy bandwidth {a['copy_bandwidth_gbps']:.0f} / {b['copy_bandwidth_gbps']:.0f} GB/s; fraction alone (PDL stream)")
for k in sorted(ia):
    if k in ib:
        x, y = ia[k], ib[k]
        print(f"{k[0]:<18}{k[1]:>13}  {x['kernel']:<28}{x['fraction_of_copy']:.3f} ({x.get('fraction_of_copy_pdl', 0):.3f})"
              f"   {y['kernel']:<28}{y['fraction_of_copy']:.3f} ({y.get('fraction_of_copy_pdl', 0):.3f})")
PY
