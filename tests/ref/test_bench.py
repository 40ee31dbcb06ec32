"""`imp bench --json` on a tiny synthetic GGUF model: the command runs and every number is
present, finite and consistent with the others."""
from __future__ import annotations

import json
import math
import subprocess

from test_llama_forward import imp_binary, write_tiny


def bench(path: str, *extra: str) -> subprocess.CompletedProcess:
    cmd = [imp_binary(), "bench", "-m", path, "-t", "2", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_bench_json_tiny(tmp_path, rng):
    path = write_tiny(tmp_path / "tiny.gguf", rng)
    p_tok, n_gen = int(rng.integers(5, 40)), int(rng.integers(3, 20))
    p = bench(path, "-p", str(p_tok), "-n", str(n_gen), "--kv-type", "int8", "--json")
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    print(j)
    for k, v in j.items():
        if isinstance(v, float):
            assert math.isfinite(v), k
    assert j["n_prompt"] == p_tok and j["n_generated"] == n_gen
    assert j["decode_steps"] in (n_gen - 1, n_gen)
    assert j["kv_type"] == "int8" and j["threads"] == 2
    assert j["prompt_tokens_per_s"] > 0 and j["gen_tokens_per_s"] > 0
    assert j["bandwidth_buffer_bytes"] >= 512 << 20
    assert 1e8 < j["bandwidth_bytes_per_s"] < 1e13  # 0.1 GB/s .. 10 TB/s
    # Tiny model: 2 layers, 2 KV heads of 16, int8 rows of 4 + 16 bytes, K and V.
    assert j["kv_bytes_per_token"] == 2 * 2 * 2 * 20 * (j["mean_context"] + 1)
    assert j["mean_context"] == p_tok + (j["decode_steps"] - 1) / 2
    assert j["weight_bytes_per_token"] > 0
    assert j["bytes_per_token"] == j["weight_bytes_per_token"] + j["kv_bytes_per_token"]
    assert math.isclose(j["decode_ceiling_tokens_per_s"], j["bandwidth_bytes_per_s"] / j["bytes_per_token"])
    assert math.isclose(j["fraction_of_ceiling"], j["gen_tokens_per_s"] / j["decode_ceiling_tokens_per_s"])
    assert 0 < j["fraction_of_ceiling"]


def test_bench_errors(tmp_path, rng):
    path = write_tiny(tmp_path / "tiny.gguf", rng)
    p = bench(path, "-p", "8", "-n", "2", "--kv-type", "nvfp4")  # head_dim 16: fits
    assert p.returncode == 0, p.stderr
    p = bench(path, "-p", "250", "-n", "10")  # past the tiny model's context of 256
    assert p.returncode != 0 and "context" in p.stderr
    p = bench(path, "--kv-type", "q3")
    assert p.returncode != 0 and "q3" in p.stderr
