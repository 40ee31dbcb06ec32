"""GGUF files across implementations.

gguf-py → imp: files written by gguf-py's GGUFWriter (every KV type, string arrays, float
and quantized tensors made by gguf.quants.quantize or random blocks) read by `imp inspect
--json --full` (metadata values and exact GGUF types, tensor table) and `imp dump`
(dequantized values bit-exact against gguf.quants.dequantize).

imp → gguf-py: files written by imp's GgufWriter (through imp_capi's imp_gguf_write) read
by gguf.GGUFReader, metadata types/values and tensor bytes compared.
"""
from __future__ import annotations

import ctypes
import json
import os
import subprocess

import gguf
import numpy as np
import pytest

import imp_capi
from gguf_blocks import random_blocks

QT = gguf.GGMLQuantizationType
VT = gguf.GGUFValueType
BLOCK = {name: gguf.GGML_QUANT_SIZES[QT[name.upper()]] for name in [
    "f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k",
    "iq4_nl", "iq4_xs", "mxfp4", "nvfp4"]}
# Made by gguf.quants.quantize from normal data; the others are random blocks.
QUANTIZED_BY_GGUF_PY = {"bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "mxfp4"}
NUMERIC = {VT.UINT8: np.uint8, VT.INT8: np.int8, VT.UINT16: np.uint16, VT.INT16: np.int16, VT.UINT32: np.uint32,
           VT.INT32: np.int32, VT.UINT64: np.uint64, VT.INT64: np.int64, VT.FLOAT32: np.float32,
           VT.FLOAT64: np.float64}


def imp_binary() -> str:
    path = os.environ.get("IMP_BINARY")
    if not path:
        pytest.skip("IMP_BINARY is not set: run through ctest")
    return path


def run_imp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([imp_binary(), *args], capture_output=True, timeout=120)


def random_scalar(vt: VT, rng: np.random.Generator):
    if vt == VT.BOOL:
        return bool(rng.integers(0, 2))
    if vt == VT.STRING:
        return "".join(rng.choice(list("abcxyz ._-äλ€"), size=int(rng.integers(0, 12))))
    t = NUMERIC[vt]
    if vt in (VT.FLOAT32, VT.FLOAT64):
        return float(t(rng.standard_normal() * 10.0 ** rng.integers(-8, 8)))
    info = np.iinfo(t)
    return int(rng.integers(info.min, info.max, dtype=t, endpoint=True))


def random_kv(rng: np.random.Generator) -> list[tuple[str, VT, VT | None, object]]:
    """(key, type, elem type, value): every scalar type, and an array of every element type."""
    kv = []
    for vt in [*NUMERIC, VT.BOOL, VT.STRING]:
        kv.append((f"test.scalar.{vt.name.lower()}", vt, None, random_scalar(vt, rng)))
        n = int(rng.choice([1, 3, 17]))
        kv.append((f"test.array.{vt.name.lower()}", VT.ARRAY, vt, [random_scalar(vt, rng) for _ in range(n)]))
    kv += [
        ("qwen3.context_length", VT.UINT32, None, 40960),
        ("qwen3.embedding_length", VT.UINT64, None, 256),
        ("qwen3.block_count", VT.INT32, None, 3),
        ("qwen3.feed_forward_length", VT.ARRAY, VT.INT32, [512, 768, 512]),
        ("qwen3.attention.head_count", VT.UINT16, None, 8),
        ("qwen3.attention.head_count_kv", VT.UINT8, None, 2),
        ("qwen3.attention.layer_norm_rms_epsilon", VT.FLOAT32, None, float(np.float32(1e-6))),
        ("qwen3.rope.freq_base", VT.FLOAT32, None, 1000000.0),
        ("tokenizer.ggml.model", VT.STRING, None, "gpt2"),
        ("tokenizer.ggml.tokens", VT.ARRAY, VT.STRING, [f"tok{i}" for i in range(37)]),
        ("tokenizer.ggml.merges", VT.ARRAY, VT.STRING, ["t o", "to k"]),
        ("tokenizer.ggml.eos_token_id", VT.UINT32, None, 36),
    ]
    return kv


def random_tensor(fmt: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Tensor payload as gguf-py stores it: float arrays for f32/f16, bytes otherwise."""
    x = rng.standard_normal(shape).astype(np.float32)
    if fmt == "f32":
        return x
    if fmt == "f16":
        return x.astype(np.float16)
    if fmt in QUANTIZED_BY_GGUF_PY:
        return gguf.quants.quantize(x, QT[fmt.upper()])
    block, size = BLOCK[fmt]
    rows = int(np.prod(shape[:-1]))
    return random_blocks(fmt, rows * shape[-1] // block, rng).reshape(*shape[:-1], shape[-1] // block * size)


def tensor_shapes(fmt: str) -> list[tuple[int, ...]]:
    block = BLOCK[fmt][0]
    return [(3, 17 * block), (2, 5, 3 * block), (1 * block,)]


@pytest.fixture
def gguf_py_file(tmp_path, rng):
    path = tmp_path / "from_gguf_py.gguf"
    w = gguf.GGUFWriter(str(path), "qwen3")
    kv = random_kv(rng)
    for key, vt, sub, value in kv:
        w.add_key_value(key, value, vt, sub_type=sub)
    tensors = {}
    for fmt in BLOCK:
        for k, shape in enumerate(tensor_shapes(fmt)):
            name = f"blk.{k}.{fmt}.weight"
            data = random_tensor(fmt, shape, rng)
            raw = None if fmt in ("f32", "f16") else QT[fmt.upper()]
            w.add_tensor(name, data, raw_dtype=raw)
            tensors[name] = (fmt, shape, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path, [("general.architecture", VT.STRING, None, "qwen3")] + kv, tensors


def type_string(vt: VT, sub: VT | None) -> str:
    return f"ARRAY[{sub.name}]" if vt == VT.ARRAY else vt.name


def test_inspect_reads_gguf_py_metadata_and_tensors(gguf_py_file):
    path, kv, tensors = gguf_py_file
    r = run_imp("inspect", "--json", "--full", str(path))
    assert r.returncode == 0, r.stderr.decode()
    out = json.loads(r.stdout)
    assert out["container"] == "gguf v3"
    assert out["gguf"]["alignment"] == 32
    assert len(out["metadata"]) == len(kv)
    for key, vt, sub, value in kv:
        assert out["gguf"]["types"][key] == type_string(vt, sub), key
        assert out["metadata"][key] == value, key
    cfg = out["config"]
    assert (cfg["architecture"], cfg["n_ctx_train"], cfg["n_embd"], cfg["n_layer"], cfg["n_ff"]) == \
        ("qwen3", 40960, 256, 3, 768)
    assert (cfg["n_head"], cfg["n_head_kv"], cfg["head_dim"], cfg["n_vocab"]) == (8, 2, 32, 37)
    assert cfg["rope_theta"] == 1e6 and cfg["rms_norm_eps"] == float(np.float32(1e-6))
    tok = out["tokenizer"]
    assert (tok["model"], tok["n_tokens"], tok["n_merges"], tok["eos_id"]) == ("gpt2", 37, 2, 36)
    assert [t["name"] for t in out["tensors"]] == list(tensors)
    for t in out["tensors"]:
        fmt, shape, data = tensors[t["name"]]
        assert (t["format"], tuple(t["shape"]), t["bytes"]) == (fmt, shape, data.nbytes), t["name"]
    assert out["totals"]["bytes"] == sum(d.nbytes for _, _, d in tensors.values())
    # The text view names the same things.
    text = run_imp("inspect", str(path))
    assert text.returncode == 0 and b"blk.0.q4_k.weight" in text.stdout and b"qwen3" in text.stdout


@pytest.mark.parametrize("fmt", sorted(BLOCK))
def test_dump_matches_gguf_py_dequantize(gguf_py_file, fmt):
    path, _, tensors = gguf_py_file
    for k in range(len(tensor_shapes(fmt))):
        name = f"blk.{k}.{fmt}.weight"
        _, shape, data = tensors[name]
        r = run_imp("dump", str(path), name)
        if r.returncode != 0 and b"not implemented yet" in r.stderr:
            pytest.skip(f"imp's {fmt} dequantizer: {r.stderr.decode().strip()}")
        assert r.returncode == 0, r.stderr.decode()
        ours = np.frombuffer(r.stdout, dtype="<f4")
        if fmt == "f32":
            theirs = data.reshape(-1)
        elif fmt == "f16":
            theirs = data.astype(np.float32).reshape(-1)
        else:
            theirs = gguf.quants.dequantize(data, QT[fmt.upper()]).reshape(-1)
        assert ours.size == int(np.prod(shape))
        np.testing.assert_array_equal(ours.view(np.uint32), theirs.astype(np.float32).view(np.uint32), err_msg=name)


def test_dump_to_file_and_errors(gguf_py_file, tmp_path):
    path, _, tensors = gguf_py_file
    out = tmp_path / "t.f32"
    r = run_imp("dump", str(path), "blk.0.f32.weight", "--out", str(out))
    assert r.returncode == 0, r.stderr.decode()
    np.testing.assert_array_equal(np.fromfile(out, "<f4"), tensors["blk.0.f32.weight"][2].reshape(-1))
    r = run_imp("dump", str(path), "no.such.tensor")
    assert r.returncode == 1 and b"no tensor named 'no.such.tensor'" in r.stderr
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(path.read_bytes()[:1000])
    r = run_imp("inspect", str(bad))
    assert r.returncode == 1
    assert r.stderr.decode().startswith(f"imp: error: {bad}: ") and r.stderr.count(b"\n") == 1


# --- imp's writer, read by gguf-py --------------------------------------------------------

def imp_write(path, kv, tensors, alignment: int | None = None) -> None:
    lib = imp_capi.lib()
    entries = []
    if alignment is not None:
        entries.append(["general.alignment", {"type": "UINT32", "value": alignment}])
    for key, vt, sub, value in kv:
        typed = {"type": vt.name, "value": value}
        if sub is not None:
            typed["elem_type"] = sub.name
        entries.append([key, typed])
    spec = {"kv": entries, "tensors": [{"name": n, "shape": list(s), "format": f} for n, (f, s, _) in tensors.items()]}
    bufs = [np.ascontiguousarray(d).view(np.uint8).reshape(-1) for _, _, d in tensors.values()]
    ptrs = (ctypes.c_void_p * len(bufs))(*[b.ctypes.data for b in bufs])
    sizes = (ctypes.c_int64 * len(bufs))(*[b.size for b in bufs])
    rc = lib.imp_gguf_write(str(path).encode(), json.dumps(spec).encode(), ptrs, sizes)
    if rc != 0:
        raise imp_capi.ImpError(lib.imp_last_error().decode())


@pytest.mark.parametrize("alignment", [None, 64])
def test_gguf_py_reads_imp_written_file(tmp_path, rng, alignment):
    path = tmp_path / "from_imp.gguf"
    kv = [("general.architecture", VT.STRING, None, "qwen3")] + random_kv(rng)
    kv.append(("test.array.empty", VT.ARRAY, VT.INT32, []))
    tensors = {}
    for fmt in BLOCK:
        for k, shape in enumerate(tensor_shapes(fmt)):
            tensors[f"blk.{k}.{fmt}.weight"] = (fmt, shape, random_tensor(fmt, shape, rng))
    imp_write(path, kv, tensors, alignment)

    reader = gguf.GGUFReader(str(path))
    fields = {k: f for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    expected_keys = [k for k, *_ in kv] if alignment is None else ["general.alignment"] + [k for k, *_ in kv]
    assert list(fields) == expected_keys
    assert reader.alignment == (alignment or 32)
    for key, vt, sub, value in kv:
        f = fields[key]
        assert f.types[0] == vt, key
        if vt == VT.ARRAY:
            assert VT(int(f.parts[3][0])) == sub, key  # parts: key len, key, type, elem type, …
        got = f.contents()
        if vt == VT.FLOAT32 or sub == VT.FLOAT32:  # contents() gives float32 values as Python floats
            got = [float(np.float32(x)) for x in got] if isinstance(got, list) else float(np.float32(got))
        assert got == value, key
    assert [t.name for t in reader.tensors] == list(tensors)
    for t in reader.tensors:
        fmt, shape, data = tensors[t.name]
        assert t.tensor_type == QT[fmt.upper()], t.name
        assert tuple(int(d) for d in reversed(t.shape)) == shape, t.name
        assert (t.data_offset - reader.data_offset) % (alignment or 32) == 0
        assert t.data.tobytes() == np.ascontiguousarray(data).tobytes(), t.name

    # imp reads its own file back the same way.
    r = run_imp("inspect", "--json", "--full", str(path))
    assert r.returncode == 0, r.stderr.decode()
    out = json.loads(r.stdout)
    for key, vt, sub, value in kv:
        assert out["metadata"][key] == value and out["gguf"]["types"][key] == type_string(vt, sub), key


def test_imp_writer_rejects_bad_input(tmp_path):
    tensors = {"x": ("q4_0", (2, 33), np.zeros(2 * 18, np.uint8))}
    with pytest.raises(imp_capi.ImpError, match="not a multiple of the block size 32"):
        imp_write(tmp_path / "x.gguf", [], tensors)
    assert not any(tmp_path.iterdir()), "a failed write must leave no file behind"
