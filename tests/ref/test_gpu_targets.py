"""scripts/gpu_targets.py: the issue-5 target table that scripts/gpu-check.sh prints last,
checked on run outputs with known answers (the JSON fields `imp bench --json` and
imp_bench_cuda_gemv --json write)."""
import json
import pathlib
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "gpu_targets.py"


def fwd(decode_fraction, prefill_tps, load_s=1.0, bf16_rate_fraction=0.0):
    return {"fraction_of_ceiling": decode_fraction, "gen_tokens_per_s": 100.0, "prompt_tokens_per_s": prefill_tps,
            "load_seconds": load_s, "prefill_fraction_of_bf16_rate": bf16_rate_fraction}


def run(out_dir):
    r = subprocess.run([sys.executable, str(SCRIPT), str(out_dir)], capture_output=True, text=True, check=True)
    return r.stdout


def test_each_target_is_judged_from_the_runs(tmp_path):
    runs = {"bf16": fwd(0.75, 20000, load_s=2.5, bf16_rate_fraction=0.52), "fp8": fwd(0.72, 31000),
            "q8_0": fwd(0.69, 19000), "q4_0": fwd(0.71, 18500), "nvfp4": fwd(0.5, 17000, load_s=11.0)}
    for tier, f in runs.items():
        (tmp_path / f"fwd-llama3.1-8b-{tier}.json").write_text(json.dumps(f))
    gemv = {"results": [
        {"format": "q8_0", "rows": 4096, "cols": 4096, "fraction_of_copy": 0.80, "fraction_of_copy_pdl": 0.86},
        {"format": "q8_0", "rows": 14336, "cols": 4096, "fraction_of_copy": 0.90, "fraction_of_copy_pdl": 0.91},
        {"format": "q4_0", "rows": 4096, "cols": 4096, "fraction_of_copy": 0.40, "fraction_of_copy_pdl": 0.50},
        {"format": "q4_0", "rows": 4096, "cols": 4096, "fraction_of_copy": 0.60, "fraction_of_copy_pdl": 0.70},
    ]}
    (tmp_path / "gemv.json").write_text(json.dumps(gemv))
    out = run(tmp_path)
    lines = out.splitlines()

    def line(*words):
        hits = [l for l in lines if all(w in l for w in words)]
        assert len(hits) == 1, (words, out)
        return hits[0]

    assert line("decode", "bf16").endswith("met") and "NOT" not in line("decode", "bf16")
    assert line("decode", "q8_0").endswith("NOT met")  # 0.69 < 0.70
    assert "NOT" not in line("decode", "q4_0")
    assert "no run" in line("decode", "q4_k_m")
    assert "NOT" not in line("prefill bf16", "bf16")  # 0.52 of the rate
    assert "1.55x" in line("1.5x", "fp8") and "NOT" not in line("1.5x", "fp8")  # 31000 / 20000
    assert "0.93x" in line("0.9x", "q4_0") and "NOT" not in line("0.9x", "q4_0")
    assert line("0.9x", "nvfp4").endswith("NOT met")  # 0.85x
    assert "11.00 s" in line("load", "nvfp4") and line("load", "nvfp4").endswith("NOT met")
    assert "NOT" not in line("GEMV", "q8_0")  # worst shape 0.86 in a PDL stream
    assert "worst 0.700" in line("GEMV", "q4_0")  # the better of two kernels for one shape
    assert line("GEMV", "q4_0").endswith("NOT met")


def test_missing_runs_are_named_not_guessed(tmp_path):
    out = run(tmp_path)
    assert "no GEMV benchmark" in out
    assert "no run" in out
    assert " met" not in out.replace("NOT met", "")
