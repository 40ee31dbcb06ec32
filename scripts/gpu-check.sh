#!/usr/bin/env bash
# GPU machine check (no network, no -dev packages; cmake, ninja, nvcc, python3 present):
# builds imp, imp_cuda_tests and imp_bench_cuda_gemv into build-gpu/ (IMP_GPU_CHECK_ONLY: no CPU-only tests),
# runs the GPU tests and the GEMV benchmark, prints a summary table, and LAST the issue's
# speed targets met or not in this run (scripts/gpu_targets.py).
# Missing fmt / nlohmann / GoogleTest come from .gpu-deps/ (scripts/prepare-gpu-deps.sh;
# carry it with the run). Budget: about 2 min build on 16 cores + 1 min tests + 2 min bench
# (the bench runs 16 more GEMVs for the dp4a fallbacks; still well inside its timeout).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-build.sh  # BUILD=build-gpu, OUT (default $BUILD/out), gpu_build
rm -f "$OUT"/trace-*.txt "$OUT/attention.log"  # printed at the end: this run's only
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

gpu_build check imp imp_cuda_tests imp_bench_cuda_gemv imp_bench_cuda_attention imp_bench_cuda_gemm || exit 1

# IMP_GPU_SKIP="tests gemv attn gemm": a second call on a warm machine (build-gpu/ kept) that only
# benchmarks more models (IMP_GPU_MODELS="preset:type …").
SKIP=" ${IMP_GPU_SKIP:-} "
test_rc=0; bench_rc=0
if [[ "$SKIP" != *" tests "* ]]; then
# The demo model, if its halves were carried (scripts/gpu-stage-demo.sh); else its test skips.
[ -d .gpu-demo ] && { bash scripts/gpu-stage-demo.sh join || true; }
timeout 240 "$BUILD/tests/cuda/imp_cuda_tests" --gtest_output=json:"$OUT/tests.json" 2>&1 | tee "$OUT/tests.log" \
  | grep -E "^\[  (FAILED|SKIPPED|PASSED) |Failure|error|exception|Expected|Which is|actual" | head -80
test_rc=${PIPESTATUS[0]}
fi

if [[ "$SKIP" != *" gemv "* ]]; then
# IMP_GPU_GEMV_FORMATS=q4_0,nvfp4_ckpt,… limits the benchmark to some formats.
# IMP_CUDA_PDL=0: each GEMV measured alone, not overlapped with the next (pdl.cuh).
IMP_CUDA_PDL=0 timeout 240 "$BUILD/bench/imp_bench_cuda_gemv" --json "$OUT/gemv.json" ${IMP_GPU_GEMV_FORMATS:+--formats "$IMP_GPU_GEMV_FORMATS"} 2>&1 | tee "$OUT/bench.log"
bench_rc=${PIPESTATUS[0]}
fi

# Decode attention alone (generic and typed kernels; IMP_GPU_SKIP="attn" leaves it out).
attn_rc=0
if [[ "$SKIP" != *" attn "* ]]; then
timeout 120 "$BUILD/bench/imp_bench_cuda_attention" ${IMP_GPU_ATTN_ARGS:-} > "$OUT/attention.log" 2>&1
attn_rc=$?
fi

# Prefill GEMMs of the quantized tiers, each way (bf16 / dequantize + cuBLAS / fused wgmma);
# IMP_GPU_SKIP="gemm" leaves it out, IMP_GPU_GEMM_ARGS passes options (--tokens, --formats).
gemm_rc=0
rm -f "$OUT/gemm.log"
if [[ "$SKIP" != *" gemm "* ]]; then
timeout 180 "$BUILD/bench/imp_bench_cuda_gemm" ${IMP_GPU_GEMM_ARGS:-} > "$OUT/gemm.log" 2>&1
gemm_rc=$?
fi

# CUDA forward pass end to end: the CudaForwardE2E tests ran above (tiny random llama vs
# the CPU backend); here `imp bench --device cuda` on synthetic models with real shapes
# (`imp synth`: the GPU machine has no network and no model files), one JSON per model.
SYNTH=$BUILD/synth
mkdir -p "$SYNTH"
fwd_rc=0
for spec in ${IMP_GPU_MODELS:-llama3.2-1b:q4_0 llama3.1-8b:q4_0 llama3.1-8b:q4_k_m llama3.1-8b:q8_0 llama3.1-8b:nvfp4 llama3.1-8b:fp8 llama3.1-8b:bf16}; do
  # preset:type, or preset:type:dc for the NVFP4 decode cache and lm_head
  # (--decode-cache nvfp4 --nvfp4-lm-head).
  preset=${spec%%:*}; rest=${spec#*:}; type=${rest%%:*}; extra=(); tag=""
  if [ "$rest" != "$type" ]; then extra=(--decode-cache nvfp4 --nvfp4-lm-head); tag="-${rest#*:}"; fi
  # nvfp4 / fp8: a ModelOpt-layout safetensors folder; GGUF types: one file.
  case "$type" in nvfp4|fp8*) f="$SYNTH/$preset-$type" ;; *) f="$SYNTH/$preset-$type.gguf" ;; esac
  [ -f "$f" ] || timeout 150 "$BUILD/imp" synth --preset "$preset" --type "$type" -o "$f" -q > "$OUT/synth-$preset-$type.log" 2>&1 \
    || { echo "synth $spec failed"; tail -3 "$OUT/synth-$preset-$type.log"; fwd_rc=1; continue; }
  timeout 150 "$BUILD/imp" bench -m "$f" --device cuda -p 512 -n 128 "${extra[@]}" --json > "$OUT/fwd-$preset-$type$tag.json" \
    2> "$OUT/fwd-$preset-$type$tag.log" || { echo "imp bench $spec failed"; tail -5 "$OUT/fwd-$preset-$type$tag.log"; fwd_rc=1; }
  # IMP_GPU_TRACE=1: the same bench once more with the decode step traced kernel by kernel
  # (CUPTI; printed after the summary). A second run, so the numbers above are untraced.
  if [ "${IMP_GPU_TRACE:-0}" = 1 ]; then
    timeout 150 "$BUILD/imp" bench -m "$f" --device cuda -p 512 -n 32 "${extra[@]}" --trace-kernels 20 \
      > "$OUT/trace-$preset-$type$tag.txt" 2>&1 || { echo "trace $spec failed"; tail -5 "$OUT/trace-$preset-$type$tag.txt"; }
  fi
  rm -rf "$f"  # disk: an 8B BF16 file is 16 GB
