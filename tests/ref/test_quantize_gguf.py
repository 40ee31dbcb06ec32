"""`imp quantize` GGUF outputs read back with gguf-py and checked against ggml itself.

A tiny random llama (all F32, written here with gguf-py; n_embd 256 so K-quant rows fit,
n_ff 384 so ffn_down rows do not and llama.cpp's fallback fires, 4 layers, n_gqa 4) is
quantized with every mix. For each output: general.file_type is llama.cpp's llama_ftype
id, the metadata is copied, every tensor's type is the one llama-quantize would choose
(hand-worked from llama-quant.cpp's rules below), and every quantized tensor's bytes equal
ggml_quantize_chunk (the ggml oracle, no imatrix: what llama-quantize runs) on the source
rows.
"""
from __future__ import annotations

import subprocess

import numpy as np
import pytest
from gguf import GGML_QUANT_SIZES, GGUFReader, GGUFWriter
from gguf import GGMLQuantizationType as T

import ggml_oracle
from test_llama_forward import imp_binary

N_EMBD, N_FF, N_LAYER, N_HEAD, N_KV, N_VOCAB = 256, 384, 4, 8, 2, 300

# llama_ftype ids (include/llama.h)
FILE_TYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9, "q2_k": 10,
             "q3_k_s": 11, "q3_k_m": 12, "q3_k_l": 13, "q4_k_s": 14, "q4_k_m": 15, "q5_k_s": 16,
             "q5_k_m": 17, "q6_k": 18, "iq4_nl": 25, "iq4_xs": 30, "bf16": 32, "mxfp4_moe": 38,
             "nvfp4": 39}
# Bare types without a llama.cpp preset: every quantized tensor gets the type (--pure).
PURE = {"nvfp4": T.NVFP4}


def write_tiny(path, rng, tied=False):
    w = GGUFWriter(str(path), "llama")
    w.add_context_length(128)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_KV)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_string("test.marker", "kept")
    data = {}

    def add(name, shape, scale=0.05):
        a = (rng.standard_normal(shape) * scale).astype(np.float32)
        data[name] = a
        w.add_tensor(name, a)

    hd = N_EMBD // N_HEAD
    add("token_embd.weight", (N_VOCAB, N_EMBD), 1.0)
    add("output_norm.weight", (N_EMBD,), 1.0)
    if not tied:
        add("output.weight", (N_VOCAB, N_EMBD))
    for l in range(N_LAYER):
        p = f"blk.{l}."
        add(p + "attn_norm.weight", (N_EMBD,), 1.0)
        add(p + "attn_q.weight", (N_HEAD * hd, N_EMBD))
        add(p + "attn_k.weight", (N_KV * hd, N_EMBD))
        add(p + "attn_v.weight", (N_KV * hd, N_EMBD))
        add(p + "attn_output.weight", (N_EMBD, N_HEAD * hd))
        add(p + "ffn_norm.weight", (N_EMBD,), 1.0)
        add(p + "ffn_gate.weight", (N_FF, N_EMBD))
        add(p + "ffn_up.weight", (N_FF, N_EMBD))
        add(p + "ffn_down.weight", (N_EMBD, N_FF))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return data


def fallback(t):
    return {T.Q2_K: T.IQ4_NL, T.Q3_K: T.IQ4_NL, T.IQ4_XS: T.IQ4_NL, T.Q4_K: T.Q5_0, T.Q5_K: T.Q5_1,
            T.Q6_K: T.Q8_0}.get(t, t)


