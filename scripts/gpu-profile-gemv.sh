#!/usr/bin/env bash
# Why a decode GEMV runs below the bandwidth ceiling, on the GPU machine: Nsight Compute
# on build-gpu/bench/imp_bench_cuda_gemv (built by scripts/gpu-check.sh or
# gpu-gemv-variants.sh), one launch per format:shape in IMP_PROFILE_GEMV (default
# "q4_0:14336x4096 q4_0:4096x4096"), the kernel the backend picks (matched by
# IMP_PROFILE_KERNEL, default "_mma"), caches flushed between passes, clocks not locked.
# Prints per launch: duration, DRAM throughput (% of peak), achieved occupancy, registers,
# waves, and where warps stall (cycles per issued instruction, by reason).
# IMP_PROFILE_SOURCE=1: also PC-sampled stalls per SASS instruction (ncu SourceCounters):
# the 24 instructions with the most samples, with their reasons, and the share of samples
# per opcode — which instruction of the loop the warps wait at, not only why.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=build-gpu
OUT=${OUT:-$BUILD/out}
mkdir -p "$OUT"
BENCH="$BUILD/bench/imp_bench_cuda_gemv"
[ -x "$BENCH" ] || { echo "build $BENCH first (scripts/gpu-check.sh)"; exit 1; }
command -v ncu > /dev/null || { echo "ncu not found"; exit 1; }
S=smsp__average_warps_issue_stalled
metrics="gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,dram__bytes_read.sum,\
lts__t_bytes.sum,sm__warps_active.avg.pct_of_peak_sustained_active,launch__registers_per_thread,\
launch__waves_per_multiprocessor,launch__occupancy_limit_registers,launch__occupancy_limit_shared_mem,\
${S}_long_scoreboard_per_issue_active.ratio,${S}_barrier_per_issue_active.ratio,\
${S}_short_scoreboard_per_issue_active.ratio,${S}_wait_per_issue_active.ratio,\
${S}_math_pipe_throttle_per_issue_active.ratio,${S}_mio_throttle_per_issue_active.ratio,\
${S}_lg_throttle_per_issue_active.ratio,${S}_no_instruction_per_issue_active.ratio,\
${S}_selected_per_issue_active.ratio,${S}_not_selected_per_issue_active.ratio,${S}_dispatch_stall_per_issue_active.ratio,\
${S}_membar_per_issue_active.ratio,${S}_sleeping_per_issue_active.ratio"
for spec in ${IMP_PROFILE_GEMV:-q4_0:14336x4096 q4_0:4096x4096}; do
  f=${spec%%:*}; shape=${spec#*:}
  ncu --clock-control none --cache-control all -k "regex:${IMP_PROFILE_KERNEL:-_mma}" --launch-skip 30 --launch-count 1 \
    --metrics "$metrics" --csv "$BENCH" --formats "$f" --shape "$shape" --runs 50 > "$OUT/ncu-gemv.csv" 2> "$OUT/ncu-gemv.err"
  python3 - "$OUT/ncu-gemv.csv" "$spec" "${IMP_PROFILE_TAG:-}" <<'PY'
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 5]
if len(rows) < 2:
    print(sys.argv[2], "no ncu rows"); sys.exit(0)
