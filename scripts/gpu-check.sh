#!/usr/bin/env bash
# GPU machine check (no network, no -dev packages; cmake, ninja, nvcc, python3 present):
# builds imp, imp_cuda_tests and imp_bench_cuda_gemv into build-gpu/ (IMP_GPU_CHECK_ONLY: no CPU-only tests),
# runs the GPU tests and the GEMV benchmark, and prints a summary table LAST.
# Missing fmt / nlohmann / GoogleTest come from .gpu-deps/ (scripts/prepare-gpu-deps.sh;
# carry it with the run). Budget: about 2 min build on 16 cores + 1 min tests + 2 min bench
# (the bench runs 16 more GEMVs for the dp4a fallbacks; still well inside its timeout).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=build-gpu
OUT=${OUT:-$BUILD/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DIMP_GPU_CHECK_ONLY=ON -DIMP_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DIMP_EXTRA_INCLUDE="$PWD/.gpu-deps/include" -DIMP_GTEST_SOURCE_DIR="$PWD/.gpu-deps/googletest" \
  -DIMP_PCRE2_DIR="$PWD/.gpu-deps/pcre2" \
  > "$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log"; echo "CONFIGURE FAILED"; exit 1; }
timeout 420 ninja -C "$BUILD" -j16 imp imp_cuda_tests imp_bench_cuda_gemv > "$OUT/build.log" 2>&1 \
  || { grep -E "error|FAILED" "$OUT/build.log" | head -40; echo "BUILD FAILED"; exit 1; }

timeout 240 "$BUILD/tests/cuda/imp_cuda_tests" --gtest_output=json:"$OUT/tests.json" 2>&1 | tee "$OUT/tests.log" \
  | grep -E "^\[  (FAILED|SKIPPED|PASSED) |Failure|error|Expected|Which is|actual" | head -80
test_rc=${PIPESTATUS[0]}

timeout 240 "$BUILD/bench/imp_bench_cuda_gemv" --json "$OUT/gemv.json" 2>&1 | tee "$OUT/bench.log"
bench_rc=${PIPESTATUS[0]}

# CUDA forward pass end to end: the CudaForwardE2E tests ran above (tiny random llama and
# the demo model vs the CPU backend); here `imp bench --device cuda` on the demo model.
DEMO=${IMP_DEMO_MODEL:-$HOME/.cache/imp/models/SmolLM2-135M-Instruct.Q4_1.gguf}
fwd_rc=skipped
if [ -x "$BUILD/imp" ] && [ -f "$DEMO" ]; then
  timeout 240 "$BUILD/imp" bench -m "$DEMO" --device cuda -p 512 -n 128 --json > "$OUT/imp_bench_cuda.json" \
    2> "$OUT/imp_bench_cuda.log"
  fwd_rc=$?
  tail -5 "$OUT/imp_bench_cuda.log"
fi

python3 - "$OUT/tests.json" "$OUT/gemv.json" "$test_rc" "$bench_rc" "$OUT/imp_bench_cuda.json" "$fwd_rc" <<'PY'
import json, sys, collections
tests_path, bench_path, test_rc, bench_rc, fwd_path, fwd_rc = sys.argv[1:7]
print("\n================ GPU CHECK SUMMARY ================")
try:
    t = json.load(open(tests_path))
    n = p = f = s = 0
    failed = []
    for suite in t["testsuites"]:
        for c in suite["testsuite"]:
            n += 1
            if c.get("failures"):
                f += 1; failed.append(suite["name"] + "." + c["name"])
            elif c.get("result") == "SKIPPED" or c.get("status") == "NOTRUN":
                s += 1
            else:
                p += 1
    print(f"tests: {n} run, {p} passed, {f} failed, {s} skipped (exit {test_rc})")
    for name in failed: print("  FAILED", name)
except Exception as e:
    print(f"tests: no result ({e}); exit {test_rc}")
try:
    b = json.load(open(bench_path))
    print(f"device: {b['device']}, copy bandwidth {b['copy_bandwidth_gbps']:.0f} GB/s (read+write)")
    rows = collections.OrderedDict()
    shapes = []
    for r in b["results"]:
        shape = f"{r['rows']}x{r['cols']}"
        if shape not in shapes: shapes.append(shape)
        # One line per format and kernel: the dispatcher's choice, and for integer-dot
        # (dp4a) choices also the FP32-activation fallback the benchmark runs beside it.
        rows.setdefault(f"{r['format']} {r['kernel']}", {})[shape] = r
    print("GEMV fraction of copy bandwidth (µs; dp4a times include the x quantization)")
    print(f"{'format kernel':<36}" + "".join(f"{s:>20}" for s in shapes))
    for key, by_shape in rows.items():
        cells = "".join(f"{by_shape[s]['fraction_of_copy']:>11.3f} ({by_shape[s]['us']:>6.1f})" if s in by_shape else f"{'-':>20}" for s in shapes)
        print(f"{key:<36}{cells}")
    xq = [(f"{r['format']} {r['rows']}x{r['cols']}", r["xquant_us"]) for r in b["results"] if r.get("xquant_us", 0) > 0]
    if xq:
        print("x quantization alone (µs): " + ", ".join(f"{k} {v:.1f}" for k, v in xq))
except Exception as e:
    print(f"bench: no result ({e}); exit {bench_rc}")
if fwd_rc == "skipped":
    print("imp bench --device cuda: skipped (no imp binary in this build, or no demo model)")
else:
    try:
        f = json.load(open(fwd_path))
        print(f"imp bench --device cuda ({f['device']}): prompt {f['n_prompt']} tok {f['prompt_tokens_per_s']:.0f} tok/s, "
              f"decode {f['gen_tokens_per_s']:.0f} tok/s = {100 * f['fraction_of_ceiling']:.1f}% of the "
              f"{f['decode_ceiling_tokens_per_s']:.0f} tok/s ceiling ({f['bandwidth_bytes_per_s'] / 1e9:.0f} GB/s copy, "
              f"{f['bytes_per_token'] / 2**20:.1f} MiB/token)")
    except Exception as e:
        print(f"imp bench --device cuda: no result ({e}); exit {fwd_rc}")
PY
[ "$test_rc" = 0 ] && [ "$bench_rc" = 0 ] && { [ "$fwd_rc" = skipped ] || [ "$fwd_rc" = 0 ]; }
