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


def test_methods_section_renders_every_result(qt):
    """docs/quality.md's calibration-methods section is rendered from the raw summary: every
    (format, method) result appears as a row with its numbers."""
    data = SCRIPT.parents[1] / "docs" / "data" / "quant-methods"
    md = "\n".join(qt.methods_section(data))
    assert md.startswith("## Calibration methods (`imp quantize --method`)")
    rows = json.loads((data / "summary.json").read_text())
    for r in rows:
        assert f"| {r['format']} | {r['method']} | {r['bpw']:.3f} | {r['kld_mean']:.4f} ± " in md, r


def test_plot_labels_do_not_overlap(qt, tmp_path):
    """The KLD-vs-bpw plot labels every point, and no two labels' boxes overlap (even for a
    crowd of formats at nearly the same bits per weight and KLD)."""
    import matplotlib
    import matplotlib.text
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["Q4_0", "IQ4_XS", "Q4_K_M", "Q5_K_M", "MXFP4", "NVFP4", "Q6_K", "Q8_0", "BF16", "F16"]
    bpw = [5.35, 5.32, 6.17, 6.56, 4.26, 4.5, 8.12, 8.51, 16, 16]
    kld = [0.245, 0.164, 0.040, 0.057, 0.74, 0.33, 0.004, 0.001, 5e-5, 1.6e-6]
    rows = {"m": {f"w-{n}": {"bpw": b, "kv_bits": 0, "kld": {"kld_mean": k, "kld_p99": 4 * k},
                             "variant": {"group": "weights", "label": n, "kv": "f32"}}
                  for n, b, k in zip(names, bpw, kld)}}
    refs = {"m": {"saved": {"ppl": 17.4}}}
    saved_models = list(qt.DEMO_MODELS)
    qt.DEMO_MODELS[:] = [qt.DemoModel("m", "tiny", tmp_path / "x.gguf", "F32")]
    captured = []
    real_savefig = plt.Figure.savefig

    def savefig(fig, *a, **k):
        captured.append(fig)
        return real_savefig(fig, *a, **k)

    plt.Figure.savefig = savefig
    try:
        qt.plot(refs, rows, tmp_path / "p.png")
    finally:
        plt.Figure.savefig = real_savefig
        qt.DEMO_MODELS[:] = saved_models
    fig = captured[0]
    r = fig.canvas.get_renderer()
    ax = fig.axes[0]
    anns = [t for t in ax.texts if isinstance(t, matplotlib.text.Annotation)]
    assert sorted(t.get_text() for t in anns) == sorted(names)
    boxes = [matplotlib.text.Text.get_window_extent(t, r) for t in anns]
    for i in range(len(boxes)):
        for j in range(i):
            assert not boxes[i].overlaps(boxes[j]), (anns[i].get_text(), anns[j].get_text())
    assert "bits per weight" in ax.get_xlabel() and "log" in ax.get_ylabel()
