"""`imp imatrix` end to end: the file is llama.cpp's GGUF imatrix (read back with gguf-py:
general.type, imatrix.datasets / chunk_count / chunk_size, <weight>.in_sum2 F32 [1, cols] and
<weight>.counts F32 [1, 1]) and its values are Σx² of each linear layer's input columns over
the calibration tokens, recomputed here with the float64 numpy forward pass (llama_ref.py)
on the same tokens. Runs on the SmolLM2-135M demo model (skipped when absent)."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest
from gguf import GGUFReader

from llama_ref import LlamaRef
from test_llama_forward import demo_model_path, imp_binary

CTX, CHUNKS = 24, 2
TEXT = ("It is a truth universally acknowledged, that a single man in possession of a good fortune, "
        "must be in want of a wife. However little known the feelings or views of such a man may be "
        "on his first entering a neighbourhood, this truth is so well fixed in the minds of the "
        "surrounding families, that he is considered the rightful property of some one or other of "
        "their daughters.")


def field(r: GGUFReader, key: str):
    f = r.fields[key]
    return f.contents() if hasattr(f, "contents") else f.parts[-1].tolist()


class Recorder(LlamaRef):
    """LlamaRef that sums x² per column of every linear layer's input."""
    sums: dict

    def _mm(self, x, name):
        if name.startswith("blk."):
            self.sums[name] = self.sums.get(name, 0) + (np.asarray(x, np.float64) ** 2).sum(axis=0)
        return super()._mm(x, name)


def test_imatrix_matches_numpy_forward(tmp_path):
    model = demo_model_path()
    text = tmp_path / "calib.txt"
    text.write_text(TEXT)
    out = tmp_path / "im.gguf"
    subprocess.run([imp_binary(), "imatrix", "-m", model, "-f", str(text), "-o", str(out), "--ctx", str(CTX),
                    "--chunks", str(CHUNKS), "--no-progress"], check=True, capture_output=True)
    ids = subprocess.run([imp_binary(), "tokenize", "-m", model, "-f", str(text), "--no-special", "--ids-only"],
                         check=True, capture_output=True, text=True).stdout.split()
    tokens = [int(t) for t in ids]
    no_bos = subprocess.run([imp_binary(), "tokenize", "-m", model, "-f", str(text), "--no-special", "--ids-only",
                             "--no-bos"], check=True, capture_output=True, text=True).stdout.split()
    bos = tokens[0] if len(tokens) == len(no_bos) + 1 else None  # each chunk then starts with BOS
    assert len(tokens) >= 2 * CTX
    tail = tokens[len(tokens) - CHUNKS * CTX:]

    r = GGUFReader(str(out))
    assert field(r, "general.type") == "imatrix"
    assert field(r, "imatrix.chunk_count") == CHUNKS
    assert field(r, "imatrix.chunk_size") == CTX
    assert field(r, "imatrix.datasets") == ["calib.txt"]
    tensors = {t.name: t for t in r.tensors}

    ref = Recorder.load(model)
    ref.__class__ = Recorder
    ref.sums = {}
    for c in range(CHUNKS):
        chunk = tail[c * CTX:(c + 1) * CTX]
        ref.logits(([bos] + chunk[1:]) if bos is not None else chunk)
    names = sorted(ref.sums)
    assert len(names) == 7 * ref.n_layer
    for name in names:
        s2, cnt = tensors[name + ".in_sum2"], tensors[name + ".counts"]
        assert [int(d) for d in s2.shape] == [len(ref.sums[name]), 1]  # ggml ne (cols, 1)
        assert float(np.asarray(cnt.data).ravel()[0]) == CHUNKS * CTX
        got = np.asarray(s2.data, np.float64).ravel()
        np.testing.assert_allclose(got, ref.sums[name], rtol=2e-3, atol=1e-3 * ref.sums[name].max(), err_msg=name)
