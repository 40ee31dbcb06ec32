"""AWQ's fold keeps the float model's function: `imp quantize --type f32 --method awq
--awq-target q4_0` searches per-channel scales against Q4_0 and writes the folded model in F32
(norm gains / s, ffn_up rows / s, weight columns · s). The float64 numpy forward pass
(llama_ref.py) of the folded model gives the original's logits within 1e-5 relative, while
the folded weights really differ. SmolLM2-135M demo model (skipped when absent)."""
from __future__ import annotations

import subprocess

import numpy as np
from gguf import GGUFReader

from llama_ref import LlamaRef
from test_imatrix_file import TEXT
from test_llama_forward import demo_model_path, imp_binary

TOKENS = [1, 504, 3458, 282, 260, 5250, 28, 314, 1168, 253, 2214, 30, 1017, 357, 1303, 744]


def test_awq_fold_preserves_logits(tmp_path):
    model = demo_model_path()
    text = tmp_path / "calib.txt"
    text.write_text(TEXT * 2)
    out = tmp_path / "folded.gguf"
    r = subprocess.run([imp_binary(), "quantize", model, str(out), "--type", "f32", "--method", "awq", "--awq-target",
                        "q4_0", "--calib", str(text), "--calib-chunks", "1", "--ctx", "32", "--no-progress"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr + r.stdout
    assert "scale groups folded" in r.stdout
    ref, folded = LlamaRef.load(model), LlamaRef.load(str(out))
    changed = [n for n in ref.w if n.endswith("norm.weight") and not np.allclose(ref.w[n], folded.w[n], rtol=1e-3)]
    assert len(changed) >= ref.n_layer, "the search left s = 1 almost everywhere"
    a, b = ref.logits(TOKENS), folded.logits(TOKENS)
    rel = np.linalg.norm(a - b, axis=-1) / np.linalg.norm(a, axis=-1)
    assert rel.max() < 1e-5, rel
