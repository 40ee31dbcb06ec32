"""imp perplexity / imp kld / imp quant-report against direct numpy computations.

Tiny synthetic llama GGUFs (2 layers, 64-wide, a 300-token byte-level BPE vocabulary written
here) and a short public-domain text (the opening of Jane Austen's Pride and Prejudice).
The reference numbers are computed in this file from logits that `imp run --dump-logits`
gives for each chunk's tokens (llama.cpp's chunking, restated here: chunks of CTX tokens,
BOS put at the head of each, positions CTX/2 … CTX−2 scored against the next token).
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T
from gguf import GGUFWriter, quants

CTX = 32
TOP_K = 8
TEXT = (
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, "
    "must be in want of a wife. However little known the feelings or views of such a man may be "
    "on his first entering a neighbourhood, this truth is so well fixed in the minds of the "
    "surrounding families, that he is considered the rightful property of some one or other of "
    "their daughters."
)
MERGES = ["t h", "h e", "Ġ t", "i n", "e r", "a n", "o n", "Ġ a", "o u", "r e", "Ġ o", "Ġ s", "e n", "Ġ w",
          "th e", "Ġt he", "i s", "o f", "Ġ f", "Ġ m", "a t", "o r", "e d", "in g", "Ġ h"]


def imp_binary() -> str:
    b = os.environ.get("IMP_BINARY")
    if not b or not Path(b).exists():
        pytest.skip("IMP_BINARY not set (run through ctest or set it to build/imp)")
    return b


def imp(*args: str, check=True) -> subprocess.CompletedProcess:
    p = subprocess.run([imp_binary(), *args], capture_output=True, text=True, timeout=600)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def byte_chars() -> list[str]:
    # GPT-2's byte → printable-unicode table (bytes_to_unicode).
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs))
    return [chr(table[b]) for b in range(256)]


def vocabulary() -> list[str]:
    tokens = ["<|endoftext|>"] + byte_chars()
    for m in MERGES:
        tokens.append(m.replace(" ", ""))
    return tokens


def write_model(path: Path, seed: int, quantized: bool, n_embd=64, n_head=4, n_kv=2, n_ff=96, n_layer=2):
    """The same float weights (from `seed`) stored as F32 or, with quantized, Q8_0/Q4_0."""
    rng = np.random.default_rng(seed)
    tokens = vocabulary()
    n_vocab = len(tokens)
    hd = n_embd // n_head
    w = GGUFWriter(str(path), "llama")
    w.add_name("tiny-q" if quantized else "tiny-f32")
    w.add_context_length(256)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([3] + [1] * (n_vocab - 1))
    w.add_token_merges(MERGES)
    w.add_bos_token_id(0)
    w.add_eos_token_id(0)
    w.add_add_bos_token(True)
    floats = {}

    def add(name, shape, qtype, scale=0.3):
        a = (rng.standard_normal(shape) * scale).astype(np.float32)
        floats[name] = a
        if not quantized or qtype == T.F32:
            w.add_tensor(name, a)
        else:
            w.add_tensor(name, quants.quantize(a, qtype), raw_dtype=qtype)

    add("token_embd.weight", (n_vocab, n_embd), T.Q8_0, 1.0)
    add("output_norm.weight", (n_embd,), T.F32, 1.0)
    add("output.weight", (n_vocab, n_embd), T.Q4_0)
    for l in range(n_layer):
        p = f"blk.{l}."
        add(p + "attn_norm.weight", (n_embd,), T.F32, 1.0)
        add(p + "ffn_norm.weight", (n_embd,), T.F32, 1.0)
        add(p + "attn_q.weight", (n_head * hd, n_embd), T.Q4_0)
        add(p + "attn_k.weight", (n_kv * hd, n_embd), T.Q8_0)
        add(p + "attn_v.weight", (n_kv * hd, n_embd), T.Q4_0)
        add(p + "attn_output.weight", (n_embd, n_head * hd), T.Q8_0)
        add(p + "ffn_gate.weight", (n_ff, n_embd), T.Q4_0)
        add(p + "ffn_up.weight", (n_ff, n_embd), T.Q8_0)
        add(p + "ffn_down.weight", (n_embd, n_ff), T.Q4_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return str(path), n_vocab


@pytest.fixture
def models(tmp_path, rng):
    seed = int(rng.integers(0, 2**31))
    ref, n_vocab = write_model(tmp_path / "tiny-f32.gguf", seed, quantized=False)
    q, _ = write_model(tmp_path / "tiny-q.gguf", seed, quantized=True)
    text = tmp_path / "text.txt"
    text.write_text(TEXT, encoding="utf-8")
    return ref, q, str(text), n_vocab


def tokenize(model: str, text: str) -> list[int]:
    return [int(t) for t in imp("tokenize", "-m", model, "--file", text, "--ids-only").stdout.split()]


def chunk_logits(model: str, text: str, n_vocab: int, tmp_path: Path):
    """(logits of the scored rows, their targets) per chunk, from `imp run --dump-logits`."""
    ids = tokenize(model, text)
    assert ids[0] == 0  # BOS added per the metadata
    n_chunk = len(ids) // CTX
    assert n_chunk >= 3
    first = CTX // 2
    out = []
    for c in range(n_chunk):
        toks = ids[c * CTX:(c + 1) * CTX]
        targets = np.array(toks[first + 1:])
        toks = [0] + toks[1:]
        f = tmp_path / f"chunk{c}.f32"
        imp("run", "-m", model, "--tokens", ",".join(map(str, toks)), "-n", "0", "-t", "2", "--act-quant", "f32", "--dump-logits", str(f))
        logits = np.fromfile(f, dtype=np.float32).reshape(CTX, n_vocab)
        out.append((logits[first:CTX - 1].astype(np.float64), targets))
    return out


def log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=1, keepdims=True)
    return x - (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))


def direct_ppl(chunks):
    nll = np.concatenate([-log_softmax(l)[np.arange(len(t)), t] for l, t in chunks])
    running = []
    acc = []
    for l, t in chunks:
        acc.append(-log_softmax(l)[np.arange(len(t)), t])
        running.append(np.exp(np.concatenate(acc).mean()))
    mean = nll.mean()
    se = np.sqrt((np.mean(nll**2) - mean**2) / (len(nll) - 1))
    return np.exp(mean), np.exp(mean) * se, running, nll


def test_perplexity_equals_direct_computation(models, tmp_path):
    ref, _, text, n_vocab = models
    chunks = chunk_logits(ref, text, n_vocab, tmp_path)
    ppl, err, running, nll = direct_ppl(chunks)
    j = json.loads(imp("perplexity", "-m", ref, "-f", text, "--ctx", str(CTX), "-t", "2", "--json").stdout)
    assert j["n_chunk"] == len(chunks) and j["n_scored"] == len(nll) == len(chunks) * (CTX - 1 - CTX // 2)
    assert j["ppl"] == pytest.approx(ppl, rel=1e-6)
    assert j["ppl_error"] == pytest.approx(err, rel=1e-6)
    assert j["running_ppl"] == pytest.approx(running, rel=1e-6)
    # Text output: llama.cpp's running estimates and final line; batching must not change it.
    p = imp("perplexity", "-m", ref, "-f", text, "--ctx", str(CTX), "--batch", "7", "-t", "2")
    lines = p.stdout.strip().splitlines()
    assert lines[0] == "".join(f"[{i + 1}]{r:.4f}," for i, r in enumerate(running))
    assert lines[-1] == f"Final estimate: PPL = {ppl:.4f} +/- {err:.5f}"
    # --chunks limits the evaluation.
    j2 = json.loads(imp("perplexity", "-m", ref, "-f", text, "--ctx", str(CTX), "--chunks", "2", "--json").stdout)
    assert j2["n_chunk"] == 2 and j2["ppl"] == pytest.approx(running[1], rel=1e-6)


def test_perplexity_text_too_short(models, tmp_path):
    ref, _, _, _ = models
    short = tmp_path / "short.txt"
    short.write_text("A few words only.", encoding="utf-8")
    p = imp("perplexity", "-m", ref, "-f", str(short), "--ctx", str(CTX), check=False)
    assert p.returncode == 1 and "needs at least 64 (2·ctx)" in p.stderr


def direct_kld(ref_chunks, q_chunks, k):
    kl, same, dp, nll_r, nll_q = [], [], [], [], []
    for (lr, t), (lq, _) in zip(ref_chunks, q_chunks):
        # The reference stores float32 logits; compare as imp does, from the float32 values.
        lp, lqs = log_softmax(lr), log_softmax(lq)
        for i in range(len(t)):
            ids = np.lexsort((np.arange(lr.shape[1]), -lr[i]))[:k]
            p, q = np.exp(lp[i, ids]), np.exp(lqs[i, ids])
            v = np.sum(p * (lp[i, ids] - lqs[i, ids]))
            pt, qt = 1 - p.sum(), 1 - q.sum()
            if pt > 1e-12:
                v += pt * np.log(pt / max(qt, 1e-300))
            kl.append(v)
            same.append(ids[0] == np.argmax(lq[i]))
            nll_r.append(-lp[i, t[i]])
            nll_q.append(-lqs[i, t[i]])
            dp.append(np.exp(-nll_q[-1]) - np.exp(-nll_r[-1]))
    kl, dp = np.array(kl), np.array(dp)
    return {"kld_mean": kl.mean(), "kld_median": np.median(kl), "kld_p99": np.percentile(kl, 99),
            "kld_p999": np.percentile(kl, 99.9), "kld_max": kl.max(), "same_top": np.mean(same),
            "rms_dp": np.sqrt(np.mean(dp**2)), "ppl_base": np.exp(np.mean(nll_r)), "ppl_q": np.exp(np.mean(nll_q)),
            "ppl_ratio": np.exp(np.mean(nll_q) - np.mean(nll_r))}


def kld_json(model, text, ref_file, *extra):
    return json.loads(imp("kld", "-m", model, "-f", text, "--ref", ref_file, "-t", "2", "--json", *extra).stdout)


@pytest.mark.parametrize("top_k", [TOP_K, 10_000])
def test_kld_equals_direct_computation(models, tmp_path, top_k):
    ref, q, text, n_vocab = models
    saved = tmp_path / "ref.logits"
    s = json.loads(imp("kld", "-m", ref, "-f", text, "--ctx", str(CTX), "--save-logits", str(saved), "--top-k",
                       str(top_k), "-t", "2", "--json").stdout)
    k = min(top_k, n_vocab)
    assert s["top_k"] == k
    want = direct_kld(chunk_logits(ref, text, n_vocab, tmp_path), chunk_logits(q, text, n_vocab, tmp_path), k)
    got = kld_json(q, text, str(saved))
    assert got["kld_mean"] > 1e-4  # the quantization is visible
    for key, v in want.items():
        assert got[key] == pytest.approx(v, rel=1e-6, abs=1e-12), key
    assert s["ppl"] == pytest.approx(want["ppl_base"], rel=1e-6)
    if k == n_vocab:
        assert got["ref_tail_mass_mean"] == pytest.approx(0.0, abs=1e-9)
    # Text output carries llama.cpp's labels.
    out = imp("kld", "-m", q, "-f", text, "--ref", str(saved), "-t", "2").stdout
    for label in ("Mean PPL(Q)", "Mean PPL(Q)/PPL(base)", "Mean    KLD:", "99.9%   KLD:", "Median  KLD:", "RMS Δp",
                  "Same top p:"):
        assert label in out


def test_kld_of_a_model_against_itself_is_zero(models, tmp_path):
    ref, _, text, _ = models
    saved = tmp_path / "self.logits"
    imp("kld", "-m", ref, "-f", text, "--ctx", str(CTX), "--save-logits", str(saved), "-t", "2")
    got = kld_json(ref, text, str(saved))
    assert got["kld_mean"] == 0.0 and got["kld_max"] == 0.0 and got["kld_min"] == 0.0
    assert got["same_top"] == 1.0 and got["rms_dp"] == 0.0 and got["ppl_ratio"] == 1.0


def test_kld_reference_file_errors(models, tmp_path):
    ref, q, text, _ = models
    saved = tmp_path / "ref.logits"
    imp("kld", "-m", ref, "-f", text, "--ctx", str(CTX), "--save-logits", str(saved), "-t", "2")
    data = saved.read_bytes()
    # Truncated.
    cut = tmp_path / "cut.logits"
    cut.write_bytes(data[:-20])
    p = imp("kld", "-m", q, "-f", text, "--ref", str(cut), check=False)
    assert p.returncode == 1 and "truncated" in p.stderr
    # Not a reference file at all.
    bad = tmp_path / "bad.logits"
    bad.write_bytes(b"GGUF" + data[4:])
    p = imp("kld", "-m", q, "-f", text, "--ref", str(bad), check=False)
    assert p.returncode == 1 and "not an imp reference-logits file" in p.stderr
    # Another text → other tokens.
    other = tmp_path / "other.txt"
    other.write_text(TEXT.replace("wife", "life"), encoding="utf-8")
    p = imp("kld", "-m", q, "-f", str(other), "--ref", str(saved), check=False)
    assert p.returncode == 1 and "other tokens" in p.stderr
    # Another vocabulary size: the n_vocab field patched in the header.
    patched = bytearray(data)
    patched[8:12] = (int.from_bytes(data[8:12], "little") + 1).to_bytes(4, "little")
    wrong = tmp_path / "wrong.logits"
    wrong.write_bytes(bytes(patched))
    p = imp("kld", "-m", q, "-f", text, "--ref", str(wrong), check=False)
    assert p.returncode == 1 and "made with n_vocab 283" in p.stderr
    p = imp("kld", "-m", q, "-f", text, check=False)
    assert p.returncode == 1 and "exactly one of --save-logits" in p.stderr
    # Settings that contradict the file.
    p = imp("kld", "-m", q, "-f", text, "--ref", str(saved), "--ctx", str(CTX // 2), check=False)
    assert p.returncode == 1 and f"differs from the reference file's context of {CTX}" in p.stderr
    p = imp("kld", "-m", q, "-f", text, "--ref", str(saved), "--chunks", "1", check=False)
    assert p.returncode == 1 and "differs from the reference file's" in p.stderr


def test_activation_emulation_end_to_end(models, tmp_path):
    """--act-emulate on perplexity and kld: every linear but lm_head gets a dynamic scale
    (a GGUF has no input_scale), 4-bit activations cost visibly more than 8-bit ones, and
    a bad mode or a combination with q8 activations is an error."""
    ref, _, text, _ = models
    saved = tmp_path / "ref.logits"
    imp("kld", "-m", ref, "-f", text, "--ctx", str(CTX), "--save-logits", str(saved), "-t", "2")
    plain = json.loads(imp("perplexity", "-m", ref, "-f", text, "--ctx", str(CTX), "-t", "2", "--json").stdout)
    assert plain["act_emulation"] == "none"
    kld = {}
    for mode in ("nvfp4", "mxfp4", "fp8"):
        j = json.loads(imp("perplexity", "-m", ref, "-f", text, "--ctx", str(CTX), "-t", "2", "--json",
                           "--act-emulate", mode).stdout)
        assert j["ppl"] != plain["ppl"] and j["ppl"] == pytest.approx(plain["ppl"], rel=0.5)
        assert j["act_emulation"].startswith(f"{mode} fake-quantized")
        assert ": 14 linears" in j["act_emulation"] or "for 14 linears" in j["act_emulation"]
        assert "1 not emulated (lm_head" in j["act_emulation"]
        k = kld_json(ref, text, str(saved), "--act-emulate", mode)
        assert k["act_emulation"] == j["act_emulation"] and k["ppl_q"] == pytest.approx(j["ppl"], rel=1e-9)
        kld[mode] = k["kld_mean"]
    assert 0 < kld["fp8"] < kld["nvfp4"] and 0 < kld["fp8"] < kld["mxfp4"]
    p = imp("perplexity", "-m", ref, "-f", text, "--ctx", str(CTX), "--act-emulate", "int3", check=False)
    assert p.returncode == 1 and "'int3' is not none, nvfp4, mxfp4 or fp8" in p.stderr
    p = imp("run", "-m", ref, "--tokens", "1,2,3", "-n", "1", "--act-quant", "q8", "--act-emulate", "nvfp4", check=False)
    assert p.returncode == 1 and "cannot be combined with --act-quant q8" in p.stderr
    r = imp("run", "-m", ref, "--tokens", "1,2,3", "-n", "2", "--act-emulate", "nvfp4", "-t", "2")
    assert "activations: nvfp4 fake-quantized" in r.stderr


def test_quant_report_equals_direct_computation(models, tmp_path):
    ref, q, _, _ = models
    from gguf import GGUFReader
    r, m = GGUFReader(ref), GGUFReader(q)
    ref_t = {t.name: t for t in r.tensors}
    want = {}
    for t in m.tensors:
        a = quants.dequantize(t.data, t.tensor_type).astype(np.float64).ravel()
        b = quants.dequantize(ref_t[t.name].data, ref_t[t.name].tensor_type).astype(np.float64).ravel()
        e2, r2 = np.sum((a - b) ** 2), np.sum(b**2)
        want[t.name] = (np.sqrt(e2 / r2), 10 * np.log10(r2 / e2) if e2 > 0 else None, t.tensor_type.name.lower())
    j = json.loads(imp("quant-report", "-m", q, "--ref", ref, "--json").stdout)
    names = [t["name"] for t in j["tensors"]]
    assert sorted(names) == sorted(want)
    errs = [t["rel_rmse"] for t in j["tensors"]]
    assert errs == sorted(errs, reverse=True)  # worst first
    for t in j["tensors"]:
        rel, snr, fmt = want[t["name"]]
        assert t["rel_rmse"] == pytest.approx(rel, rel=1e-9, abs=1e-15)
        assert t["snr_db"] == (pytest.approx(snr, rel=1e-9) if snr is not None else None)
        assert t["format"] == fmt
    assert j["tensors"][0]["format"] == "q4_0"
    p = imp("quant-report", "-m", q, check=False)
    assert p.returncode == 1 and "--ref MODEL is required" in p.stderr


# Regression guard: the F32 tiny model of seed 1234 on TEXT at CTX 32 (281 tokens, 8 chunks,
# 120 scored tokens), 2 threads, the default F32 KV cache and F32 activations. Pinned from
# imp's output (4616.209228956376) after the direct computation above agreed with it to
# 1e-6; the float64 numpy forward (llama_ref.LlamaRef, F32 KV) gives 4616.2123 (7e-7 away),
# checked here to 1e-3 so a pin of a wrong value cannot pass. (With the F16 cache and int8
# activations, the defaults until 2026-11-22, imp gave 4618.1663.)
PINNED_PPL = 4616.209228956376


def test_pinned_perplexity(tmp_path):
    path, n_vocab = write_model(tmp_path / "pinned.gguf", 1234, quantized=False)
    text = tmp_path / "text.txt"
    text.write_text(TEXT, encoding="utf-8")
    j = json.loads(imp("perplexity", "-m", path, "-f", str(text), "--ctx", str(CTX), "-t", "2", "--json").stdout)
    from llama_ref import LlamaRef
    lr = LlamaRef.load(path)
    ids = tokenize(path, str(text))
    nll = []
    for c in range(len(ids) // CTX):
        toks = [0] + ids[c * CTX + 1:(c + 1) * CTX]
        lp = log_softmax(lr.logits(toks).astype(np.float64))
        nll += [-lp[i, ids[c * CTX + i + 1]] for i in range(CTX // 2, CTX - 1)]
    assert j["ppl"] == pytest.approx(np.exp(np.mean(nll)), rel=1e-3)
    print("ppl", repr(j["ppl"]), "numpy float64 reference", np.exp(np.mean(nll)))
    assert j["ppl"] == pytest.approx(PINNED_PPL, rel=1e-5)
