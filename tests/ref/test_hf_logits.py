"""imp's logits and greedy output on the SmolLM2-135M demo model against Hugging Face.

The reference is tests/data/smollm2-135m-q4_1-hf-logits.npz, made by
scripts/make-reference-logits.py (transformers, float32, from the same GGUF). Per prompt it
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

DATA = Path(__file__).parent.parent / "data" / "smollm2-135m-q4_1-hf-logits.npz"
MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
TOL = {"reference": 1e-4, "fast": 1e-3}


def imp_binary() -> str:
    b = os.environ.get("IMP_BINARY")
    if not b or not Path(b).exists():
        pytest.skip("IMP_BINARY not set (run through ctest or set it to build/imp)")
    return b


def model_path() -> str:
    root = Path(os.environ.get("IMP_MODEL_CACHE", Path.home() / ".cache/imp/models"))
    p = root / MODEL_NAME
    if not p.exists():
        pytest.skip(f"demo model not found at {p} (set IMP_MODEL_CACHE or run scripts/fetch-models.sh)")
    return str(p)


@pytest.fixture(scope="module")
def hf():
    d = np.load(DATA)
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
def test_logits_and_greedy_match_hf(ops, hf, tmp_path):
    model = model_path()
    d, seed, k, topk, n_prompts = hf
    p = None
    shortest = min(range(n_prompts), key=lambda i: len(d[f"p{i}_ids"]) + len(d[f"p{i}_greedy"]))
    for i in range(n_prompts):
        ids, greedy = d[f"p{i}_ids"], d[f"p{i}_greedy"]
        check_greedy = ops == "fast" or i == shortest
        dump = tmp_path / f"p{i}_{ops}.f32"
        got_tokens = imp_run(model, ids, ops, len(greedy) if check_greedy else 0, dump)
        logits = np.fromfile(dump, dtype=np.float32)
        assert logits.size % len(ids) == 0
        logits = logits.reshape(len(ids), -1).astype(np.float64)
        assert np.isfinite(logits).all()
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
