"""Checkpoints written by NVIDIA ModelOpt itself (tests/data/ckpt, made on a CPU by
scripts/make-modelopt-checkpoints.py from a tiny random Llama): imp loads them, decodes
them, and its own reference quantizers reproduce ModelOpt's bytes from the same weights."""
import json
import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

import imp_capi

DATA = Path(__file__).resolve().parent.parent / "data" / "ckpt"


def read_safetensors(path: Path) -> dict[str, tuple[str, list[int], bytes]]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    return {k: (v["dtype"], v["shape"], body[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in header.items() if k != "__metadata__"}


def imp_dump(folder: Path, name: str, shape) -> np.ndarray:
    out = subprocess.run([os.environ["IMP_BINARY"], "dump", str(folder), name], check=True,
                         capture_output=True).stdout
    return np.frombuffer(out, np.float32).reshape(shape)


def linears(ref: np.lib.npyio.NpzFile) -> list[str]:
    return sorted(k[:-len(".orig")] for k in ref.files if k.endswith(".orig"))


# ModelOpt's NVFP4 export gives layers that inference engines fuse (q/k/v, gate/up) one
# shared per-tensor scale: the one of the group's largest |w| (its FP8 export does not). To reproduce its bytes, imp
# quantizes the group's rows together (the per-tensor scale comes from all of them; block
# scales and codes are per row) and splits them again.
FUSED = (("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"), ("mlp.gate_proj", "mlp.up_proj"))


def quantize_like_modelopt(fmt: str, ref, name: str, fused: bool):
    prefix, leaf = name.rsplit(".", 2)[0], ".".join(name.rsplit(".", 2)[1:])
    group = next((g for g in FUSED if leaf in g), (leaf,)) if fused else (leaf,)
    mats = [ref[f"{prefix}.{m}.orig"] for m in group]
    q = imp_capi.quantize(fmt, np.concatenate(mats, axis=0))
    row0 = sum(m.shape[0] for m in mats[:group.index(leaf)])
    rows = mats[group.index(leaf)].shape[0]
    data = q.data.reshape(q.rows, -1)[row0:row0 + rows]
    scales = q.scales.reshape(q.rows, -1)[row0:row0 + rows] if q.scales.size else q.scales
    return data, scales, q.tensor_scale


def test_modelopt_nvfp4_bytes_and_decode():
    folder = DATA / "modelopt-nvfp4"
    tensors = read_safetensors(folder / "model.safetensors")
    ref = np.load(DATA / "modelopt-nvfp4-ref.npz")
    names = linears(ref)
    assert len(names) == 14
    e2m1 = np.array([0, .5, 1, 1.5, 2, 3, 4, 6, -0., -.5, -1, -1.5, -2, -3, -4, -6], np.float32)
    import ml_dtypes
    for n in names:
        dtype, shape, w = tensors[n + ".weight"]
        assert dtype == "U8"
        s_dtype, _, s = tensors[n + ".weight_scale"]
        assert s_dtype == "F8_E4M3"
        g = np.frombuffer(tensors[n + ".weight_scale_2"][2], np.float32).item()
        # 1. imp's reference quantizer on the original weights = ModelOpt's exported bytes.
        data, scales, ts = quantize_like_modelopt("nvfp4_ckpt", ref, n, fused=True)
        assert np.float32(ts).tobytes() == np.float32(g).tobytes(), n
        assert data.tobytes() == w, f"{n}: packed E2M1 codes differ from ModelOpt's"
        assert scales.tobytes() == s, f"{n}: E4M3 block scales differ from ModelOpt's"
        # 2. imp dump of the loaded checkpoint = E2M1 · (E4M3 · G), computed independently.
        rows, cols = shape[0], shape[1] * 2
        codes = np.frombuffer(w, np.uint8).reshape(rows, cols // 2)
        vals = np.stack([e2m1[codes & 15], e2m1[codes >> 4]], axis=-1).reshape(rows, cols)
        scale = np.frombuffer(s, ml_dtypes.float8_e4m3fn).astype(np.float32).reshape(rows, cols // 16)
        expect = vals * np.repeat(scale * np.float32(g), 16, axis=1)
        got = imp_dump(folder, n + ".weight", (rows, cols))
        np.testing.assert_array_equal(got.view(np.uint32), expect.astype(np.float32).view(np.uint32), err_msg=n)


def test_modelopt_fp8_bytes_and_decode_match_modelopt_fakequant():
    folder = DATA / "modelopt-fp8"
    tensors = read_safetensors(folder / "model.safetensors")
    ref = np.load(DATA / "modelopt-fp8-ref.npz")
    names = linears(ref)
    assert len(names) == 14
    for n in names:
        dtype, shape, w = tensors[n + ".weight"]
        assert dtype == "F8_E4M3"
        scale = np.frombuffer(tensors[n + ".weight_scale"][2], np.float32).item()
        data, _, ts = quantize_like_modelopt("fp8_e4m3_tensor", ref, n, fused=False)
        assert np.float32(ts).tobytes() == np.float32(scale).tobytes(), n
        assert data.tobytes() == w, f"{n}: FP8 codes differ from ModelOpt's"
        got = imp_dump(folder, n + ".weight", tuple(shape))
        # ModelOpt's own fake quantization: the same codes and scale, but it evaluates
        # code·amax/448 (two roundings, another order) where imp takes code·scale (one), so
        # the two may differ by up to 2 ulp of the value, never more.
        fq = ref[n + ".fakequant"]
        assert (np.abs(got - fq) <= 2 * np.spacing(np.abs(fq))).all(), n


def test_excluded_modules_load_at_stored_precision():
    out = subprocess.run([os.environ["IMP_BINARY"], "inspect", "--json", str(DATA / "modelopt-nvfp4")],
                         check=True, capture_output=True, text=True).stdout
    info = json.loads(out)
    formats = {t["name"]: t["format"] for t in info["tensors"]}
    assert formats["lm_head.weight"] in ("f32", "f16", "bf16")
    assert formats["model.embed_tokens.weight"] in ("f32", "f16", "bf16")
    assert formats["model.layers.1.mlp.gate_proj.weight"] == "nvfp4_ckpt"
