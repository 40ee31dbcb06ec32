"""KV-cache types end to end on the demo model: prompt logits with each `--kv-type` against
the f32 KV cache (same weights, same ops), greedy `imp run --tokens … --temp 0`.

The per-type error must grow as the cache loses bits: f16 < int8, fp8_e4m3 < int4, nvfp4.
Runs on the reference op path (exact FP32 matmuls): the fast path quantizes activations to
8 bits, and on SmolLM2 that alone moves the logits by ~4e-2 for any KV perturbation (even
f16), which would hide the ordering.

Measured mean relative logit error per position (SmolLM2-135M Q4_1, this 40-token prompt,
2026-11-22): f16 3.8e-4, bf16 5.1e-3, int8 2.6e-2, fp8_e4m3 6.9e-2, nvfp4 2.2e-1, int4 4.7e-1.
Bounds are those × ~2 (the run is deterministic: fixed prompt, single-threaded reference ops).
int4 (groups of 32, ±7 levels) loses more than nvfp4 (groups of 16, E2M1's non-uniform grid):
likely SmolLM2's K rows carry outlier channels that flush a uniform 32-group's small values.
"""
from __future__ import annotations

import numpy as np

from test_llama_forward import demo_model_path, imp_run

OPS = "reference"
# Mean relative logit error vs the f32 cache (measured value × ~2, see the module docstring).
BOUNDS = {"f16": 1e-3, "bf16": 1e-2, "int8": 6e-2, "fp8_e4m3": 0.15, "int4": 0.9, "nvfp4": 0.45}

# A fixed chat-style id prompt (SmolLM2 vocabulary), long enough that attention spans
# several KV blocks.
TOKENS = [1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198,
          504, 3575, 282, 4649, 314, 7042, 30, 378, 1781, 314, 260, 3575, 282, 7042, 47, 2, 198,
          1, 4093, 198, 31528, 338, 30, 2]


def kv_logits(path: str, kv_type: str, tmp_path) -> np.ndarray:
    out = tmp_path / f"logits_{kv_type}.f32"
    imp_run(path, TOKENS, "--kv-type", kv_type, "--ops", OPS, "--temp", "0", "-n", "0", "-t", "2", "--dump-logits", str(out))
    a = np.fromfile(out, dtype=np.float32)
    assert a.size % len(TOKENS) == 0 and not np.isnan(a).any()
    return a.reshape(len(TOKENS), -1)


def test_kv_types_error_order(tmp_path):
    path = demo_model_path()
    ref = kv_logits(path, "f32", tmp_path)
    err = {}
    for t in BOUNDS:
        got = kv_logits(path, t, tmp_path)
        err[t] = float(np.mean(np.linalg.norm(got - ref, axis=1) / np.linalg.norm(ref, axis=1)))
    print("mean relative logit error vs f32 KV: " + ", ".join(f"{t} {e:.2e}" for t, e in err.items()))
    for t, e in err.items():
        assert 0.0 < e <= BOUNDS[t], f"{t}: {e:.3e} (bound {BOUNDS[t]})"
    assert err["f16"] < min(err["int8"], err["fp8_e4m3"]), err
    assert max(err["int8"], err["fp8_e4m3"]) < min(err["int4"], err["nvfp4"]), err


def test_kv_type_flag_errors(tmp_path):
    path = demo_model_path()
    p = imp_run(path, TOKENS[:3], "--kv-type", "int3", "-n", "0", check=False)
    assert p.returncode != 0 and "int3" in p.stderr
    # The engine's earlier spelling still works.
    imp_run(path, TOKENS[:3], "--kv-dtype", "int8", "-n", "1", "--temp", "0", "-t", "2")
