#!/usr/bin/env python3
"""Issue 5's speed targets against one scripts/gpu-check.sh run, printed as the last table.

Usage: gpu_targets.py OUT_DIR   (reads OUT_DIR/fwd-*.json from `imp bench --json` and
OUT_DIR/gemv.json from imp_bench_cuda_gemv; either may be missing: its rows say so)

Targets (H100, measured against ceilings of the same run):
  decode   fraction of the ceiling >= 0.70 for the llama3.1-8b tiers
  prefill  BF16 >= 0.5 of the bf16 matrix rate; FP8 >= 1.5x the BF16 prefill; 4-bit tiers
           >= 0.9x the BF16 prefill (tokens/s of the same run)
  GEMV     >= 0.85 of copy bandwidth (in a PDL stream, as decode runs them) for every
           4-bit and 8-bit tier on the four 8B shapes
  load     < 10 s for an 8B model
"""
import glob
import json
import os
import sys

DECODE_TIERS = ["bf16", "fp8", "q8_0", "nvfp4", "q4_0", "q4_k_m"]
FOUR_BIT = ["nvfp4", "q4_0", "q4_k_m"]
GEMV_FORMATS = ["q8_0", "fp8_e4m3_channel", "fp8_e4m3_tensor", "q4_0", "q4_k", "nvfp4_ckpt", "mxfp4_ckpt"]


def mark(ok):
    return "met" if ok else "NOT met"


def load_fwd(out_dir):
    runs = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "fwd-llama3.1-8b-*.json"))):
        tier = os.path.basename(path)[len("fwd-llama3.1-8b-"):-len(".json")]
        try:
            runs[tier] = json.load(open(path))
        except (OSError, ValueError):
            pass
    return runs


def rows(out_dir):
    out = []
    fwd = load_fwd(out_dir)
    for tier in DECODE_TIERS:
        f = fwd.get(tier)
        if f is None:
            out.append(("decode >= 0.70", tier, "no run", ""))
            continue
        x = f["fraction_of_ceiling"]
        out.append(("decode >= 0.70", tier, f"{x:.3f} ({f['gen_tokens_per_s']:.1f} tok/s)", mark(x >= 0.70)))
    bf16 = fwd.get("bf16")
    if bf16 is not None:
        x = bf16.get("prefill_fraction_of_bf16_rate", 0.0)
        out.append(("prefill bf16 >= 0.5 of rate", "bf16", f"{x:.3f}", mark(x >= 0.5)))
        base = bf16["prompt_tokens_per_s"]
        for tier, need in [("fp8", 1.5)] + [(t, 0.9) for t in FOUR_BIT]:
            f = fwd.get(tier)
            if f is None:
                out.append((f"prefill >= {need}x bf16", tier, "no run", ""))
                continue
            r = f["prompt_tokens_per_s"] / base
            out.append((f"prefill >= {need}x bf16", tier, f"{r:.2f}x ({f['prompt_tokens_per_s']:.0f} tok/s)", mark(r >= need)))
    else:
        out.append(("prefill", "bf16", "no run (the prefill targets need it)", ""))
    loads = [(t, f["load_seconds"]) for t, f in fwd.items() if "load_seconds" in f]
    if loads:
        worst = max(loads, key=lambda p: p[1])
        out.append(("load < 10 s", "slowest: " + worst[0], f"{worst[1]:.2f} s", mark(worst[1] < 10)))
    try:
        gemv = json.load(open(os.path.join(out_dir, "gemv.json")))
        best = {}
        for r in gemv["results"]:  # the best kernel per (format, shape): what the backend would pick
            key = (r["format"], f"{r['rows']}x{r['cols']}")
            best[key] = max(best.get(key, 0.0), r.get("fraction_of_copy_pdl", r["fraction_of_copy"]))
        for fmt in GEMV_FORMATS:
            cells = {s: v for (f, s), v in best.items() if f == fmt}
            if not cells:
                continue
            worst = min(cells.items(), key=lambda p: p[1])
            out.append(("GEMV >= 0.85 of copy", fmt, f"worst {worst[1]:.3f} at {worst[0]}", mark(worst[1] >= 0.85)))
    except (OSError, ValueError, KeyError):
        out.append(("GEMV >= 0.85 of copy", "-", "no GEMV benchmark in this run", ""))
    return out


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    print("\n================ ISSUE 5 TARGETS (this run) ================")
    for target, what, value, verdict in rows(sys.argv[1]):
        print(f"{target:<28}{what:<26}{value:<36}{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
