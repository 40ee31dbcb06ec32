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
