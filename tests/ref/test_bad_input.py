"""Bad input to `imp run`: each a clear imp::Error ("imp: error: …" naming what was wrong)
and exit status 1 — never a crash, an internal error or a hang. Uses the tiny Hugging Face
folder tests/data/hf-tiny-llama (copied and broken per case) and a GGUF written here."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

TINY = Path(__file__).resolve().parent.parent / "data" / "hf-tiny-llama"


def imp_binary() -> str:
    b = os.environ.get("IMP_BINARY")
    if not b or not Path(b).exists():
        pytest.skip("IMP_BINARY not set (run through ctest or set it to build/imp)")
    return b


def run_fails(args, *needles):
    p = subprocess.run([imp_binary(), "run", *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, f"exit {p.returncode}: {p.stderr}"
    assert "imp: error:" in p.stderr, p.stderr
    for n in needles:
        assert n in p.stderr, f"{n!r} not in {p.stderr!r}"
    return p.stderr


def copy_tiny(tmp_path) -> Path:
    d = tmp_path / "model"
    shutil.copytree(TINY, d)
    return d


def test_tiny_model_runs(tmp_path):
    """The unbroken folder runs (so the failures below are the breakage's)."""
    p = subprocess.run([imp_binary(), "run", "-m", str(TINY), "-p", "The capital", "-n", "4", "--temp", "0"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "memory: peak RSS" in p.stderr


def test_prompt_longer_than_context():
    ids = ",".join(str(i % 300) for i in range(40))
    run_fails(["-m", str(TINY), "--tokens", ids, "--ctx", "16", "-n", "1"], "40", "16")


def write_gguf(path: Path, arch: str, n_embd: int = 32, n_head: int = 2) -> Path:
    """A GGUF with the hyper-parameters and only a token embedding."""
    gguf = pytest.importorskip("gguf")
    w = gguf.GGUFWriter(str(path), arch)
    w.add_context_length(64)
    w.add_embedding_length(n_embd)
    w.add_block_count(1)
    w.add_head_count(n_head)
    w.add_feed_forward_length(64)
    w.add_tensor("token_embd.weight", np.random.default_rng(0).standard_normal((16, n_embd), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_unknown_architecture_gguf(tmp_path):
    path = write_gguf(tmp_path / "phi.gguf", "phi2")
    run_fails(["-m", str(path), "--tokens", "1,2", "-n", "1"], "unknown architecture 'phi2'")


def test_unknown_architecture_folder(tmp_path):
    d = copy_tiny(tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg["model_type"] = "gpt_neox"
    (d / "config.json").write_text(json.dumps(cfg))
    run_fails(["-m", str(d), "--tokens", "1,2", "-n", "1"], "gpt_neox")


def test_tensors_not_matching_config(tmp_path):
    d = copy_tiny(tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg["intermediate_size"] = 96  # the stored FFN weights have 128 rows
    (d / "config.json").write_text(json.dumps(cfg))
    run_fails(["-m", str(d), "--tokens", "1,2", "-n", "1"], "ffn_gate.weight", "[128, 64]", "[96, 64]")


def test_tensor_missing(tmp_path):
    d = copy_tiny(tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg["num_hidden_layers"] = 3  # the file has 2 layers
    (d / "config.json").write_text(json.dumps(cfg))
    run_fails(["-m", str(d), "--tokens", "1,2", "-n", "1"], "blk.2.", "missing")


def test_tokenizer_missing_from_folder(tmp_path):
    d = copy_tiny(tmp_path)
    (d / "tokenizer.json").unlink()
    run_fails(["-m", str(d), "-p", "hello", "-n", "1"], "tokenizer.json")


def test_kv_type_unknown():
    run_fails(["-m", str(TINY), "--tokens", "1,2", "-n", "1", "--kv-type", "int3"], "int3")


def test_kv_type_unsupported_for_head_dim(tmp_path):
    """nvfp4 rows are 16-element blocks: a model with head_dim 8 cannot use them (checked
    before any weight is touched)."""
    path = write_gguf(tmp_path / "hd8.gguf", "llama", n_embd=32, n_head=4)
    run_fails(["-m", str(path), "--tokens", "1,2", "-n", "1", "--kv-type", "nvfp4"], "nvfp4", "head_dim 8")
