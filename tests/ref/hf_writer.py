"""Tiny Hugging Face checkpoints in each quantization tool's published layout (spec
../shared/specs/formats.md §5-8), written with the `safetensors` package's own serializer.

safetensors' numpy front end knows no BF16 / FP8, so tensors go through the low-level
`serialize_file` with TensorSpec(dtype, shape, data_ptr, data_len) over numpy buffers.
"""
from __future__ import annotations

import json
from pathlib import Path

import ml_dtypes
import numpy as np
import safetensors

E2M1 = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6], np.float32)

# A llama-shaped model: 2 layers, hidden 64, 4 heads of 16 (2 KV heads), FFN 192, vocab 96.
H, L, NH, NKV, HD, FF, V = 64, 2, 4, 2, 16, 192, 96
LINEARS = {  # module suffix → [out, in]
    "self_attn.q_proj": (NH * HD, H),
    "self_attn.k_proj": (NKV * HD, H),
    "self_attn.v_proj": (NKV * HD, H),
    "self_attn.o_proj": (H, NH * HD),
    "mlp.gate_proj": (FF, H),
    "mlp.up_proj": (FF, H),
    "mlp.down_proj": (H, FF),
}


def linear_modules():
    for layer in range(L):
        for suffix, shape in LINEARS.items():
            yield f"model.layers.{layer}.{suffix}", shape


def llama_config(**extra) -> dict:
    c = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": H,
        "intermediate_size": FF, "num_hidden_layers": L, "num_attention_heads": NH,
        "num_key_value_heads": NKV, "head_dim": HD, "vocab_size": V, "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": False,
        "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16",
    }
    c.update(extra)
    return c


def bf16(rng, *shape) -> tuple[str, np.ndarray]:
    return "BF16", rng.standard_normal(shape).astype(np.float32).astype(ml_dtypes.bfloat16)


def f32(x) -> tuple[str, np.ndarray]:
    return "F32", np.asarray(x, np.float32)


def e4m3(values) -> tuple[str, np.ndarray]:
    return "F8_E4M3", np.asarray(values, np.float32).astype(ml_dtypes.float8_e4m3fn)


def unquantized(rng) -> dict:
    """Embedding, norms and lm_head at stored precision (every scheme leaves these alone)."""
    t = {"model.embed_tokens.weight": bf16(rng, V, H), "model.norm.weight": bf16(rng, H),
         "lm_head.weight": bf16(rng, V, H)}
    for layer in range(L):
        t[f"model.layers.{layer}.input_layernorm.weight"] = bf16(rng, H)
        t[f"model.layers.{layer}.post_attention_layernorm.weight"] = bf16(rng, H)
    return t


# TensorSpec takes torch dtype names; the header then carries the safetensors strings.
_TORCH_NAMES = {"BOOL": "bool", "I8": "int8", "U8": "uint8", "I16": "int16", "U16": "uint16", "I32": "int32",
                "U32": "uint32", "I64": "int64", "U64": "uint64", "F16": "float16", "F32": "float32",
                "F64": "float64", "BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
                "F8_E8M0": "float8_e8m0fnu"}


def save(path: Path, tensors: dict[str, tuple[str, np.ndarray]], metadata: dict | None = None) -> None:
    specs, keep = {}, []
    for name, (dtype, arr) in tensors.items():
        arr = np.ascontiguousarray(arr)
        keep.append(arr)
        specs[name] = safetensors.TensorSpec(dtype=_TORCH_NAMES[dtype], shape=list(arr.shape), data_ptr=arr.ctypes.data,
                                             data_len=arr.nbytes)
    safetensors.serialize_file(specs, str(path), metadata)


def write_folder(folder: Path, tensors: dict, config: dict, extra_json: dict | None = None, shards: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    for name, obj in (extra_json or {}).items():
        (folder / name).write_text(json.dumps(obj, indent=2))
    if shards == 1:
        save(folder / "model.safetensors", tensors)
        return folder
    names = sorted(tensors)
    weight_map = {}
    for s in range(shards):
        shard = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: tensors[n] for n in names[s::shards]}
        save(folder / shard, part)
        weight_map.update({n: shard for n in part})
    total = sum(a.nbytes for _, a in tensors.values())
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    return folder


# --- random planes in each scheme's layout, and their dequantization per the spec ---------

def random_e4m3_scales(rng, shape, lo=0.02, hi=2.0) -> np.ndarray:
    return rng.uniform(lo, hi, shape).astype(np.float32).astype(ml_dtypes.float8_e4m3fn)


def nvfp4_planes(rng, out, inp):
    packed = rng.integers(0, 256, (out, inp // 2), dtype=np.uint8)
    scales = random_e4m3_scales(rng, (out, inp // 16))
    return packed, scales


def nvfp4_dequant(packed, scales, g) -> np.ndarray:
    codes = np.stack([packed & 15, packed >> 4], axis=-1).reshape(packed.shape[0], -1)
    s = np.repeat(scales.astype(np.float32), 16, axis=1)
    return (E2M1[codes] * s * np.float32(g)).astype(np.float32)


def mxfp4_dequant(blocks, scales) -> np.ndarray:
    codes = np.stack([blocks & 15, blocks >> 4], axis=-1).reshape(*blocks.shape[:-2], -1)
    exp = np.repeat(scales.astype(np.float32) - 127, 32, axis=-1)
    return (E2M1[codes] * np.exp2(exp)).astype(np.float32)


def pack_rows_of_nibbles_lsb_first(q: np.ndarray) -> np.ndarray:
    """q [..., 8m] uint4 → int32 words [..., m], element 8c+k in bits 4k..4k+3."""
    q = q.astype(np.uint32).reshape(*q.shape[:-1], -1, 8)
    w = np.zeros(q.shape[:-1], np.uint32)
    for k in range(8):
        w |= q[..., k] << np.uint32(4 * k)
    return w.view(np.int32)


AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]


def pack_awq(q: np.ndarray) -> np.ndarray:
    """q [r, 8m] → int32 [r, m]: nibble slot p of word c holds column 8c + AWQ_ORDER[p]."""
    q = q.astype(np.uint32).reshape(q.shape[0], -1, 8)
    w = np.zeros(q.shape[:-1], np.uint32)
    for p, col in enumerate(AWQ_ORDER):
        w |= q[..., col] << np.uint32(4 * p)
    return w.view(np.int32)