hdr = rows[0]; data = rows[1:]
ki, mi, vi = hdr.index("Kernel Name"), hdr.index("Metric Name"), hdr.index("Metric Value")
m = {r[mi]: r[vi].replace(",", "") for r in data}
name = data[0][ki].split("(")[0].split("<")[0][-30:]
g = lambda k: float(m.get(k, "nan"))
S = "smsp__average_warps_issue_stalled_"
stalls = {k[len(S):].replace("_per_issue_active.ratio", ""): g(k) for k in m if k.startswith(S)}
top = sorted(stalls.items(), key=lambda kv: -kv[1])[:5]
print(f"{sys.argv[3]:<10} {sys.argv[2]:<26} {g('gpu__time_duration.sum')/1e3:7.1f} us  dram {g('dram__throughput.avg.pct_of_peak_sustained_elapsed'):5.1f}%  "
      f"read {g('dram__bytes_read.sum')/1e6:6.1f} MB  L2 {g('lts__t_bytes.sum')/1e6:6.1f} MB  occ {g('sm__warps_active.avg.pct_of_peak_sustained_active'):5.1f}%  "
      f"regs {g('launch__registers_per_thread'):.0f}  waves {g('launch__waves_per_multiprocessor'):.2f}  "
      f"lim r/s {g('launch__occupancy_limit_registers'):.0f}/{g('launch__occupancy_limit_shared_mem'):.0f}")
print("           stalls (cycles per issue): " + "  ".join(f"{k} {v:.1f}" for k, v in top))
PY
done
if [ "${IMP_PROFILE_SOURCE:-0}" = 1 ]; then
for spec in ${IMP_PROFILE_GEMV:-q4_0:14336x4096 q4_0:4096x4096}; do
  f=${spec%%:*}; shape=${spec#*:}; tag=$(echo "$spec" | tr ':x' '__')
  ncu --clock-control none --cache-control all -k "regex:${IMP_PROFILE_KERNEL:-_mma}" --launch-skip 30 --launch-count 1 \
    --section SourceCounters --section WarpStateStats -f -o "$OUT/src-$tag" "$BENCH" --formats "$f" --shape "$shape" --runs 50 \
    > "$OUT/ncu-src.log" 2>&1 || { tail -5 "$OUT/ncu-src.log"; continue; }
  ncu -i "$OUT/src-$tag.ncu-rep" --page source --print-source sass --csv > "$OUT/src-$tag.csv" 2> "$OUT/ncu-src.err" \
    || { tail -5 "$OUT/ncu-src.err"; continue; }
  python3 - "$OUT/src-$tag.csv" "$spec" <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if r]
hi = next((i for i, r in enumerate(rows) if any("Source" == c for c in r)), None)
if hi is None:
    print(sys.argv[2], "no source page"); sys.exit(0)
hdr, data = rows[hi], rows[hi + 1:]
col = lambda name: next((i for i, c in enumerate(hdr) if c.startswith(name)), None)
si, ai = col("Source"), col("Address")
ti = col("Warp Stall Sampling (All Samples)")
ni = col("Warp Stall Sampling (Not-issued Samples)")
if ti is None:
    print(sys.argv[2], "columns:", hdr[:40]); sys.exit(0)
reason_cols = [i for i, c in enumerate(hdr) if c.startswith("stall_") or c.startswith("smsp__pcsamp")]
num = lambda v: float(v.replace(",", "") or 0) if v.replace(",", "").replace(".", "").isdigit() else 0.0
total = sum(num(r[ti]) for r in data if len(r) > ti) or 1.0
print(f"== {sys.argv[2]}: {int(total)} samples; top instructions (share of all samples, reasons)")
top = sorted((r for r in data if len(r) > ti), key=lambda r: -num(r[ti]))[:24]
for r in top:
    rs = sorted(((hdr[i], num(r[i])) for i in reason_cols if i < len(r) and num(r[i]) > 0), key=lambda kv: -kv[1])[:3]
    print(f"  {num(r[ti]) / total:6.1%}  {r[ai] if ai is not None else '':>6}  {r[si][:60]:<60} "
          + " ".join(f"{k.replace('smsp__pcsamp_warps_issue_stalled_', '')}:{v / total:.1%}" for k, v in rs))
ops = collections.Counter()
for r in data:
    if len(r) > ti and r[si].strip():
        op = r[si].split()[0] if not r[si].startswith("@") else r[si].split()[1]
        ops[op.split(".")[0]] += num(r[ti])
print("  by opcode: " + ", ".join(f"{k} {v / total:.1%}" for k, v in ops.most_common(12)))
PY
done
fi