def expected_types(mix: str, tied: bool) -> dict[str, T]:
    """llama-quantize's choices for the tiny model, worked out by hand from llama-quant.cpp
    (n_layer 4 → use_more_bits is true for layers 2 and 3; n/8 = 0, n/16 = 0)."""
    if mix in PURE:
        return {name: (T.F32 if name.endswith("norm.weight") else PURE[mix])
                for name in (["token_embd.weight", "output_norm.weight"] + ([] if tied else ["output.weight"]) +
                             [f"blk.{l}.{n}.weight" for l in range(N_LAYER)
                              for n in ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm",
                                        "ffn_gate", "ffn_up", "ffn_down")])}
    base = {"q4_0": T.Q4_0, "q4_1": T.Q4_1, "q5_0": T.Q5_0, "q5_1": T.Q5_1, "q8_0": T.Q8_0, "q2_k": T.Q2_K,
            "q3_k_s": T.Q3_K, "q3_k_m": T.Q3_K, "q3_k_l": T.Q3_K, "q4_k_s": T.Q4_K, "q4_k_m": T.Q4_K,
            "q5_k_s": T.Q5_K, "q5_k_m": T.Q5_K, "q6_k": T.Q6_K, "iq4_nl": T.IQ4_NL, "iq4_xs": T.IQ4_XS,
            "f16": T.F16, "bf16": T.BF16, "f32": T.F32, "mxfp4_moe": T.MXFP4}[mix]
    out = {}
    quantized = base not in (T.F16, T.BF16, T.F32)
    head = T.Q8_0 if mix in ("q8_0", "mxfp4_moe") else T.Q6_K
    if not tied:
        out["output.weight"] = head if quantized else base
    out["token_embd.weight"] = head if (tied and quantized) else (T.Q8_0 if mix == "mxfp4_moe" else base)
    out["output_norm.weight"] = T.F32
    for l in range(N_LAYER):
        p = f"blk.{l}."
        more = l >= 2
        v = base
        down = base
        o = base
        if mix == "q2_k":
            v, down, o = T.Q4_K, T.Q3_K, T.Q3_K  # n_gqa 4
        elif mix == "q3_k_m":
            v = T.Q5_K if l < 2 else T.Q4_K
            down, o = T.Q4_K, T.Q4_K
        elif mix == "q3_k_l":
            v, down, o = T.Q5_K, T.Q5_K, T.Q5_K
        elif mix in ("iq4_nl", "iq4_xs"):
            v = T.Q5_K
        elif mix in ("q4_k_m", "q5_k_m"):
            v = T.Q6_K if more else base
            down = T.Q6_K if more else base
        elif mix == "q4_k_s":
            v = T.Q5_K
        elif mix == "mxfp4_moe":
            v = down = o = T.Q8_0
        rest = T.Q8_0 if mix == "mxfp4_moe" else base
        out[p + "attn_norm.weight"] = out[p + "ffn_norm.weight"] = T.F32
        out[p + "attn_q.weight"] = out[p + "attn_k.weight"] = rest
        out[p + "ffn_gate.weight"] = out[p + "ffn_up.weight"] = rest
        out[p + "attn_v.weight"] = v
        out[p + "attn_output.weight"] = o
        out[p + "ffn_down.weight"] = fallback(down) if N_FF % GGML_QUANT_SIZES[down][0] else down
    return out


def quantize(src, dst, typ, *extra):
    p = subprocess.run([imp_binary(), "quantize", str(src), str(dst), "--type", typ, "--threads", "2", *extra],
                       capture_output=True, text=True, timeout=600)
    return p


@pytest.mark.parametrize("tied", [False, True])
def test_every_mix_matches_llama_quantize(tmp_path, rng, tied):
    src = tmp_path / "tiny.gguf"
    data = write_tiny(src, rng, tied)
    for mix, ftype in FILE_TYPE.items():
        out = tmp_path / f"{mix}.gguf"
        p = quantize(src, out, mix.upper())
        assert p.returncode == 0, p.stderr
        assert "done:" in p.stdout
        r = GGUFReader(str(out))
        f = r.fields
        assert int(f["general.file_type"].parts[-1][0]) == ftype, mix
        assert int(f["general.quantization_version"].parts[-1][0]) == 2
        assert bytes(f["test.marker"].parts[-1]).decode() == "kept"
        assert int(f["llama.block_count"].parts[-1][0]) == N_LAYER
        want = expected_types(mix, tied)
        got = {t.name: T(t.tensor_type) for t in r.tensors}
        assert got.keys() == want.keys()
        for name, t in got.items():
            assert t == want[name], (mix, name, t.name, want[name].name)
        for t in r.tensors:
            x = data[t.name]
            if T(t.tensor_type) == T.F32:
                np.testing.assert_array_equal(np.asarray(t.data).reshape(x.shape), x)
                continue
            if T(t.tensor_type) in (T.F16, T.BF16):
                continue  # plain casts: covered by the gtest against the formats core
            rows, cols = x.shape
            be, bb = GGML_QUANT_SIZES[T(t.tensor_type)]
            ref = ggml_oracle.quantize_chunk(int(t.tensor_type), x.reshape(-1), rows, cols, bb, be)
            got_bytes = np.asarray(t.data, dtype=np.uint8).reshape(-1)
            assert np.array_equal(got_bytes, ref), (mix, t.name, T(t.tensor_type).name)


def test_quantize_errors(tmp_path, rng):
    src = tmp_path / "tiny.gguf"
    write_tiny(src, rng)
    p = quantize(src, tmp_path / "a.gguf", "q9_k")
    assert p.returncode != 0 and "unknown --type" in p.stderr
    assert quantize(src, tmp_path / "a.gguf", "q8_0").returncode == 0
    p = quantize(src, tmp_path / "a.gguf", "q8_0")
    assert p.returncode != 0 and "--force" in p.stderr
    assert quantize(src, tmp_path / "a.gguf", "q4_0", "--force").returncode == 0
    assert int(GGUFReader(str(tmp_path / "a.gguf")).fields["general.file_type"].parts[-1][0]) == 2
