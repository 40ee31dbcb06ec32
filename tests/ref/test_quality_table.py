"""scripts/quality-table.py's pieces that the table's numbers rest on: the F32 reference is
exactly the quantized model's dequantization with its metadata intact (so imp gives it the
same perplexity), and the bits-per-element of each KV-cache dtype follow kv_type.h's rows."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFReader, quants

from test_eval import CTX, TEXT, imp, write_model

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "quality-table.py"


@pytest.fixture(scope="module")
def qt():
    spec = importlib.util.spec_from_file_location("quality_table", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["quality_table"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_f32_reference_is_the_exact_dequantization(qt, tmp_path, rng):
    q, _ = write_model(tmp_path / "q.gguf", int(rng.integers(0, 2**31)), quantized=True)
    f32 = tmp_path / "f32.gguf"
    qt.dequantize_gguf_to_f32(Path(q), f32)
    rq, rf = GGUFReader(q), GGUFReader(f32)
    assert [t.name for t in rf.tensors] == [t.name for t in rq.tensors]
    assert {t.tensor_type for t in rq.tensors} > {GGMLQuantizationType.F32}  # something was quantized
    for tq, tf in zip(rq.tensors, rf.tensors):
        assert tf.tensor_type == GGMLQuantizationType.F32
        assert list(tf.shape) == list(tq.shape)
        want = quants.dequantize(tq.data, tq.tensor_type).reshape(-1)
        np.testing.assert_array_equal(np.asarray(tf.data).reshape(-1), want)
    skip = {"general.file_type", "general.quantization_version"}
    fields_q = {k: f.contents() for k, f in rq.fields.items() if not k.startswith("GGUF.") and k not in skip}
    fields_f = {k: f.contents() for k, f in rf.fields.items() if not k.startswith("GGUF.") and k not in skip}
    assert fields_f == fields_q
    assert rf.fields["general.file_type"].contents() == 0  # ALL_F32
    # Same weights, so imp scores the text the same (kernels differ: fused Q4_0/Q8_0 vs F32).
    text = tmp_path / "text.txt"
    text.write_text(TEXT, encoding="utf-8")
    ppl = [json.loads(imp("perplexity", "-m", m, "-f", str(text), "--ctx", str(CTX), "-t", "2", "--json").stdout)["ppl"]
           for m in (q, str(f32))]
    assert ppl[1] == pytest.approx(ppl[0], rel=1e-5)


def test_kv_bits_per_element(qt):
    # Rows of kv_type.h for head_dim 64: f32 256 B, f16/bf16 128, fp8/int8 4+64, int4 2·2+32,
    # nvfp4 4+4+32.
    got = {k: qt.kv_bits(k, 64) for k in qt.KV_TYPES}
    assert got == {"f32": 32.0, "f16": 16.0, "bf16": 16.0, "fp8_e4m3": 8.5, "int8": 8.5, "int4": 4.5, "nvfp4": 5.0}
    assert qt.kv_bits("int4", 80) == pytest.approx(8 * (3 * 2 + 40) / 80)  # 3 groups: 32 + 32 + 16


def test_every_variant_id_is_unique_and_file_name_safe(qt):
    ids = [v.id for v in qt.variants()]
    assert len(ids) == len(set(ids))
    assert all(v.replace("-", "").replace("_", "").isalnum() for v in ids)
    keys = {k for k, *_ in qt.WEIGHT_TYPES}
    assert all(w in keys | {"f32"} for _, w, _ in qt.ACT_ROWS)
