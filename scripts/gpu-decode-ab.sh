#!/usr/bin/env bash
# Decode A/B on the GPU machine: one synthetic model, several run-time switches, the same
# build. Each model is synthesized once and benchmarked once per variant, alternating
# variants over IMP_AB_ROUNDS rounds so clock drift hits every variant alike.
#   IMP_AB_MODELS="llama3.1-8b:q4_0 llama3.1-8b:q8_0"     (preset:type, as in gpu-check.sh)
#   IMP_AB_VARIANTS="base IMP_CUDA_PDL=0"              (env assignments joined by ',';
#                                                           'base' = no extra environment)
#   IMP_AB_ROUNDS=2, IMP_AB_ARGS="-p 512 -n 128"
#   IMP_AB_TRACE=1: per variant also `imp bench --trace-kernels 20` (same arguments), its decode-step
#                   table printed after the A/B table
#   IMP_AB_KEEP=1:  keep the synthesized models in build-gpu/synth for a later call
# Builds only `imp` into build-gpu/ (configured as scripts/gpu-check.sh does; carry .gpu-deps).
# Prints a table last: decode tok/s, device step, fraction of the ceiling, prefill tok/s.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-build.sh  # BUILD=build-gpu, OUT (default $BUILD/out), gpu_build
gpu_build ab imp || exit 1

SYNTH=$BUILD/synth
mkdir -p "$SYNTH"
read -r -a args <<< "${IMP_AB_ARGS:--p 512 -n 128}"
rounds=${IMP_AB_ROUNDS:-2}
rc=0
for spec in ${IMP_AB_MODELS:-llama3.1-8b:q4_0}; do
  preset=${spec%%:*}; type=${spec#*:}
  case "$type" in nvfp4|fp8*) f="$SYNTH/$preset-$type" ;; *) f="$SYNTH/$preset-$type.gguf" ;; esac
  [ -e "$f" ] || timeout 150 "$BUILD/imp" synth --preset "$preset" --type "$type" -o "$f" -q \
    > "$OUT/ab-synth-$preset-$type.log" 2>&1 || { echo "synth $spec failed"; rc=1; continue; }
  for ((r = 1; r <= rounds; r++)); do
    for v in ${IMP_AB_VARIANTS:-base}; do
      envs=(); [ "$v" = base ] || IFS=, read -r -a envs <<< "$v"
      j="$OUT/ab-$preset-$type-${v//[^A-Za-z0-9_=.-]/_}-r$r.json"
      env "${envs[@]}" timeout 150 "$BUILD/imp" bench -m "$f" --device cuda "${args[@]}" --json > "$j" \
        2> "${j%.json}.log" || { echo "bench $spec [$v] failed"; tail -5 "${j%.json}.log"; rc=1; }
      if [ "$r" = 1 ] && [ "${IMP_AB_TRACE:-0}" = 1 ]; then
        env "${envs[@]}" timeout 150 "$BUILD/imp" bench -m "$f" --device cuda "${args[@]}" --trace-kernels 20 \
          > "${j%-r1.json}.trace" 2>&1 || { echo "trace $spec [$v] failed"; tail -5 "${j%-r1.json}.trace"; }
      fi
    done
  done
  [ "${IMP_AB_KEEP:-0}" = 1 ] || rm -rf "$f"  # disk: an 8B BF16 file is 16 GB
done

python3 - "$OUT" <<'PY'
import json, sys, glob, os, re
rows = []
for path in sorted(glob.glob(os.path.join(sys.argv[1], "ab-*-r*.json"))):
    m = re.match(r"ab-(.+)-r(\d+)\.json", os.path.basename(path))
    try:
        f = json.load(open(path))
    except Exception as e:
        print(f"{m.group(1)}: no result ({e})"); continue
    rows.append((m.group(1), int(m.group(2)), f))
print("\n================ DECODE A/B ================")
print(f"{'model / variant':<58}{'round':>6}{'decode tok/s':>14}{'step ms':>9}{'fraction':>10}{'prefill tok/s':>15}")
for name, r, f in rows:
    step = f.get("decode_step_gpu_seconds", 0) * 1e3
    print(f"{name:<58}{r:>6}{f['gen_tokens_per_s']:>14.1f}{step:>9.3f}{f['fraction_of_ceiling']:>10.3f}"
          f"{f['prompt_tokens_per_s']:>15.0f}")
PY
for t in "$OUT"/ab-*.trace; do
  [ -f "$t" ] || continue
  echo; echo "== $(basename "$t" .trace)"; sed -n '/^decode step, kernel by kernel/,/^prefill/p' "$t" | sed '$d'
done
exit $rc
