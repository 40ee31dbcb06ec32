"""imp's llama-family forward pass against the independent numpy reference (llama_ref.py).

For a fixed token-id prompt: logits of every prompt position (imp run --dump-logits) within
a relative error per position of 1e-4 on the reference op path (exact weight decode, double
accumulation, f32 KV cache) and 1e-3 on the default fast path (F32 activations) against the
exact float64 reference, and 1e-3 on the int8-activation fast path (--act-quant q8) against
the same reference with ggml's 8-bit activation rounding emulated (quantizing each
activation row to Q8_0/Q8_1 alone moves the logits by ~1e-2; the emulation isolates
everything else). Greedy continuations of 32 tokens
must be identical for the reference and default fast paths. Runs on tiny synthetic GGUFs written here (always) and on
the SmolLM2-135M demo model (skipped when absent).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T
from gguf import GGUFWriter, quants

from llama_ref import LlamaRef

REF_TOL = 1e-4
FAST_TOL = 1e-3
Q8_FLIP_TOL = 3e-2  # one flipped Q8 code in a toy model (see check_model)
N_GREEDY = 32


def imp_binary() -> str:
    b = os.environ.get("IMP_BINARY")
    if not b or not Path(b).exists():
        pytest.skip("IMP_BINARY not set (run through ctest or set it to build/imp)")
    return b


def imp_run(model: str, tokens: list[int], *extra: str, check=True) -> subprocess.CompletedProcess:
    cmd = [imp_binary(), "run", "-m", model, "--tokens", ",".join(map(str, tokens)), *extra]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def imp_logits(model: str, tokens: list[int], ops: str, tmp_path: Path, n_vocab: int, *extra: str) -> np.ndarray:
    out = tmp_path / f"logits_{ops}.f32"
    imp_run(model, tokens, "--ops", ops, "--kv-dtype", "f32", "--dump-logits", str(out), "-n", "0", "-t", "2", *extra)
    return np.fromfile(out, dtype=np.float32).reshape(len(tokens), n_vocab)


def imp_greedy(model: str, tokens: list[int], n: int, ops: str, *extra: str) -> list[int]:
    p = imp_run(model, tokens, "--temp", "0", "-n", str(n), "-t", "2", "--ops", ops, "--kv-dtype", "f32", "--ignore-eos",
                *extra)
    return [int(t) for t in p.stdout.split()]


def rel_err_per_position(a: np.ndarray, ref: np.ndarray) -> np.ndarray:
    assert not np.isnan(a).any()
    return np.linalg.norm(a - ref, axis=1) / np.linalg.norm(ref, axis=1)


def check_model(path: str, tokens: list[int], tmp_path: Path, n_greedy: int = N_GREEDY, emulate_q8: bool = True):
    """Reference and default fast path (F32 activations) against the exact reference; with
    emulate_q8, also the int8-activation path (--act-quant q8) against the Q8 emulation. The
    demo model skips that last check: its activation outliers (amax/rms up to 61 per row)
    make the Q8 rounding ~1e-2 per matmul, and 30 layers amplify the tiny differences between
    ggml's rounding and the emulation's far past 1e-3 (see test_hf_logits.py)."""
    ref = LlamaRef.load(path)
    exact = ref.logits(tokens)
    runs = [("reference", (), REF_TOL, False), ("fast", (), FAST_TOL, False)]
    if emulate_q8:
        runs.append(("fast", ("--act-quant", "q8"), FAST_TOL, True))
    for ops, extra, tol, act_q8 in runs:
        ref.act_q8 = act_q8
        want = ref.logits(tokens)
        got = imp_logits(path, tokens, ops, tmp_path, want.shape[1], *extra)
        err = rel_err_per_position(got, want)
        print(f"{ops} {' '.join(extra)}: max relative error per position {err.max():.2e} "
              f"(against the exact reference: {rel_err_per_position(got, exact).max():.2e})")
        if act_q8:
            # The emulation quantizes float64 activations, imp float32 ones: now and then an
            # element on a rounding boundary gets the neighbouring code, which in a 64-wide
            # toy model moves that position by ~5e-3 and can flip a greedy pick; through
            # attention (and qwen3's q/k norms) one flip also moves the positions after it
            # (seed 2053377596: three of eleven past tol from one flip). So: most positions
            # within tol, none past Q8_FLIP_TOL, and no greedy comparison.
            assert (err <= tol).mean() >= 0.6 and (err <= Q8_FLIP_TOL).all(), f"{extra}: relative errors {err}"
            continue
        assert (err <= tol).all(), f"{ops} {extra} path: relative errors {err}"
        # The swap margin: the path's measured error on the prompt, ×4 for the decode steps.
        assert_greedy_matches(ref, tokens, imp_greedy(path, tokens, n_greedy, ops, *extra), ref.greedy(tokens, n_greedy),
                              4 * float(err.max()), f"{ops} {extra}")


def assert_greedy_matches(ref, tokens: list[int], got: list[int], want: list[int], rel: float, what: str):
    """imp's greedy continuation is the reference's, up to a near-tie: a path within relative
    error rel per position can swap two logits closer than 2·rel·‖logits‖, so at the first
    step where the continuations part the reference's logits of both picks must be that
    close — and the comparison ends there, the continuations after it legitimately differ.
    (The fast path, ~1e-4 from the reference, parted at step 14 of a random toy model where
    the two best logits were that close: seed 4096541558, llama tied.)"""
    assert len(got) == len(want), f"{what}: {len(got)} tokens generated, {len(want)} expected"
    i = next((k for k in range(len(want)) if got[k] != want[k]), None)
    if i is None:
        return
    logits = ref.logits(tokens + want[:i], last_only=True)[-1]
    gap = abs(float(logits[want[i]]) - float(logits[got[i]]))
    bound = 2 * rel * float(np.linalg.norm(logits))
    assert gap <= bound, f"{what}: greedy token {i} is {got[i]}, reference {want[i]}; logit gap {gap:.3e} > {bound:.3e}"


# --- synthetic models --------------------------------------------------------------------

def write_tiny(path: Path, rng, arch="llama", tied=False, n_embd=64, n_head=4, n_kv=2, n_ff=96, n_layer=2,
               n_vocab=67, n_ctx=256, break_tensor: str | None = None):
    hd = n_embd // n_head
    w = GGUFWriter(str(path), arch)
    w.add_context_length(n_ctx)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)

    def add(name, shape, qtype, scale=0.2):
        if name == break_tensor:
            shape = (shape[0] + 32,) + tuple(shape[1:])
        a = (rng.standard_normal(shape) * scale).astype(np.float32)
        if qtype == T.F32:
            w.add_tensor(name, a)
        else:
            w.add_tensor(name, quants.quantize(a, qtype), raw_dtype=qtype)

    add("token_embd.weight", (n_vocab, n_embd), T.Q8_0, 1.0)
    add("output_norm.weight", (n_embd,), T.F32, 1.0)
    if not tied:
        add("output.weight", (n_vocab, n_embd), T.Q4_0)
    kinds = [T.F32, T.Q8_0, T.Q4_0]
    for l in range(n_layer):
        p = f"blk.{l}."
        add(p + "attn_norm.weight", (n_embd,), T.F32, 1.0)
        add(p + "ffn_norm.weight", (n_embd,), T.F32, 1.0)
        add(p + "attn_q.weight", (n_head * hd, n_embd), kinds[l % 3])
        add(p + "attn_k.weight", (n_kv * hd, n_embd), kinds[(l + 1) % 3])
        add(p + "attn_v.weight", (n_kv * hd, n_embd), kinds[(l + 2) % 3])
        add(p + "attn_output.weight", (n_embd, n_head * hd), T.Q4_0)
        add(p + "ffn_gate.weight", (n_ff, n_embd), T.Q8_0)
        add(p + "ffn_up.weight", (n_ff, n_embd), T.Q4_0)
        add(p + "ffn_down.weight", (n_embd, n_ff), T.F32)
        if arch == "qwen2":
            for n, rows in (("q", n_head * hd), ("k", n_kv * hd), ("v", n_kv * hd)):
                add(p + f"attn_{n}.bias", (rows,), T.F32)
        if arch == "qwen3":
            add(p + "attn_q_norm.weight", (hd,), T.F32, 1.0)
            add(p + "attn_k_norm.weight", (hd,), T.F32, 1.0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return str(path)


@pytest.mark.parametrize("arch,tied", [("llama", False), ("llama", True), ("qwen2", False), ("qwen3", True)])
def test_tiny_synthetic_matches_reference(tmp_path, rng, arch, tied):
    path = write_tiny(tmp_path / "tiny.gguf", rng, arch=arch, tied=tied)
    tokens = [int(t) for t in rng.integers(0, 67, size=11)]
    check_model(path, tokens, tmp_path)


# --- demo model -----------------------------------------------------------------------------

def demo_model_path() -> str:
    default = Path.home() / ".cache/imp/models/SmolLM2-135M-Instruct.Q4_1.gguf"
    env = os.environ.get("IMP_MODEL_CACHE")
    p = Path(env) if env else default
    if p.is_dir():
        p = p / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not p.exists():
        pytest.skip(f"demo model not found at {p} (set IMP_MODEL_CACHE or run scripts/fetch-models.sh)")
    return str(p)


def test_smollm2_matches_reference(tmp_path):
    path = demo_model_path()
    # "<|im_start|>user\nWhat is the capital of France?<|im_end|>" style ids: a fixed id prompt.
    tokens = [1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198]
    check_model(path, tokens, tmp_path, emulate_q8=False)


# --- bad input ------------------------------------------------------------------------------

def test_prompt_longer_than_context(tmp_path, rng):
    path = write_tiny(tmp_path / "tiny.gguf", rng)
    p = imp_run(path, list(range(9)), "--ctx", "8", check=False)
    assert p.returncode == 1
    assert "imp: error:" in p.stderr and "longer than the context (8 tokens)" in p.stderr


def test_unknown_architecture(tmp_path, rng):
    path = write_tiny(tmp_path / "odd.gguf", rng, arch="fancy")
    p = imp_run(path, [1, 2], check=False)
    assert p.returncode == 1
    assert "unknown architecture 'fancy'" in p.stderr


def test_tensor_not_matching_config(tmp_path, rng):
    path = write_tiny(tmp_path / "bad.gguf", rng, break_tensor="blk.1.attn_k.weight")
    p = imp_run(path, [1, 2], check=False)
    assert p.returncode == 1
    assert "'blk.1.attn_k.weight' has shape [64, 64] but the config wants [32, 64]" in p.stderr


def test_token_id_outside_vocabulary(tmp_path, rng):
    path = write_tiny(tmp_path / "tiny.gguf", rng)
    p = imp_run(path, [1, 67], check=False)
    assert p.returncode == 1
    assert "token id 67 is outside the vocabulary" in p.stderr
