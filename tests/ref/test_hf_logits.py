"""imp's logits and greedy output against Hugging Face transformers, per model:
  smollm2   SmolLM2-135M-Instruct Q4_1 GGUF (llama arch, the demo model)
            tests/data/smollm2-135m-q4_1-hf-logits.npz
  gemma3    Gemma 3 270M Q4_K_M GGUF  tests/data/gemma3-270m-q4_k_m-hf-logits.npz
            (both by scripts/make-reference-logits.py: transformers, float32, from the GGUF;
            gemma3 adds a prompt of > 512 tokens, past its local layers' sliding window,
            checked on the fast path only)
  hf-tiny   a tiny random Llama as a Hugging Face safetensors folder (BF16, with
            tokenizer.json), tests/data/hf-tiny-llama + tests/data/hf-tiny-llama-logits.npz
            (scripts/make-hf-tiny-llama.py); here imp's tokenizer must also give HF's ids
  ckpt-*    the prequantized checkpoints in tests/data/ckpt (ModelOpt NVFP4 / FP8,
            llm-compressor NVFP4) against transformers on their fake-quantized weights
            (scripts/make-ckpt-logits.py; full logits, 256-token vocabulary).
Per prompt the GGUF / folder references hold
holds the token ids, P·logits for a fixed random projection P (K × vocab, regenerated here
from the stored seed), the exact logit norms, the exact top-32 logits, and HF's greedy
continuation (up to 64 tokens, ending at EOS where HF stopped).

Per prompt position the relative error ‖l_imp − l_hf‖/‖l_hf‖ is estimated as
‖P·l_imp − proj‖/‖proj‖ (Johnson–Lindenstrauss: within a few percent for K = 512); the
norms and top-k values are checked directly. Bounds: 1e-4 on the reference op path, 1e-3 on
the default fast path (F32 activations, f32 KV cache; both are imp run's defaults and the
run uses no option beyond --ops). The fast path's greedy continuation must equal
HF's for every prompt (imp run --tokens … --temp 0 --ignore-eos -n len(greedy)); the slow
reference path is checked on the shortest prompt only, to keep the test within CI budget.
Skipped when the model is absent.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

DATA_DIR = Path(__file__).parent.parent / "data"
# model → (reference npz, the model: a file in the model cache or a folder under tests/data)
MODELS = {
    "smollm2": ("smollm2-135m-q4_1-hf-logits.npz", "cache:SmolLM2-135M-Instruct.Q4_1.gguf"),
    "gemma3": ("gemma3-270m-q4_k_m-hf-logits.npz", "cache:gemma-3-270m-q4_k_m.gguf"),
    "hf-tiny": ("hf-tiny-llama-logits.npz", "data:hf-tiny-llama"),
}
CKPTS = ["modelopt-nvfp4", "modelopt-fp8", "llmcompressor-nvfp4"]
TOL = {"reference": 1e-4, "fast": 1e-3}


def imp_binary() -> str:
    b = os.environ.get("IMP_BINARY")
    if not b or not Path(b).exists():
        pytest.skip("IMP_BINARY not set (run through ctest or set it to build/imp)")
    return b


def model_path(name: str) -> str:
    where, leaf = MODELS[name][1].split(":", 1)
    if where == "data":
        return str(DATA_DIR / leaf)
    root = Path(os.environ.get("IMP_MODEL_CACHE", Path.home() / ".cache/imp/models"))
    p = root / leaf
    if not p.exists():
        pytest.skip(f"model not found at {p} (set IMP_MODEL_CACHE or run scripts/fetch-models.sh)")
    return str(p)


def load_reference(name: str):
    d = np.load(DATA_DIR / MODELS[name][0])
    seed, k, topk, _, n_prompts = (int(v) for v in d["meta"])
    return d, seed, k, topk, n_prompts


def projection(seed: int, k: int, vocab: int) -> np.ndarray:
    # Must match make-reference-logits.py's projection() exactly.
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((k, vocab), dtype=np.float32) / np.sqrt(k)).astype(np.float32)


def imp_run(model: str, ids: np.ndarray, ops: str, n_predict: int, dump: Path) -> list[int]:
    cmd = [imp_binary(), "run", "-m", model, "--tokens", ",".join(map(str, ids.tolist())), "--ops", ops,
           "--temp", "0", "--ignore-eos", "-n", str(n_predict), "-t", "2",
           "--dump-logits", str(dump)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr
    print(p.stderr.strip().splitlines()[-1])
    return [int(t) for t in p.stdout.split()]


@pytest.mark.parametrize("ops", ["fast", "reference"])
@pytest.mark.parametrize("name", list(MODELS))
def test_logits_and_greedy_match_hf(name, ops, tmp_path):
    model = model_path(name)
    d, seed, k, topk, n_prompts = load_reference(name)
    p = None
    shortest = min(range(n_prompts), key=lambda i: len(d[f"p{i}_ids"]) + len(d[f"p{i}_greedy"]))
    for i in range(n_prompts):
        ids, greedy = d[f"p{i}_ids"], d[f"p{i}_greedy"]
        if ops == "reference" and len(ids) > 256:
            continue  # gemma3's long prompt (past the 512-token window): the scalar path would take minutes
        check_greedy = ops == "fast" or i == shortest
        dump = tmp_path / f"p{i}_{ops}.f32"
        got_tokens = imp_run(model, ids, ops, len(greedy) if check_greedy else 0, dump)
        logits = np.fromfile(dump, dtype=np.float32)
        assert logits.size % len(ids) == 0
        logits = logits.reshape(len(ids), -1).astype(np.float64)
        assert np.isfinite(logits).all()
        if f"p{i}_pos" in d.files:  # a long prompt keeps the reference at these positions only
            logits = logits[d[f"p{i}_pos"]]
        if p is None:
            p = projection(seed, k, logits.shape[1]).astype(np.float64)

        proj = d[f"p{i}_proj"].astype(np.float64)
        err = np.linalg.norm(logits @ p.T - proj, axis=1) / np.linalg.norm(proj, axis=1)
        norm_err = np.abs(np.linalg.norm(logits, axis=1) / d[f"p{i}_norms"] - 1)
        top_ids, top_vals = d[f"p{i}_topk_ids"], d[f"p{i}_topk_vals"].astype(np.float64)
        got_top = np.take_along_axis(logits, top_ids, axis=1)
        top_err = np.linalg.norm(got_top - top_vals, axis=1) / np.linalg.norm(top_vals, axis=1)
        print(f"prompt {i} ({len(ids)} tokens) {ops}: projected rel err max {err.max():.2e}, "
              f"norm {norm_err.max():.2e}, top-{topk} {top_err.max():.2e}")
        tol = TOL[ops]
        assert (err <= tol).all(), f"prompt {i} {ops}: relative errors per position {err}"
        assert (norm_err <= tol).all(), f"prompt {i} {ops}: norm errors {norm_err}"
        assert (top_err <= tol).all(), f"prompt {i} {ops}: top-k errors {top_err}"
        # The HF argmax is imp's argmax at every prompt position.
        assert (logits.argmax(axis=1) == top_ids[:, 0]).all(), f"prompt {i} {ops}: argmax differs"
        if check_greedy:
            assert got_tokens == greedy.tolist(), f"prompt {i} {ops}: greedy continuation differs from HF"


@pytest.mark.parametrize("name", ["hf-tiny", "gemma3"])
def test_prompt_ids_match_hf(name):
    """imp tokenizes each stored prompt text (BOS as the model asks) to the ids transformers
    gave: tokenizer.json for the tiny folder, the GGUF vocabulary for gemma3."""
    d, *_, n_prompts = load_reference(name)
    if "p0_text" not in d.files:
        pytest.skip(f"{MODELS[name][0]} stores no prompt texts")
    model = model_path(name)
    for i in range(n_prompts):
        out = subprocess.run([imp_binary(), "tokenize", "-m", model, "--ids-only", "--", str(d[f"p{i}_text"])],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert [int(x) for x in out.stdout.split()] == d[f"p{i}_ids"].tolist(), f"prompt {i}"


@pytest.mark.parametrize("ops", ["fast", "reference"])
@pytest.mark.parametrize("ckpt", CKPTS)
def test_prequantized_checkpoint_logits(ckpt, ops, tmp_path):
    """Prequantized checkpoints end to end through the forward: imp's logits against
    transformers on the fake-quantized (decoded) weights, full logits compared."""
    d = np.load(DATA_DIR / "ckpt" / f"{ckpt}-logits.npz")
    n_prompts = int(d["meta"][0])
    for i in range(n_prompts):
        ids, want, greedy = d[f"p{i}_ids"], d[f"p{i}_logits"].astype(np.float64), d[f"p{i}_greedy"]
        dump = tmp_path / f"{ckpt}_{i}.f32"
        got_tokens = imp_run(str(DATA_DIR / "ckpt" / ckpt), ids, ops, len(greedy), dump)
        got = np.fromfile(dump, dtype=np.float32).reshape(len(ids), -1).astype(np.float64)
        err = np.linalg.norm(got - want, axis=1) / np.linalg.norm(want, axis=1)
        print(f"{ckpt} prompt {i} ({len(ids)} tokens) {ops}: rel err max {err.max():.2e}")
        assert (err <= TOL[ops]).all(), f"{ckpt} prompt {i} {ops}: relative errors {err}"
        assert got_tokens == greedy.tolist(), f"{ckpt} prompt {i} {ops}: greedy continuation differs"
