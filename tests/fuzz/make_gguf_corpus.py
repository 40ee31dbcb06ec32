"""Writes the GGUF fuzz seed corpus (tests/fuzz/corpus/gguf/, a few KB) with gguf-py:
small valid files covering every KV type, string arrays, several tensor types, a custom
alignment, a metadata-only file and a version-2 header. Run: .venv/bin/python tests/fuzz/make_gguf_corpus.py"""
from pathlib import Path

import gguf
import numpy as np

VT = gguf.GGUFValueType
QT = gguf.GGMLQuantizationType
OUT = Path(__file__).parent / "corpus" / "gguf"
rng = np.random.default_rng(1)


def write(name, arch, kv, tensors, alignment=None):
    w = gguf.GGUFWriter(str(OUT / name), arch)
    if alignment:
        w.add_custom_alignment(alignment)
    for key, value, vt, sub in kv:
        w.add_key_value(key, value, vt, sub_type=sub)
    for tname, data, raw in tensors:
        w.add_tensor(tname, data, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


OUT.mkdir(parents=True, exist_ok=True)
every_kv = [("k.u8", 7, VT.UINT8, None), ("k.i8", -7, VT.INT8, None), ("k.u16", 700, VT.UINT16, None),
            ("k.i16", -700, VT.INT16, None), ("k.u32", 70000, VT.UINT32, None), ("k.i32", -70000, VT.INT32, None),
            ("k.f32", 0.5, VT.FLOAT32, None), ("k.bool", True, VT.BOOL, None), ("k.str", "s", VT.STRING, None),
            ("k.u64", 2**40, VT.UINT64, None), ("k.i64", -2**40, VT.INT64, None), ("k.f64", 0.25, VT.FLOAT64, None),
            ("k.arr_i32", [1, 2, 3], VT.ARRAY, VT.INT32), ("k.arr_f32", [1.5], VT.ARRAY, VT.FLOAT32),
            ("k.arr_bool", [True, False], VT.ARRAY, VT.BOOL), ("k.arr_str", ["a", "bc"], VT.ARRAY, VT.STRING)]
write("metadata_only.gguf", "llama", every_kv, [])
llama_kv = [("llama.context_length", 128, VT.UINT32, None), ("llama.embedding_length", 64, VT.UINT32, None),
            ("llama.block_count", 1, VT.UINT32, None), ("llama.feed_forward_length", 96, VT.UINT32, None),
            ("llama.attention.head_count", 4, VT.UINT32, None),
            ("llama.attention.layer_norm_rms_epsilon", 1e-5, VT.FLOAT32, None),
            ("tokenizer.ggml.model", "llama", VT.STRING, None),
            ("tokenizer.ggml.tokens", ["<unk>", "<s>", "</s>", "a"], VT.ARRAY, VT.STRING),
            ("tokenizer.ggml.scores", [0.0, 0.0, 0.0, -1.0], VT.ARRAY, VT.FLOAT32)]
x = rng.standard_normal((2, 64)).astype(np.float32)
write("tiny_llama.gguf", "llama", llama_kv, [
    ("token_embd.weight", x, None),
    ("output_norm.weight", x[0], None),
    ("blk.0.attn_q.weight", gguf.quants.quantize(x, QT.Q4_0), QT.Q4_0),
    ("blk.0.attn_k.weight", gguf.quants.quantize(x, QT.Q8_0), QT.Q8_0),
    ("blk.0.attn_v.weight", x.astype(np.float16), None),
    ("blk.0.ffn_up.weight", gguf.quants.quantize(x, QT.BF16), QT.BF16),
])
y = rng.standard_normal((1, 256)).astype(np.float32)
write("aligned64.gguf", "qwen3", every_kv[:4], [
    ("blk.0.ffn_down.weight", rng.integers(0, 256, (1, 144), dtype=np.uint8), QT.Q4_K),
    ("blk.0.ffn_gate.weight", gguf.quants.quantize(y, QT.MXFP4), QT.MXFP4),
    ("blk.0.ffn_up.weight", y, None),
], alignment=64)
v2 = bytearray((OUT / "tiny_llama.gguf").read_bytes())
v2[4:8] = (2).to_bytes(4, "little")
(OUT / "tiny_llama_v2.gguf").write_bytes(bytes(v2))
