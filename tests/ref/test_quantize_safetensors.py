"""`imp quantize` safetensors folders read by the peers' library (safetensors + numpy):
the ModelOpt NVFP4, compressed-tensors NVFP4, FP8 and GPTQ layouts have the tensor names,
dtypes and shapes NVIDIA's/vLLM's/AutoGPTQ's loaders expect, the config files name the
scheme, and the NVFP4 values decode (E2M1 × E4M3 × G, decoded here with ml_dtypes) to
within NVFP4's error of the source weights."""
from __future__ import annotations

import json
import subprocess

import ml_dtypes
import numpy as np
from gguf import GGUFReader
import safetensors

from test_llama_forward import imp_binary
from test_quantize_gguf import N_EMBD, N_FF, N_KV, N_HEAD, write_tiny

DTYPES = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "U8": np.uint8, "F8_E4M3": ml_dtypes.float8_e4m3fn}


def load_file(path):
    """The safetensors library's own parser (safetensors.deserialize), bytes → numpy."""
    out = {}
    for name, t in safetensors.deserialize(open(path, "rb").read()):
        out[name] = np.frombuffer(bytes(t["data"]), DTYPES[t["dtype"]]).reshape(t["shape"])
    return out


E2M1 = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6], np.float32)


def quantize(src, dst, typ, *extra):
    p = subprocess.run([imp_binary(), "quantize", str(src), str(dst), "--type", typ, "--threads", "2", *extra],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    return p


def hf_rows(x, heads):
    """llama.cpp (GGUF) RoPE row order → HF order, per head of hd rows."""
    hd = x.shape[0] // heads
    return x.reshape(heads, hd // 2, 2, -1).swapaxes(1, 2).reshape(x.shape)


def test_modelopt_and_ct_nvfp4(tmp_path, rng):
    src = tmp_path / "tiny.gguf"
    data = write_tiny(src, rng)
    quantize(src, tmp_path / "nv", "nvfp4")
    p = quantize(src, tmp_path / "ct", "nvfp4", "--layout", "compressed-tensors")
    assert "no input_scale" in p.stdout
    hq = json.loads((tmp_path / "nv/hf_quant_config.json").read_text())
    assert hq["producer"]["name"] == "modelopt"
    assert hq["quantization"]["quant_algo"] == "NVFP4" and hq["quantization"]["group_size"] == 16
    assert "lm_head" in hq["quantization"]["exclude_modules"]
    cfg = json.loads((tmp_path / "nv/config.json").read_text())
    assert cfg["quantization_config"]["quant_algo"] == "NVFP4" and cfg["model_type"] == "llama"
    assert cfg["num_key_value_heads"] == N_KV and cfg["intermediate_size"] == N_FF
    ct = json.loads((tmp_path / "ct/config.json").read_text())["quantization_config"]
    assert ct["quant_method"] == "compressed-tensors" and ct["format"] == "nvfp4-pack-quantized"

    nv = load_file(str(tmp_path / "nv/model.safetensors"))
    cts = load_file(str(tmp_path / "ct/model.safetensors"))
    assert nv["model.embed_tokens.weight"].dtype == np.float32  # kept
    for name, heads in (("self_attn.q_proj", N_HEAD), ("self_attn.k_proj", N_KV), ("mlp.down_proj", 0)):
        m = f"model.layers.1.{name}"
        w, s, g = nv[m + ".weight"], nv[m + ".weight_scale"], nv[m + ".weight_scale_2"]
        gguf_name = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "mlp.down_proj": "ffn_down"}[name]
        x = data[f"blk.1.{gguf_name}.weight"]
        if heads:
            x = hf_rows(x, heads)
        assert w.dtype == np.uint8 and w.shape == (x.shape[0], x.shape[1] // 2)
        assert s.shape == (x.shape[0], x.shape[1] // 16) and g.shape == () and g.dtype == np.float32
        codes = np.stack([w & 15, w >> 4], axis=-1).reshape(x.shape)
        scale = s.astype(np.float32)
        y = E2M1[codes] * np.repeat(scale, 16, axis=1) * g
        rel = np.linalg.norm(y - x) / np.linalg.norm(x)
        assert rel < 0.15, (name, rel)  # NVFP4 RTN on Gaussian data: ~0.1
        # compressed-tensors: the same codes and block scales, the global scale as a divisor
        np.testing.assert_array_equal(cts[m + ".weight_packed"], w)
        np.testing.assert_array_equal(cts[m + ".weight_scale"], s)
        np.testing.assert_allclose(1.0 / cts[m + ".weight_global_scale"][0], g, rtol=1e-6)


def test_fp8_and_gptq_layouts(tmp_path, rng):
    src = tmp_path / "tiny.gguf"
    data = write_tiny(src, rng)
    quantize(src, tmp_path / "fp8b", "fp8-block")
    quantize(src, tmp_path / "gptq", "int4")
    b = load_file(str(tmp_path / "fp8b/model.safetensors"))
    w, si = b["model.layers.0.mlp.down_proj.weight"], b["model.layers.0.mlp.down_proj.weight_scale_inv"]
    assert w.shape == (N_EMBD, N_FF) and si.shape == (2, 3)
    y = w.astype(np.float32) * np.kron(si, np.ones((128, 128), np.float32))
    x = data["blk.0.ffn_down.weight"]
    assert np.linalg.norm(y - x) / np.linalg.norm(x) < 0.05
    assert json.loads((tmp_path / "fp8b/config.json").read_text())["quantization_config"]["weight_block_size"] == [128, 128]

    g = load_file(str(tmp_path / "gptq/model.safetensors"))
    m = "model.layers.2.mlp.down_proj"
    qw, qz, sc, gi = g[m + ".qweight"], g[m + ".qzeros"], g[m + ".scales"], g[m + ".g_idx"]
    assert qw.dtype == np.int32 and qw.shape == (N_FF // 8, N_EMBD)
    assert qz.shape == (N_FF // 128, N_EMBD // 8) and sc.dtype == np.float16 and sc.shape == (N_FF // 128, N_EMBD)
    np.testing.assert_array_equal(gi, np.arange(N_FF) // 128)
    # AutoGPTQ's v1 dequantization: W[k, n] = s[g, n] · (q[k, n] − ((z + 1) & 15))
    u = qw.view(np.uint32)
    q = np.stack([(u >> (4 * j)) & 15 for j in range(8)], axis=1).reshape(N_FF, N_EMBD)
    uz = qz.view(np.uint32)
    z = (np.stack([(uz >> (4 * j)) & 15 for j in range(8)], axis=2).reshape(N_FF // 128, N_EMBD) + 1) & 15
    y = (sc.astype(np.float32)[gi] * (q.astype(np.float32) - z[gi])).T
    x = data["blk.2.ffn_down.weight"]
    assert np.linalg.norm(y - x) / np.linalg.norm(x) < 0.15
    cfg = json.loads((tmp_path / "gptq/config.json").read_text())["quantization_config"]
    assert (cfg["quant_method"], cfg["bits"], cfg["group_size"], cfg["desc_act"]) == ("gptq", 4, 128, False)


# --- GGUF → folder → forward: every folder scheme `imp quantize` writes loads and runs --------

TOKENS = [1, 5, 17, 42, 99, 7, 250, 3]
# Relative logit error ‖y − y_F32‖ / ‖y_F32‖ allowed per output, for the tiny random model
# (Gaussian weights, σ 0.05): roughly each format's weight round-trip error, which the
# residual stream and 4 layers carry into the logits about one to one. Measured: NVFP4
# checkpoint 0.16, MXFP4 0.18, INT4 g128 0.19, ggml NVFP4 0.23 (no global scale: σ 0.05
# weights put its UE4M3 block scales near the subnormal range), FP8 0.04–0.05, F16 6e-4;
# the bounds are about twice those.
SCHEMES = [("nvfp4", [], 0.3), ("nvfp4-ct", ["--layout", "compressed-tensors"], 0.3), ("fp8", [], 0.1),
           ("fp8-channel", [], 0.1), ("fp8-block", [], 0.1), ("mxfp4", [], 0.35), ("int4", [], 0.35),
           ("f16", [], 0.002)]


def run_logits(model, tmp_path, tag):
    out = tmp_path / f"{tag}.logits"
    p = subprocess.run([imp_binary(), "run", "-m", str(model), "--tokens", ",".join(map(str, TOKENS)), "-n", "0",
                        "-t", "2", "--act-quant", "f32", "--dump-logits", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, (tag, p.stderr)
    a = np.fromfile(out, dtype=np.float32)
    assert a.size % len(TOKENS) == 0 and np.isfinite(a).all(), tag
    return a.reshape(len(TOKENS), -1)


def test_every_folder_scheme_from_gguf_loads_and_runs(tmp_path, rng):
    """The quality table's folder rows: a (tied, like SmolLM2) GGUF quantized to each folder
    scheme — plus ggml NVFP4 GGUF — runs `imp run` to logits close to the F32 source's."""
    src = tmp_path / "tiny.gguf"
    write_tiny(src, rng, tied=True)
    ref = run_logits(src, tmp_path, "f32")
    outs = [(name, tmp_path / name, ["nvfp4" if name == "nvfp4-ct" else name, *extra], tol)
            for name, extra, tol in SCHEMES]
    outs.append(("nvfp4 gguf", tmp_path / "nvfp4.gguf", ["nvfp4"], 0.45))
    for name, out, args, tol in outs:
        quantize(src, out, args[0], *args[1:])
        if out.is_dir():
            cfg = json.loads((out / "config.json").read_text())
            assert cfg["tie_word_embeddings"] is True, name
        y = run_logits(out, tmp_path, name.replace(" ", "-"))
        assert y.shape == ref.shape, name
        rel = np.linalg.norm(y - ref) / np.linalg.norm(ref)
        assert 0 < rel < tol, (name, rel)


def test_int4_rows_the_group_cannot_hold_fall_back(tmp_path, rng):
    """INT4 g128 on rows that are not a multiple of 128 (SmolLM2's 576): those linears stay at
    source precision, the summary says so, the GPTQ config lists what each block quantizes
    (transformers' modules_in_block_to_quantize), and the folder runs."""
    from gguf import GGUFWriter
    src = tmp_path / "odd.gguf"
    n_embd, n_ff, n_head, n_kv, n_vocab = 192, 384, 8, 2, 300  # 192 % 128 ≠ 0; 384 % 128 = 0
    w = GGUFWriter(str(src), "llama")
    w.add_context_length(64)
    w.add_embedding_length(n_embd)
    w.add_block_count(2)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    hd = n_embd // n_head
    shapes = {"token_embd.weight": (n_vocab, n_embd), "output_norm.weight": (n_embd,)}
    for l in range(2):
        p = f"blk.{l}."
        shapes |= {p + "attn_norm.weight": (n_embd,), p + "ffn_norm.weight": (n_embd,),
                   p + "attn_q.weight": (n_head * hd, n_embd), p + "attn_k.weight": (n_kv * hd, n_embd),
                   p + "attn_v.weight": (n_kv * hd, n_embd), p + "attn_output.weight": (n_embd, n_head * hd),
                   p + "ffn_gate.weight": (n_ff, n_embd), p + "ffn_up.weight": (n_ff, n_embd),
                   p + "ffn_down.weight": (n_embd, n_ff)}
    for name, shape in shapes.items():
        scale = 1.0 if len(shape) == 1 or name.startswith("token_embd") else 0.05
        w.add_tensor(name, (rng.standard_normal(shape) * scale).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    p = quantize(src, tmp_path / "int4", "int4")
    assert "fallback: 12 tensors" in p.stdout, p.stdout
    assert "model.layers.0.mlp.gate_proj.weight" in p.stdout
    t = load_file(str(tmp_path / "int4/model.safetensors"))
    assert "model.layers.1.mlp.down_proj.qweight" in t
    assert t["model.layers.1.mlp.up_proj.weight"].dtype == np.float32
    qc = json.loads((tmp_path / "int4/config.json").read_text())["quantization_config"]
    assert qc["modules_in_block_to_quantize"] == [["mlp.down_proj"]]
    # --quantize forcing a tensor the group cannot hold is an error naming it and --keep.
    bad = subprocess.run([imp_binary(), "quantize", str(src), str(tmp_path / "bad"), "--type", "int4",
                          "--quantize", "gate_proj"], capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and "gate_proj" in bad.stderr and "--keep" in bad.stderr
    assert not (tmp_path / "bad").exists()
    ref = run_logits(src, tmp_path, "odd-f32")
    y = run_logits(tmp_path / "int4", tmp_path, "odd-int4")
    assert 0 < np.linalg.norm(y - ref) / np.linalg.norm(ref) < 0.3


def test_gguf_tokenizer_travels_into_the_folder(tmp_path):
    """A GGUF input's byte-level BPE tokenizer is written as tokenizer.json +
    tokenizer_config.json: imp tokenizes the folder exactly as the GGUF, and so does Hugging
    Face `tokenizers` reading the exported tokenizer.json."""
    import os
    from pathlib import Path
    model = Path(os.environ.get("IMP_MODEL_CACHE", Path.home() / ".cache/imp/models")) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not model.exists():
        import pytest
        pytest.skip(f"{model} not downloaded (scripts/fetch-models.sh)")
    out = tmp_path / "fp8"
    quantize(model, out, "fp8")
    assert (out / "tokenizer.json").exists() and (out / "tokenizer_config.json").exists()
    cfg = json.loads((out / "tokenizer_config.json").read_text())
    assert cfg["eos_token"] == "<|im_end|>" and "chat_template" in cfg
    text = ("It is a truth universally acknowledged, that a single man in possession of a good fortune, "
            "must be in want of a wife.\n\n  Numbers 12345 and 3.14; émigré café — “quotes” <|im_start|>user\nhi")
    def ids(m):
        p = subprocess.run([imp_binary(), "tokenize", "-m", str(m), "--ids-only", "--no-bos", text],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        return [int(x) for x in p.stdout.split()]
    want = ids(model)
    assert ids(out) == want
    from tokenizers import Tokenizer
    assert Tokenizer.from_file(str(out / "tokenizer.json")).encode(text, add_special_tokens=False).ids == want


def test_gemma3_gguf_to_folder_writes_hf_norm_gains(tmp_path):
    """Gemma 3 GGUFs store each RMSNorm gain as 1 + w, Hugging Face checkpoints as w: the
    folder gets w (exactly the GGUF value − 1 in F32), and the summary says the SentencePiece
    tokenizer is not exported."""
    import os
    from pathlib import Path
    model = Path(os.environ.get("IMP_MODEL_CACHE", Path.home() / ".cache/imp/models")) / "gemma-3-270m-q4_k_m.gguf"
    if not model.exists():
        import pytest
        pytest.skip(f"{model} not downloaded (scripts/fetch-models.sh)")
    out = tmp_path / "fp8"
    p = quantize(model, out, "fp8")
    assert "SentencePiece" in p.stdout and "not exported" in p.stdout
    t = load_file(str(out / "model.safetensors"))
    r = GGUFReader(str(model))
    names = {"blk.0.attn_norm.weight": "model.layers.0.input_layernorm.weight",
             "blk.0.post_attention_norm.weight": "model.layers.0.post_attention_layernorm.weight",
             "blk.0.ffn_norm.weight": "model.layers.0.pre_feedforward_layernorm.weight",
             "blk.0.post_ffw_norm.weight": "model.layers.0.post_feedforward_layernorm.weight",
             "blk.0.attn_q_norm.weight": "model.layers.0.self_attn.q_norm.weight",
             "output_norm.weight": "model.norm.weight"}
    gg = {x.name: np.asarray(x.data, np.float32).reshape(-1) for x in r.tensors if x.name in names}
    assert gg.keys() == names.keys()
    for g, h in names.items():
        np.testing.assert_array_equal(t[h], gg[g] - np.float32(1), err_msg=h)
    assert json.loads((out / "config.json").read_text())["model_type"] == "gemma3_text"


def test_calibration_writes_static_input_scales(tmp_path):
    """With --calib, the NVFP4 / FP8 folders carry ModelOpt's static input_scale = amax/(6·448)
    (NVFP4) or amax/448 (FP8) of each quantized linear's calibration input (compressed-tensors:
    input_global_scale = its divisor, and W4A4 input_activations in the config); linears that
    read the same input (q/k/v) share it; `--act-emulate nvfp4` then uses the checkpoint's
    scale instead of a dynamic one."""
    import os
    from pathlib import Path
    model = Path(os.environ.get("IMP_MODEL_CACHE", Path.home() / ".cache/imp/models")) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not model.exists():
        import pytest
        pytest.skip(f"{model} not downloaded (scripts/fetch-models.sh)")
    text = tmp_path / "calib.txt"
    text.write_text(("It is a truth universally acknowledged, that a single man in possession of a good fortune, "
                     "must be in want of a wife. ") * 20)
    keep = ["--keep", r"layers\.([1-9]|[12][0-9])\."]  # only layer 0 is quantized: a quick test
    calib = ["--calib", str(text), "--calib-chunks", "1", "--ctx", "64", *keep]
    nv = tmp_path / "nv"
    p = quantize(model, nv, "nvfp4", *calib)
    assert "static input scales from the calibration's amax written for 7 of 7" in p.stdout, p.stdout
    t = load_file(str(nv / "model.safetensors"))
    s = {n: float(t[f"model.layers.0.{n}.input_scale"]) for n in
         ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
          "mlp.up_proj", "mlp.down_proj")}
    assert all(v > 0 for v in s.values())
    assert s["self_attn.q_proj"] == s["self_attn.k_proj"] == s["self_attn.v_proj"]
    assert s["mlp.gate_proj"] == s["mlp.up_proj"]
    assert "model.layers.1.self_attn.q_proj.input_scale" not in t
    ct = tmp_path / "ct"
    quantize(model, ct, "nvfp4", "--layout", "compressed-tensors", *calib)
    tc = load_file(str(ct / "model.safetensors"))
    np.testing.assert_allclose(1.0 / tc["model.layers.0.mlp.down_proj.input_global_scale"][0],
                               s["mlp.down_proj"], rtol=1e-6)
    ia = json.loads((ct / "config.json").read_text())["quantization_config"]["config_groups"]["group_0"]
    assert ia["input_activations"]["num_bits"] == 4
    fp8 = tmp_path / "fp8"
    quantize(model, fp8, "fp8", *calib)
    tf = load_file(str(fp8 / "model.safetensors"))
    np.testing.assert_allclose(float(tf["model.layers.0.mlp.down_proj.input_scale"]) * 448,
                               s["mlp.down_proj"] * 6 * 448, rtol=1e-6)  # the same amax
    r = subprocess.run([imp_binary(), "perplexity", "-m", str(nv), "-f", str(text), "--ctx", "64", "--chunks", "2",
                        "--act-emulate", "nvfp4", "-t", "2", "--json", "--no-progress"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert "checkpoint input_scale for 7 linears" in json.dumps(j), j


def test_gemma3_folder_runs_like_its_gguf(tmp_path):
    """A gemma3 folder runs: the same BF16 weights as a folder (norms kept F32) and as a GGUF
    give the same logits (the loader adds back the 1 the writer took off the norm gains), and
    `--tokenizer` lends the GGUF's SentencePiece tokenizer to the folder for perplexity."""
    import os
    from pathlib import Path
    model = Path(os.environ.get("IMP_MODEL_CACHE", Path.home() / ".cache/imp/models")) / "gemma-3-270m-q4_k_m.gguf"
    if not model.exists():
        import pytest
        pytest.skip(f"{model} not downloaded (scripts/fetch-models.sh)")
    folder, gguf = tmp_path / "bf16", tmp_path / "bf16.gguf"
    quantize(model, folder, "bf16", "--keep", "norm")
    quantize(model, gguf, "bf16")
    tokens = "2,1596,6037,529,7001,563,4882"
    out = []
    for m in (folder, gguf):
        f = tmp_path / (m.name + ".logits")
        p = subprocess.run([imp_binary(), "run", "-m", str(m), "--tokens", tokens, "-n", "0", "-t", "2",
                            "--act-quant", "f32", "--dump-logits", str(f)], capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stderr
        out.append(np.fromfile(f, np.float32))
    assert np.isfinite(out[0]).all()
    assert np.linalg.norm(out[0] - out[1]) / np.linalg.norm(out[1]) < 1e-6
    text = tmp_path / "t.txt"
    text.write_text("It is a truth universally acknowledged, that a single man in possession of a good fortune, "
                    "must be in want of a wife. " * 12)
    def ppl(m, *extra):
        p = subprocess.run([imp_binary(), "perplexity", "-m", str(m), "-f", str(text), "--ctx", "64", "-t", "2",
                            "--json", "--no-progress", *extra], capture_output=True, text=True, timeout=600)
        return p
    no_tok = ppl(folder)
    assert no_tok.returncode != 0 and "carries no tokenizer" in no_tok.stderr
    a = ppl(folder, "--tokenizer", str(model))
    assert a.returncode == 0, a.stderr
    assert json.loads(a.stdout)["ppl"] == json.loads(ppl(gguf).stdout)["ppl"]