done

python3 - "$OUT/tests.json" "$OUT/gemv.json" "$test_rc" "$bench_rc" "$OUT" "$fwd_rc" <<'PY'
import json, sys, collections, glob, os
tests_path, bench_path, test_rc, bench_rc, out_dir, fwd_rc = sys.argv[1:7]
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
        # One line per format and kernel: the backend's default choice, and for the formats
        # with a tensor-core kernel also the FP32-activation kernel it replaces.
        rows.setdefault(f"{r['format']} {r['kernel']}", {})[shape] = r
    print("GEMV fraction of copy bandwidth (µs), each alone / in a PDL stream; *_mma kernels round x to f16, *_dp4a to int8")
    print(f"{'format kernel':<36}" + "".join(f"{s:>26}" for s in shapes))
    for key, by_shape in rows.items():
        cells = "".join(f"{by_shape[s]['fraction_of_copy']:>9.3f}/{by_shape[s].get('fraction_of_copy_pdl', 0):.3f} ({by_shape[s]['us']:>6.1f})"
                        if s in by_shape else f"{'-':>26}" for s in shapes)
        print(f"{key:<36}{cells}")
    xq = [(f"{r['format']} {r['rows']}x{r['cols']}", r["xquant_us"]) for r in b["results"] if r.get("xquant_us", 0) > 0]
    if xq:
        print("x quantization alone (µs): " + ", ".join(f"{k} {v:.1f}" for k, v in xq))
except Exception as e:
    print(f"bench: no result ({e}); exit {bench_rc}")
print("imp bench --device cuda (synthetic models; -p 512 -n 128; ceiling = copy bandwidth / bytes read per token;")
print("  prefill TFLOP/s = 2 x linear weights x tokens / prefill s, as a fraction of the bf16 and fp8 matrix rates")
print("  measured in the same run: cuBLASLt 8192^3)")
print(f"{'model':<24}{'MiB/token':>10}{'prefill tok/s':>15}{'TFLOP/s':>9}{'/bf16':>7}{'/fp8':>7}"
      f"{'decode tok/s':>14}{'ceiling':>9}{'fraction':>10}")
for path in sorted(glob.glob(os.path.join(out_dir, "fwd-*.json"))):
    name = os.path.basename(path)[4:-5]
    try:
        f = json.load(open(path))
        print(f"{name:<24}{f['bytes_per_token'] / 2**20:>10.1f}{f['prompt_tokens_per_s']:>15.0f}"
              f"{f.get('prefill_tflops', 0):>9.1f}{f.get('prefill_fraction_of_bf16_rate', 0):>7.3f}"
              f"{f.get('prefill_fraction_of_fp8_rate', 0):>7.3f}{f['gen_tokens_per_s']:>14.1f}"
              f"{f['decode_ceiling_tokens_per_s']:>9.0f}{f['fraction_of_ceiling']:>10.3f}")
        if "bf16_matrix_tflops" in f:
            print(f"{'':<24}matrix rates this run: bf16 {f['bf16_matrix_tflops']:.0f}, fp8 {f['fp8_matrix_tflops']:.0f} TFLOP/s")
        if f.get("backend_stats"): print(f"{'':<24}{f['backend_stats']}")
        if "load_seconds" in f: print(f"{'':<24}load {f['load_seconds']:.2f} s (open, plan, convert, upload, KV cache)")
        if f.get("decode_step_gpu_seconds", 0) > 0:
            print(f"{'':<24}decode step on the device alone {f['decode_step_gpu_seconds'] * 1e3:.3f} ms "
                  f"(of {1e3 / f['gen_tokens_per_s']:.3f} ms per token): {f['decode_gpu_fraction_of_ceiling']:.3f} of the ceiling")
    except Exception as e:
        print(f"{name:<24} no result ({e})")
PY
[ -f "$OUT/attention.log" ] && { echo; cat "$OUT/attention.log"; echo "(attention bench exit $attn_rc)"; }
[ -f "$OUT/gemm.log" ] && { echo; cat "$OUT/gemm.log"; echo "(gemm bench exit $gemm_rc)"; }
for t in "$OUT"/trace-*.txt; do
  [ -f "$t" ] || continue
  echo; echo "== $(basename "$t" .txt)"; sed -n '/^decode step, kernel by kernel/,$p' "$t"
done
# The issue's speed targets against this run (decode, prefill, GEMV, load), the last table.
python3 scripts/gpu_targets.py "$OUT"
[ "$test_rc" = 0 ] && [ "$bench_rc" = 0 ] && [ "$fwd_rc" = 0 ]
