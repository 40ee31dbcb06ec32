#!/usr/bin/env bash
# Where a decode step's time goes, per kernel, on the GPU machine: synthesizes a model
# (IMP_PROFILE_MODEL=preset:type, default llama3.1-8b:q4_0), runs `imp bench --device cuda`
# under Nsight Systems with CUDA-graph nodes traced, and prints the kernel summary
# (total time, launches, average) — divide by the decoded tokens for a per-token budget.
# Falls back to Nsight Compute's per-kernel durations when nsys is absent.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-build.sh  # BUILD=build-gpu, OUT (default $BUILD/out), gpu_build
mkdir -p "$BUILD/synth"
gpu_build profile-decode imp || exit 1
spec=${IMP_PROFILE_MODEL:-llama3.1-8b:q4_0}
preset=${spec%%:*}; type=${spec##*:}
case "$type" in nvfp4|fp8*) m="$BUILD/synth/$preset-$type" ;; *) m="$BUILD/synth/$preset-$type.gguf" ;; esac
[ -e "$m" ] || "$BUILD/imp" synth --preset "$preset" --type "$type" -o "$m" -q > /dev/null
N=${IMP_PROFILE_TOKENS:-64}
if command -v nsys > /dev/null; then
  nsys profile -t cuda --cuda-graph-trace=node -o "$OUT/decode" --force-overwrite true \
    "$BUILD/imp" bench -m "$m" --device cuda -p 64 -n "$N" > "$OUT/nsys-run.log" 2>&1
  nsys stats -r cuda_gpu_kern_sum -f csv "$OUT/decode.nsys-rep" 2> /dev/null > "$OUT/kern.csv"
  python3 - "$OUT/kern.csv" "$N" <<'PY'
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if r]
hdr_i = next(i for i, r in enumerate(rows) if "Time (%)" in r[0] or "Time(%)" in r[0])
hdr = rows[hdr_i]; data = rows[hdr_i + 1:]
ti, ni, tot, nm = hdr.index(next(h for h in hdr if h.startswith("Time"))), hdr.index("Instances"), hdr.index("Total Time (ns)"), hdr.index("Name")
n = int(sys.argv[2]); total = sum(float(r[tot]) for r in data)
print(f"kernel time, all launches: {total/1e6:.2f} ms; per decoded token (prefill included) {total/1e3/n:.1f} us")
print(f"{'%':>6} {'total ms':>9} {'launches':>9} {'avg us':>8}  name")
for r in data[:25]:
    print(f"{float(r[ti]):6.1f} {float(r[tot])/1e6:9.3f} {int(r[ni]):9d} {float(r[tot])/int(r[ni])/1e3:8.2f}  {r[nm][:110]}")
PY
else
  # IMP_PROFILE_PROMPT=512 IMP_PROFILE_LAUNCHES=400: the first kernels of a 512-token
  # prefill instead (imp bench's untimed warm-up is the same prefill). The default prompt
  # of 1 token makes every step a decode step (the warm-up's 1 + 2 and the timed 1 + 2
  # steps of -n 3): the table is then per decode step, each kernel timed alone.
  P=${IMP_PROFILE_PROMPT:-1}
  echo "nsys not found; ncu per-kernel durations (prompt $P, launches ${IMP_PROFILE_LAUNCHES:-all})"
  ncu --clock-control none --metrics gpu__time_duration.sum --csv ${IMP_PROFILE_LAUNCHES:+--launch-count "$IMP_PROFILE_LAUNCHES"} \
    "$BUILD/imp" bench -m "$m" --device cuda -p "$P" -n 3 > "$OUT/ncu.csv" 2> /dev/null
  python3 - "$OUT/ncu.csv" "$P" <<'PY'
import csv, sys, collections
t = collections.defaultdict(float); n = collections.Counter()
for r in csv.DictReader(l for l in open(sys.argv[1]) if l.startswith('"')):
    if r.get("Metric Name") == "gpu__time_duration.sum":
        t[r["Kernel Name"][:100]] += float(r["Metric Value"].replace(",", "")); n[r["Kernel Name"][:100]] += 1
steps = 6 if sys.argv[2] == "1" else 1
total = sum(t.values())
print(f"kernel time {total/1e3:.1f} us in {sum(n.values())} launches; per step ({steps} steps): {total/1e3/steps:.1f} us, "
      f"{sum(n.values())/steps:.0f} launches")
print(f"{'us/step':>9} {'launches/step':>14} {'avg us':>8}  name")
for k, v in sorted(t.items(), key=lambda kv: -kv[1])[:25]:
    print(f"{v/1e3/steps:9.1f} {n[k]/steps:14.1f} {v/1e3/n[k]:8.2f}  {k}")
PY
fi
tail -3 "$OUT/nsys-run.log" 2> /dev/null
