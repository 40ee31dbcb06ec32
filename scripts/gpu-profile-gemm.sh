#!/usr/bin/env bash
# Why the fused-dequantization prefill GEMM (gemm_dequant_sm90a.cu) runs below the tensor
# rate, on the GPU machine: Nsight Compute on build-gpu/bench/imp_bench_cuda_gemm (built by
# scripts/gpu-check.sh), one gemm_dequant_kernel launch per format in IMP_PROFILE_FORMATS
# (default "q4_0 q8_0"; the first shape of the bench, 4096×4096, 512 tokens), caches flushed
# between passes, clocks not locked. Prints per launch: duration, tensor-pipe and issue
# activity (% of peak), L2 and shared-memory throughput, registers, and where warps stall
# (cycles per issued instruction, by reason).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=build-gpu
OUT=${OUT:-$BUILD/out}
mkdir -p "$OUT"
BENCH="$BUILD/bench/imp_bench_cuda_gemm"
[ -x "$BENCH" ] || { echo "build $BENCH first (scripts/gpu-check.sh)"; exit 1; }
command -v ncu > /dev/null || { echo "ncu not found"; exit 1; }
S=smsp__average_warps_issue_stalled
metrics="gpu__time_duration.sum,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,\
sm__inst_issued.avg.pct_of_peak_sustained_active,lts__throughput.avg.pct_of_peak_sustained_elapsed,\
l1tex__data_pipe_lsu_wavefronts_mem_shared.sum,sm__warps_active.avg.pct_of_peak_sustained_active,\
launch__registers_per_thread,smsp__inst_executed.sum,\
${S}_long_scoreboard_per_issue_active.ratio,${S}_barrier_per_issue_active.ratio,\
${S}_short_scoreboard_per_issue_active.ratio,${S}_wait_per_issue_active.ratio,\
${S}_math_pipe_throttle_per_issue_active.ratio,${S}_mio_throttle_per_issue_active.ratio,\
${S}_lg_throttle_per_issue_active.ratio,${S}_no_instruction_per_issue_active.ratio,\
${S}_selected_per_issue_active.ratio,${S}_not_selected_per_issue_active.ratio,${S}_dispatch_stall_per_issue_active.ratio,\
${S}_membar_per_issue_active.ratio,${S}_sleeping_per_issue_active.ratio,${S}_misc_per_issue_active.ratio"
for f in ${IMP_PROFILE_FORMATS:-q4_0 q8_0}; do
  IMP_CUDA_PDL=0 ncu --clock-control none --cache-control all -k "regex:gemm_dequant_kernel" --launch-skip 4 --launch-count 1 \
    --metrics "$metrics" --csv "$BENCH" --formats "$f" --tokens 512 --runs 1 > "$OUT/ncu-gemm-$f.csv" 2> "$OUT/ncu-gemm-$f.err"
  python3 - "$OUT/ncu-gemm-$f.csv" "$f" <<'PY'
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 5]
if len(rows) < 2:
    print(sys.argv[2], "no ncu rows"); sys.exit(0)
hdr = rows[0]; data = rows[1:]
mi, vi = hdr.index("Metric Name"), hdr.index("Metric Value")
m = {r[mi]: r[vi].replace(",", "") for r in data}
g = lambda k: float(m.get(k, "nan"))
S = "smsp__average_warps_issue_stalled_"
stalls = {k[len(S):].replace("_per_issue_active.ratio", ""): g(k) for k in m if k.startswith(S)}
top = sorted(stalls.items(), key=lambda kv: -kv[1])[:6]
print(f"{sys.argv[2]:<6} {g('gpu__time_duration.sum')/1e3:7.1f} us  tensor {g('sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active'):5.1f}%  "
      f"issue {g('sm__inst_issued.avg.pct_of_peak_sustained_active'):5.1f}%  L2 {g('lts__throughput.avg.pct_of_peak_sustained_elapsed'):5.1f}%  "
      f"smem wavefronts {g('l1tex__data_pipe_lsu_wavefronts_mem_shared.sum')/1e6:6.2f} M  warps {g('sm__warps_active.avg.pct_of_peak_sustained_active'):5.1f}%  "
      f"regs {g('launch__registers_per_thread'):.0f}  instructions {g('smsp__inst_executed.sum')/1e6:6.2f} M")
print("       stalls (cycles per issue): " + "  ".join(f"{k} {v:.2f}" for k, v in top))
PY
done
