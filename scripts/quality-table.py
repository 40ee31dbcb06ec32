#!/usr/bin/env python3
"""The quality table: what each weight format, KV-cache dtype and activation emulation costs.

For each demo model:
  1. the F32 reference: the model as downloaded (only quantized versions are published in
     GGUF) dequantized to F32 with gguf-py — every table row is measured against it;
  2. its logits on the text, saved once: `imp kld -m F32 -f TEXT --save-logits`;
  3. for every variant — each weight format `imp quantize` makes from the F32 file, the
     original download, each KV-cache dtype (F32 weights), the activation emulations —
     `imp kld -m … -f TEXT --ref LOGITS --json`: PPL, mean / 99 % KLD, same top-1.
Raw results go to docs/data/quality/<model>__<settings>__<variant>.json (one file per
measurement, re-used on the next run unless --force: the key is model + variant + ctx +
chunks + top-k + the text's hash), then docs/quality.md and docs/quality-kld-vs-bpw.png
are rendered from every result file of the chosen settings.

  .venv/bin/python scripts/quality-table.py --ctx 512 --chunks 8          # a quick run
  .venv/bin/python scripts/quality-table.py --ctx 512 --chunks 64 -t 16   # the full table

Variants a build cannot produce yet (no `imp quantize`, a format it lacks, a model whose
architecture the forward does not run) are skipped with a printed note and listed in the
table's notes. Needs: build/imp, scripts/fetch-models.sh, scripts/fetch-text.sh, the venv
(gguf, numpy, matplotlib).
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("IMP_CACHE", Path.home() / ".cache" / "imp"))


@dataclass
class DemoModel:
    key: str          # file-name safe id
    name: str         # as shown
    path: Path        # the downloaded (quantized) GGUF
    source_type: str  # its weight type, for the table


DEMO_MODELS = [
    DemoModel("smollm2-135m", "SmolLM2-135M-Instruct", CACHE / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf", "Q4_1"),
    DemoModel("gemma-3-270m", "gemma-3-270m", CACHE / "models" / "gemma-3-270m-q4_k_m.gguf", "Q4_K_M"),
]

# Weight formats `imp quantize F32 OUT --type T` produces: (key, label, --type, output suffix).
# OUT ending in .gguf gives a GGUF (the type names are llama.cpp's, mixes with its rules);
# any other suffix a Hugging Face safetensors folder (ModelOpt / GPTQ / OCP layouts).
WEIGHT_TYPES = [
    ("f16", "F16", "f16", ".gguf"),
    ("bf16", "BF16", "bf16", ".gguf"),
    ("q8_0", "Q8_0", "q8_0", ".gguf"),
    ("q6_k", "Q6_K", "q6_k", ".gguf"),
    ("q5_k_m", "Q5_K_M", "q5_k_m", ".gguf"),
    ("q4_k_m", "Q4_K_M", "q4_k_m", ".gguf"),
    ("q4_0", "Q4_0", "q4_0", ".gguf"),
    ("q4_1", "Q4_1", "q4_1", ".gguf"),
    ("iq4_xs", "IQ4_XS", "iq4_xs", ".gguf"),
    ("mxfp4", "MXFP4 (ggml)", "mxfp4", ".gguf"),
    ("nvfp4-ggml", "NVFP4 (ggml)", "nvfp4", ".gguf"),
    ("nvfp4-modelopt", "NVFP4 (ModelOpt safetensors)", "nvfp4", "-nvfp4-modelopt"),
    ("mxfp4-ocp", "MXFP4 (OCP safetensors)", "mxfp4", "-mxfp4-ocp"),
    ("fp8", "FP8 E4M3 per tensor (safetensors)", "fp8", "-fp8"),
    ("int4-g128", "INT4 g128 (GPTQ safetensors)", "int4-g128", "-int4-g128"),
    ("nvfp4-modelopt-calib", "NVFP4 calibrated (ModelOpt safetensors, --calib: imatrix-weighted, static input_scale)",
     "nvfp4", "-nvfp4-modelopt-calib"),
]
# Made with `--calib TEXT --calib-chunks CHUNKS --ctx CTX`: calibration runs on the LAST chunks
# of the text (the end of Northanger Abbey), the evaluation on its first ones (Pride and
# Prejudice), so they do not overlap.
CALIBRATED = {"nvfp4-modelopt-calib"}
KV_TYPES = ["f32", "f16", "bf16", "fp8_e4m3", "int8", "int4", "nvfp4"]
# Activation emulation rows: (label, weights: "f32" or a WEIGHT_TYPES key, --act-emulate mode).
ACT_ROWS = [
    ("NVFP4 activations, F32 weights (A4 only)", "f32", "nvfp4"),
    ("FP8 activations, F32 weights (A8 only)", "f32", "fp8"),
    ("NVFP4 W4A4 (ModelOpt NVFP4 weights)", "nvfp4-modelopt", "nvfp4"),
    ("NVFP4 W4A4, checkpoint input_scale (calibrated ModelOpt NVFP4 weights)", "nvfp4-modelopt-calib", "nvfp4"),
    ("NVFP4 W4A4 (ggml NVFP4 weights)", "nvfp4-ggml", "nvfp4"),
    ("MXFP4 W4A4 (ggml MXFP4 weights)", "mxfp4", "mxfp4"),
    ("FP8 W8A8 (FP8 weights)", "fp8", "fp8"),
]
# GGUF→NVFP4 decode-cache rows: (label, weights: "original" or a WEIGHT_TYPES key, extra kld args).
# `imp kld` with these flags scores every pass on the NVFP4 copies that decode steps read.
DECODE_ROWS = [
    ("decode cache nvfp4 (original download)", "original", ["--decode-cache", "nvfp4"]),
    ("decode cache nvfp4 + NVFP4 lm_head (original download)", "original", ["--decode-cache", "nvfp4", "--nvfp4-lm-head"]),
    ("decode cache nvfp4 (Q8_0)", "q8_0", ["--decode-cache", "nvfp4"]),
    ("decode cache nvfp4 (Q6_K)", "q6_k", ["--decode-cache", "nvfp4"]),
]


@dataclass
class Variant:
    id: str
    group: str        # "weights", "kv", "act", "decode"
    label: str
    weights: str      # "f32", "original" or a quantize --type
    kv: str = "f32"
    act: str = "none"
    plot_x: str = "bpw"  # what the plot puts on x
    extra: list = field(default_factory=list)  # more `imp kld` arguments (decode-cache rows)


def variants() -> list[Variant]:
    v = [Variant("w-f32", "weights", "F32 (reference, dequantized)", "f32"),
         Variant("w-original", "weights", "original download", "original")]
    v += [Variant(f"w-{key}", "weights", label, key) for key, label, _, _ in WEIGHT_TYPES]
    v += [Variant(f"kv-{k}", "kv", f"KV {k}", "f32", kv=k, plot_x="kv_bits") for k in KV_TYPES if k != "f32"]
    v += [Variant(f"act-{a}-{w}", "act", label, w, act=a) for label, w, a in ACT_ROWS]
    v += [Variant(f"dc-{'head-' if '--nvfp4-lm-head' in x else ''}{w}", "decode", label, w, extra=x)
          for label, w, x in DECODE_ROWS]
    return v


def pretty(cmd: str) -> str:
    """A command as the docs show it: paths under the repository relative, the home as ~."""
    return cmd.replace(str(REPO) + "/", "").replace(str(Path.home()), "~")


def log(msg: str) -> None:
    print(f"[quality {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --- model files -----------------------------------------------------------------------

def dequantize_gguf_to_f32(src: Path, dst: Path) -> None:
    """Every tensor of src decoded to F32 with gguf-py's dequantizers, metadata copied."""
    import numpy as np
    from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter, LlamaFileType, quants

    r = GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    tmp = dst.with_name(dst.name + ".tmp")
    w = GGUFWriter(tmp, arch)
    for name, f in r.fields.items():
        if name.startswith("GGUF.") or name in ("general.architecture", "general.file_type",
                                                "general.quantization_version"):
            continue
        vtype = f.types[0]
        sub = f.types[-1] if vtype == GGUFValueType.ARRAY else None
        w.add_key_value(name, f.contents(), vtype, sub)
    w.add_file_type(LlamaFileType.ALL_F32)
    for t in r.tensors:
        a = np.asarray(t.data)
        if t.tensor_type != GGMLQuantizationType.F32:
            a = quants.dequantize(a, t.tensor_type)
        shape = tuple(int(d) for d in reversed(t.shape))  # gguf-py lists ggml order
        w.add_tensor(t.name, np.ascontiguousarray(a, dtype=np.float32).reshape(shape))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tmp.rename(dst)


def tensor_bytes_and_elements(path: Path) -> tuple[int, int]:
    """Bytes of tensor data (every plane) and logical elements (GGUF only; -1 otherwise)."""
    if path.is_file() and path.suffix == ".gguf":
        from gguf import GGUFReader
        r = GGUFReader(path)
        return sum(int(t.n_bytes) for t in r.tensors), sum(int(t.n_elements) for t in r.tensors)
    files = sorted(path.glob("*.safetensors")) if path.is_dir() else [path]
    total = 0
    for f in files:
        with open(f, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(n))
        total += sum(v["data_offsets"][1] - v["data_offsets"][0] for k, v in header.items() if k != "__metadata__")
    return total, -1


def path_size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def gguf_head_dim(path: Path) -> int:
    from gguf import GGUFReader
    r = GGUFReader(path)
    arch = r.fields["general.architecture"].contents()
    for key in (f"{arch}.attention.key_length",):
        if key in r.fields:
            return int(r.fields[key].contents())
    return int(r.fields[f"{arch}.embedding_length"].contents()) // int(r.fields[f"{arch}.attention.head_count"].contents())


def kv_bits(kv: str, hd: int) -> float:
    """Bits per cached element of a KV dtype (src/formats/kv_type.h row layouts)."""
    row_bytes = {"f32": 4 * hd, "f16": 2 * hd, "bf16": 2 * hd, "fp8_e4m3": 4 + hd, "int8": 4 + hd,
                 "int4": 2 * -(-hd // 32) + hd // 2, "nvfp4": 4 + hd // 16 + hd // 2}[kv]
    return 8.0 * row_bytes / hd


# --- running imp -----------------------------------------------------------------------

class Runner:
    def __init__(self, args):
        self.imp = str(Path(args.imp).resolve())
        self.quantize_imp = str(Path(args.quantize_imp or args.imp).resolve())
        self.threads = args.threads
        self.timeout = args.timeout
        # `imp X --help` exits 0 for an unknown X too (CLI11), so read the subcommand list.
        self.has_quantize = Path(self.quantize_imp).exists() and re.search(
            r"^\s+quantize\s", subprocess.run([self.quantize_imp, "--help"], capture_output=True, text=True).stdout,
            re.M) is not None

    def run(self, args: list[str]) -> subprocess.CompletedProcess:
        cmd = [self.quantize_imp if args[0] == "quantize" else self.imp, *args]
        t0 = time.time()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout)
        p.seconds = time.time() - t0  # type: ignore[attr-defined]
        return p


def last_line(text: str) -> str:
    lines = [l for l in text.strip().splitlines() if l.strip() and not l.startswith("\r")]
    return re.sub(r"\s+", " ", lines[-1]).strip() if lines else "(no output)"


@dataclass
class ModelWork:
    model: DemoModel
    settings: str
    work: Path
    f32: Path = field(init=False)
    logits: Path = field(init=False)

    def __post_init__(self):
        self.f32 = self.work / f"{self.model.key}-F32.gguf"
        self.logits = self.work / f"{self.model.key}__{self.settings}.logits"


def quantize_notes(weights: Path) -> list[str]:
    """imp quantize's fallback lines for these weights (written next to them by weights_for)."""
    f = weights.parent / (weights.name + ".notes")
    return [l for l in f.read_text().splitlines() if l.startswith("fallback:")] if f.exists() else []


def made_by(weights: Path, mw: ModelWork) -> str:
    if weights == mw.f32:
        return f"scripts/quality-table.py: {mw.model.path.name} dequantized to F32 with gguf-py"
    if weights == mw.model.path:
        return "downloaded (scripts/fetch-models.sh)"
    cmd = weights.parent / (weights.name + ".command")
    return cmd.read_text().strip() if cmd.exists() else "imp quantize (command not recorded)"


def quantized_path(mw: ModelWork, key: str) -> tuple[Path, str]:
    """Where the weights of WEIGHT_TYPES `key` go, and the --type that makes them."""
    qtype, suffix = next((t, s) for k, _, t, s in WEIGHT_TYPES if k == key)
    name = f"{mw.model.key}-{key}.gguf" if suffix == ".gguf" else f"{mw.model.key}{suffix}"
    return mw.work / name, qtype


class Sweep:
    def __init__(self, args):
        self.args = args
        self.r = Runner(args)
        self.data = Path(args.data)
        self.data.mkdir(parents=True, exist_ok=True)
        self.work = Path(args.work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.text = Path(args.text)
        self.text_sha = sha256_file(self.text)
        self.settings = f"ctx{args.ctx}-chunks{args.chunks}-top{args.top_k}-{self.text_sha[:10]}"
        self.skipped: dict[str, dict[str, str]] = {}  # model key → variant id ("*": all) → why
        self.quantize_errors: dict[tuple[str, str], str] = {}

    def result_path(self, mw: ModelWork, vid: str) -> Path:
        return self.data / f"{mw.model.key}__{self.settings}__{vid}.json"

    def skip(self, model_key: str, vid: str, what: str, why: str) -> None:
        log(f"skip {model_key} {what}: {why}")
        self.skipped.setdefault(model_key, {})[vid] = pretty(f"{what}: {why}")

    def save_skipped(self, model_key: str) -> None:
        """Keeps the reasons of this and earlier runs (for --render-only), minus what is measured now."""
        path = self.data / f"{model_key}__{self.settings}__skipped.json"
        notes = json.loads(path.read_text()) if path.exists() else {}
        notes.update(self.skipped.get(model_key, {}))
        if "*" not in self.skipped.get(model_key, {}):
            notes.pop("*", None)
        notes = {vid: why for vid, why in notes.items()
                 if vid == "*" or not (self.data / f"{model_key}__{self.settings}__{vid}.json").exists()}
        if notes:
            path.write_text(json.dumps(notes, indent=2, sort_keys=True) + "\n")
        elif path.exists():
            path.unlink()

    def ensure_f32(self, mw: ModelWork) -> None:
        if mw.f32.exists():
            return
        log(f"{mw.model.key}: dequantizing {mw.model.path.name} to F32 → {mw.f32}")
        dequantize_gguf_to_f32(mw.model.path, mw.f32)

    def reference(self, mw: ModelWork, need_logits: bool) -> dict | None:
        """The reference record (cached); runs the reference again when its logits are needed."""
        path = self.result_path(mw, "reference")
        if path.exists():
            ref = json.loads(path.read_text())
            if mw.logits.exists() or not need_logits:
                return ref
        self.ensure_f32(mw)
        cmd = ["kld", "-m", str(mw.f32), "-f", str(self.text), "--ctx", str(self.args.ctx), "--chunks",
               str(self.args.chunks), "--top-k", str(self.args.top_k), "--save-logits", str(mw.logits), "-t",
               str(self.r.threads), "--json", "--no-progress"]
        log(f"{mw.model.key}: reference logits ({' '.join(cmd[:2])} … --save-logits)")
        p = self.r.run(cmd)
        if p.returncode != 0:
            self.skip(mw.model.key, "*", "the whole model", f"imp kld --save-logits failed: {last_line(p.stderr)}")
            return None
        saved = json.loads(p.stdout)
        saved["saved"] = pretty(str(saved.get("saved", "")))
        tok = self.r.run(["tokenize", "-m", str(mw.f32), "--file", str(self.text), "--ids-only"])
        n_text_tokens = len(tok.stdout.split()) if tok.returncode == 0 else None
        nbytes, nelem = tensor_bytes_and_elements(mw.f32)
        ref = {"model": mw.model.name, "source": mw.model.path.name, "source_type": mw.model.source_type,
               "settings": self.settings, "ctx": self.args.ctx, "chunks": self.args.chunks, "top_k": self.args.top_k,
               "text": self.text.name, "text_sha256": self.text_sha, "text_bytes": self.text.stat().st_size,
               "n_text_tokens": n_text_tokens, "n_params": nelem, "f32_tensor_bytes": nbytes,
               "head_dim": gguf_head_dim(mw.f32), "command": pretty("imp " + shlex.join(cmd)), "seconds": round(p.seconds, 1),
               "saved": saved, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        path.write_text(json.dumps(ref, indent=2) + "\n")
        return ref

    def weights_for(self, mw: ModelWork, w: str) -> Path | None:
        if w == "f32":
            self.ensure_f32(mw)
            return mw.f32
        if w == "original":
            return mw.model.path
        out, qtype = quantized_path(mw, w)
        if out.exists():
            return out
        if not self.r.has_quantize:
            self.quantize_errors[(mw.model.key, w)] = "this build of imp has no `imp quantize` yet"
            return None
        if (mw.model.key, w) in self.quantize_errors:
            return None
        self.ensure_f32(mw)
        cmd = ["quantize", str(mw.f32), str(out), "--type", qtype, "--threads", str(self.r.threads), "--no-progress"]
        if w in CALIBRATED:
            cmd += ["--calib", str(self.text), "--calib-chunks", str(self.args.chunks), "--ctx", str(self.args.ctx)]
        log(f"{mw.model.key}: imp {shlex.join(cmd)}")
        p = self.r.run(cmd)
        if p.returncode != 0:
            self.quantize_errors[(mw.model.key, w)] = f"`imp quantize --type {qtype}` failed: {last_line(p.stderr)}"
            return None
        (out.parent / (out.name + ".command")).write_text(pretty("imp " + shlex.join(cmd)) + "\n")
        # The summary's fallback / note lines (rows a type cannot hold, what was not written).
        notes = [l for l in p.stdout.splitlines() if l.startswith(("fallback:", "note:", "calibration:"))]
        (out.parent / (out.name + ".notes")).write_text("".join(n + "\n" for n in notes))
        return out

    def measure(self, mw: ModelWork, ref: dict, v: Variant) -> None:
        out = self.result_path(mw, v.id)
        if out.exists() and not self.args.force:
            log(f"{mw.model.key} {v.id}: cached")
            return
        weights = self.weights_for(mw, v.weights)
        if weights is None:
            self.skip(mw.model.key, v.id, v.label, self.quantize_errors[(mw.model.key, v.weights)])
            return
        if not mw.logits.exists():
            ref.update(self.reference(mw, True) or {})
            if not mw.logits.exists():
                self.skip(mw.model.key, v.id, v.label, "no reference logits")
                return
        cmd = ["kld", "-m", str(weights), "-f", str(self.text), "--ref", str(mw.logits), "--kv-type", v.kv,
               "--act-emulate", v.act, "-t", str(self.r.threads), "--json", "--no-progress"] + list(v.extra)
        if weights.is_dir() and not (weights / "tokenizer.json").exists():
            # A SentencePiece GGUF's tokenizer is not exported into the folder: use the original's.
            cmd += ["--tokenizer", str(mw.model.path)]
        log(f"{mw.model.key} {v.id}: imp kld -m {weights.name} --kv-type {v.kv} --act-emulate {v.act}")
        p = self.r.run(cmd)
        if p.returncode != 0:
            self.skip(mw.model.key, v.id, v.label, f"imp kld failed: {last_line(p.stderr)}")
            return
        res = json.loads(p.stdout)
        nbytes, _ = tensor_bytes_and_elements(weights)
        rec = {"model": mw.model.name, "variant": v.__dict__, "settings": self.settings,
               "file": weights.name if v.weights != "f32" else f"{mw.model.key}-F32.gguf",
               "file_bytes": path_size(weights), "tensor_bytes": nbytes,
               "bpw": 8.0 * nbytes / ref["n_params"], "kv_bits": kv_bits(v.kv, ref["head_dim"]),
               "command": pretty("imp " + shlex.join(cmd)), "seconds": round(p.seconds, 1), "kld": res,
               "made_by": made_by(weights, mw), "quantize_notes": quantize_notes(weights),
               "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        out.write_text(json.dumps(rec, indent=2) + "\n")
        log(f"  → PPL {res['ppl_q']:.4f}, mean KLD {res['kld_mean']:.6f}, same top-1 {100 * res['same_top']:.2f} % "
            f"({p.seconds:.0f} s)")

    def run_model(self, m: DemoModel) -> None:
        if not m.path.exists():
            self.skip(m.key, "*", "the whole model", f"{m.path} is missing (scripts/fetch-models.sh)")
            self.save_skipped(m.key)
            return
        # Fail fast (before writing an F32 copy) when this imp cannot run the architecture.
        p = self.r.run(["run", "-m", str(m.path), "--tokens", "1", "-n", "0", "-t", "1"])
        if p.returncode != 0:
            self.skip(m.key, "*", "the whole model", f"`imp run` cannot run it yet: {last_line(p.stderr)}")
            self.save_skipped(m.key)
            return
        mw = ModelWork(m, self.settings, self.work)
        todo = [v for v in variants() if self.args.only is None or re.search(self.args.only, v.id)]
        ref = self.reference(mw, any(self.args.force or not self.result_path(mw, v.id).exists() for v in todo))
        if ref is not None:
            for v in todo:
                self.measure(mw, ref, v)
        self.save_skipped(m.key)


# --- rendering -------------------------------------------------------------------------

def fmt_kld(v: float) -> str:
    return "0" if v == 0 else f"{v:.2e}" if abs(v) < 1e-3 else f"{v:.5f}"


def fmt_bytes(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def load_results(data: Path, settings: str):
    refs, rows, skipped = {}, {}, {}
    for f in sorted(data.glob(f"*__{settings}__*.json")):
        model_key, _, vid = f.stem.split("__")
        rec = json.loads(f.read_text())
        if vid == "skipped":
            skipped[model_key] = rec
        elif vid == "reference":
            refs[model_key] = rec
        else:
            rows.setdefault(model_key, {})[vid] = rec
    return refs, rows, skipped


def render(sweep: Sweep, command: str) -> None:
    refs, rows, skipped = load_results(sweep.data, sweep.settings)
    order = {v.id: i for i, v in enumerate(variants())}
    md = ["# Quality table: what each format costs", "",
          "Generated by `scripts/quality-table.py` — do not edit by hand; re-run it. Raw results: "
          "[`docs/data/quality/`](data/quality/), one JSON per measurement (the exact `imp kld` command is in each).",
          "", f"- Command: `{command}`",
          f"- Date: {dt.date.today().isoformat()} (each result file carries its own timestamp)",
          f"- Text: `{sweep.text.name}` — Jane Austen's six novels from Debian's `r-cran-janeaustenr` "
          f"(`scripts/fetch-text.sh`), {sweep.text.stat().st_size:,} bytes, sha256 `{sweep.text_sha[:16]}…`",
          f"- Settings: context {sweep.args.ctx} tokens, {sweep.args.chunks} chunks (llama.cpp's perplexity "
          "chunking: the second half of each chunk is scored), reference logits stored as top-"
          f"{sweep.args.top_k} + log-sum-exp (docs/eval.md)",
          "- **Reference**: these models are published only quantized (GGUF), so the reference is the "
          "downloaded file dequantized to F32 (gguf-py's dequantizers); every other weight format below is "
          "made from that F32 file by `imp quantize`, so its KLD is the cost of that format alone — not "
          "the distance to the original BF16 model, which is not available. A caveat that follows: the "
          "reference's weights already lie on the downloaded type's grid, so re-quantizing to that type is "
          "nearly lossless, while a format whose blocks do not line up with it pays a re-quantization "
          "penalty on top of its own rounding (and K-quant mixes fall back to Q5_0/Q5_1/Q8_0/IQ4_NL for "
          "rows that are not a multiple of 256, as llama.cpp does — SmolLM2's 576-wide attention). Orderings "
          "here need not hold for an unquantized model.",
          "- Safetensors-folder formats (NVFP4/MXFP4/FP8 checkpoints, INT4 GPTQ) keep embeddings, lm_head and norms "
          "at the source precision as ModelOpt's recipes do (F32 here, since the source is the F32 reference), and "
          "their bits per weight count that. A tensor whose rows a format cannot hold falls back, as llama.cpp's "
          "K-quants do, and `imp quantize` reports it (the row's small print): for INT4 group-128 that is every "
          "linear whose input width is not a multiple of 128 — SmolLM2's 576-wide q/k/v/gate/up/o inputs — which "
          "stays at source precision (GPTQ checkpoints carry one group size, and GPTQ kernels such as vLLM's refuse "
          "partial groups), so SmolLM2's INT4 row is mostly F32 apart from ffn_down; gemma-3-270m's widths (640, "
          "1024, 2048) all fit. Gemma's folders carry no tokenizer.json (`imp quantize` does not export a "
          "SentencePiece GGUF tokenizer), so they are evaluated with `imp kld --tokenizer` of the downloaded GGUF.",
          "- Columns: bits per weight = 8 × tensor bytes (all planes, scales included, embeddings and norms "
          "too) / parameters; PPL of the variant (the F32 reference's PPL is in each section header); mean and "
          "99th-percentile KL divergence to the reference per token (nats); same top-1 = how often the "
          "argmax token agrees with the reference's.",
          "- KV rows run F32 weights with the named KV-cache dtype; activation rows fake-quantize every "
          "linear's input on the fly (`--act-emulate`, src/backends/cpu/act_emulation.h; lm_head excluded as "
          "ModelOpt's recipes exclude it) and compute in FP32 — a preview of Blackwell W4A4 numerics. NVFP4's "
          "global scale is the checkpoint's static `input_scale` where it has one — the \"checkpoint input_scale\" "
          "row, whose weights `imp quantize --calib` made: amax of each linear's calibration input / (6·448), "
          "as ModelOpt writes it, calibrated on the last chunks of the text (the end of *Northanger Abbey*) while "
          "the evaluation reads its first (*Pride and Prejudice*); with --calib the NVFP4 block scales are also "
          "imatrix-weighted — and otherwise dynamic, the amax of the whole activation tensor of each forward "
          "pass (the small print under each row says which).",
          "", "![KLD vs bits per weight](quality-kld-vs-bpw.png)", ""]
    for m in DEMO_MODELS:
        ref = refs.get(m.key)
        notes = skipped.get(m.key, {})
        if ref is None:
            why = notes.get("*", "no results for these settings yet")
            md += [f"## {m.name}", "", f"Not measured: {why}", ""]
            continue
        s = ref["saved"]
        md += [f"## {m.name}", "",
               f"Reference: `{ref['source']}` ({ref['source_type']}) dequantized to F32, {ref['n_params']:,} "
               f"parameters; PPL {s['ppl']:.4f} ± {s['ppl_error']:.4f} over {s['n_scored']:,} scored tokens "
               f"({ref['chunks']} chunks of {ref['ctx']}; the text is {ref['n_text_tokens']:,} tokens with this "
               f"tokenizer). Reference command: `{ref['command']}`.", ""]
        groups = [("weights", "Weight formats", "BPW"), ("kv", "KV-cache dtypes (F32 weights)", "KV bits/elem"),
                  ("act", "Activation emulation", "BPW"),
                  ("decode", "GGUF→NVFP4 decode cache (`--decode-cache nvfp4`, `--nvfp4-lm-head`: every pass scored on "
                             "the NVFP4 copies a decode step reads)", "BPW of the file")]
        recs = sorted(rows.get(m.key, {}).items(), key=lambda kv: order.get(kv[0], 999))
        for g, title, xlabel in groups:
            sel = [(vid, r) for vid, r in recs if r["variant"]["group"] == g]
            if not sel:
                continue
            md += [f"### {title}", "",
                   f"| Variant | File | Size | {xlabel} | PPL | Mean KLD | 99% KLD | Same top-1 |",
                   "|---|---|--:|--:|--:|--:|--:|--:|"]
            for vid, r in sel:
                k = r["kld"]
                x = r["kv_bits"] if g == "kv" else r["bpw"]
                label = r["variant"]["label"]
                if g == "act":
                    label += f" <br><sub>{k.get('act_emulation', '')}</sub>"
                for n in r.get("quantize_notes", []):
                    label += f" <br><sub>{n.replace('; see their lines', '')}</sub>"
                md.append(f"| {label} | `{r['file']}` | {fmt_bytes(r['file_bytes'])} | {x:.2f} | "
                          f"{k['ppl_q']:.4f} ± {k['ppl_q_error']:.4f} | {fmt_kld(k['kld_mean'])} ± {fmt_kld(k['kld_error'])} | "
                          f"{fmt_kld(k['kld_p99'])} | {100 * k['same_top']:.2f} % |")
            md.append("")
        if notes:
            md += ["Not measured (yet):", ""] + [f"- {notes[v]}" for v in sorted(notes, key=lambda v: order.get(v, 999))] + [""]
    md += methods_section(Path(sweep.args.methods_data))
    out = Path(sweep.args.md)
    out.write_text("\n".join(md))
    log(f"wrote {out}")
    plot(refs, rows, Path(sweep.args.png))


# --- calibration methods (imp quantize --method), from docs/data/quant-methods/ -------------

METHODS_TEXT = [
    "Methods (src/quant/, `imp quantize --method …`, `imp imatrix`):", "",
    "| method | what it does | needs |", "|---|---|---|",
    "| `rtn` | the formats core's reference quantizer | — |",
    "| `imatrix` | importance-weighted scale search: ggml's `quantize_row_*_impl` with quant weights for Q2_K…Q6_K, "
    "IQ4_NL/IQ4_XS, Q4_0/Q4_1/Q5_0/Q5_1 (byte-identical to ggml, tests/ref/test_imatrix_quant.py); for NVFP4 "
    "(checkpoint and ggml) a search over the RTN UE4M3 block scale ± 4 codes minimizing Σ w·err² | `--imatrix FILE` "
    "(from `imp imatrix` or llama-imatrix) or `--calib TEXT` |",
    "| `awq` | per group (q/k/v after attn_norm, gate/up after ffn_norm, down after up, o after v when n_head = "
    "n_head_kv) grid search of α ∈ {0, 0.05, …, 0.95}, s = mean\\|x\\|^α normalized, minimizing the group's output "
    "error on 128 kept calibration rows; s folded into the norm gain / up rows and the weight columns | `--calib TEXT` |",
    "| `gptq` | H = 2XᵀX/n, 1 % damping, dead columns, U = chol(H⁻¹), lazy batches of 128; INT4 g128 and NVFP4 column "
    "by column with the block's scale fixed at its first column (`--act-order` available), GGUF types block by block "
    "with the format's own (weighted) quantizer | `--calib TEXT` |",
    "| `smoothquant` | s_j = max\\|X_j\\|^0.5 / max\\|W_j\\|^0.5 folded like AWQ, for W8A8 (INT8; FP8 gains nothing, "
    "see below) | `--calib TEXT` |", "",
    "With `--calib`, the importance (mean x² per input column) is collected in the same pass and the weighted "
    "quantizers are used by every method: the `awq` and `gptq` rows below are AWQ+imatrix and GPTQ+imatrix (after "
    "AWQ's fold the importance is divided by s²).", "",
]

METHODS_AFTER = [
    "Every method beats RTN on mean KLD where measured (AWQ/GPTQ rows missing for a format were not run for lack of "
    "time). NVFP4 and INT4 g128 are not measured end to end with each method yet (time); the unit tests show the "
    "mechanism (tests/quant/test_quant_methods.cc: GPTQ's ‖(W−Ŵ)Xᵀ‖² < 0.8× RTN's for INT4 g128 (with and without "
    "act-order), NVFP4 and Q4_K/Q4_0/IQ4_XS on correlated activations; AWQ's calibration output error < 0.9× RTN's "
    "for INT4, NVFP4, Q4_K, IQ4_XS; the NVFP4 weighted search never raises the weighted error of any row and lowers "
    "it by > 3 % in total).", "",
    "### Where a method does not help", "",
    "- **SmoothQuant with FP8 activations**: E4M3 keeps every channel at a ~2⁻⁴ relative step next to outliers (even "
    "2·10⁴× ones stay normal numbers), so moving magnitude from X into W buys no resolution: over random draws the "
    "W8A8 output error moves from 10 % better to 20 % worse. With INT8 per-token activations the same migration cuts "
    "the error by > 20 %.",
    "- **AWQ with MXFP4**: the E8M0 (power-of-two) block scales absorb much of a per-channel scale; the search wins "
    "on some draws only (it never loses: α = 0 is RTN).",
    "- **GPTQ on 256-element GGUF blocks**: the whole super-block is quantized jointly (its scales come from the "
    "format's own fit), so feedback only flows between blocks; a tensor one block wide gains nothing.", "",
    "### Throughput (SmolLM2-135M, 134.5 M parameters, Q4_0)", "",
    "| method | user CPU s | params / s / core |", "|---|---|---|",
    "| rtn (Q4_0) | ~2 | 6.4·10⁷ (quantize only, from imp quantize's summary) |",
    "| imatrix-weighted (Q4_0) | ~3 | 1.1·10⁷ (quantize only) |",
    "| awq (incl. calibration of 2048 tokens) | 92 | 1.5·10⁶ |",
    "| gptq (incl. calibration with XᵀX) | 160 | 0.84·10⁶ |", "",
]


def methods_section(data: Path) -> list[str]:
    """The calibration-methods comparison (issue 7) from docs/data/quant-methods/summary.json
    (made by that folder's run.sh + table.py), as a section of this document."""
    summary = data / "summary.json"
    md = ["## Calibration methods (`imp quantize --method`)", ""] + METHODS_TEXT
    if not summary.exists():
        return md + [f"No results yet: run `{pretty(str(data / 'run.sh'))}`.", ""]
    rows = json.loads(summary.read_text())
    order = {"rtn": 0, "imatrix": 1, "awq": 2, "gptq": 3, "smoothquant": 4}
    rows.sort(key=lambda r: (r["format"], order.get(r["method"], 9)))
    md += ["### SmolLM2-135M-Instruct", "",
           "Reference: the Q4_1 release dequantized to F32 (`docs/data/quant-methods/dequant_gguf.py`), its logits "
           "saved with `imp kld --save-logits` (top-4096). Evaluation: the first 40 kB of *Pride and Prejudice*, "
           "`--ctx 512 --chunks 4` (1020 scored tokens) — a different text slice from the tables above, so RTN rows "
           "need not match them digit for digit. Calibration: the last 4 chunks of 512 tokens of *Emma* (a different "
           "novel). Every row of a format has the same size (the mix rules decide the types; SmolLM2's 576-column "
           "tensors fall back from Q4_K to Q5_0 and from IQ4_XS to IQ4_NL as llama.cpp does, so Q4_K_M and IQ4_XS are "
           "mostly those). Raw numbers: [`docs/data/quant-methods/`](data/quant-methods/) (`imp kld --json` per run, "
           "`summary.json`), commands: `docs/data/quant-methods/run.sh`, table: its `table.py`. CPU s = user CPU "
           "time of the whole `imp quantize` run (calibration forward, search, quantization) on a 2-core machine "
           "shared with other jobs.", "",
           f"| format | method | bits/weight | mean KLD | 99 % KLD | same top-1 | PPL (ref {rows[0]['ppl_base']:.3f}) "
           "| quantize CPU s |", "|---|---|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        cpu = f"{r['quant_user_s']:.0f}" if r.get("quant_user_s") is not None else "—"
        md.append(f"| {r['format']} | {r['method']} | {r['bpw']:.3f} | {r['kld_mean']:.4f} ± {r['kld_error']:.4f} | "
                  f"{r['kld_p99']:.3f} | {100 * r['same_top']:.1f} % | {r['ppl_q']:.3f} | {cpu} |")
    return md + [""] + METHODS_AFTER


def place_labels(ax, pts: list[tuple[float, float, str, str]]) -> None:
    """Labels next to their points without overlaps: each label tries offsets right, left,
    above and below its point, further out step by step, and takes the first whose box (in
    pixels) hits no placed label and no marker; a thin leader line joins it to its point."""
    import matplotlib.text  # noqa: F401 (Text.get_window_extent below)
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    to_px = ax.transData.transform
    markers = [to_px((x, y)) for x, y, _, _ in pts]
    placed = []  # (x0, y0, x1, y1) of labels (and the legend) already placed, pixels
    if ax.get_legend() is not None:
        lb = ax.get_legend().get_window_extent(renderer)
        placed.append((lb.x0, lb.y0, lb.x1, lb.y1))

    def hits(b, own):
        pad = 2
        for (x0, y0, x1, y1) in placed:
            if b.x0 < x1 + pad and b.x1 > x0 - pad and b.y0 < y1 + pad and b.y1 > y0 - pad:
                return True
        return any(b.x0 - 6 < mx < b.x1 + 6 and b.y0 - 6 < my < b.y1 + 6
                   for j, (mx, my) in enumerate(markers) if j != own)

    def text_box(ann):
        """The label's own box (an Annotation's extent includes its leader line)."""
        ann.update_positions(renderer)
        return matplotlib.text.Text.get_window_extent(ann, renderer)

    axbox = ax.get_window_extent(renderer)
    # Busiest first: points with the most neighbours get the first pick of free space.
    order = sorted(range(len(pts)), key=lambda i: -sum(abs(markers[i][0] - m[0]) < 80 and abs(markers[i][1] - m[1]) < 40
                                                     for m in markers))
    for i in order:
        x, y, label, color = pts[i]
        ann = ax.annotate(label, (x, y), textcoords="offset pixels", xytext=(10, 0), fontsize=8.5, color=color,
                          va="center", ha="left",
                          arrowprops={"arrowstyle": "-", "color": color, "lw": 0.6, "alpha": 0.6, "shrinkA": 0,
                                      "shrinkB": 4},
                          bbox={"boxstyle": "round,pad=0.12", "fc": "white", "ec": "none", "alpha": 0.85}, zorder=4)
        choice = None
        for r in (10, 22, 36, 52, 70, 90, 115):
            for dx, dy, ha in ((r, 0, "left"), (-r, 0, "right"), (r * 0.6, r, "left"), (r * 0.6, -r, "left"),
                               (-r * 0.6, r, "right"), (-r * 0.6, -r, "right"), (0, r, "center"), (0, -r, "center")):
                ann.set_ha(ha)
                ann.xyann = (dx, dy)
                b = text_box(ann)
                inside = b.x0 >= axbox.x0 and b.x1 <= axbox.x1 and b.y0 >= axbox.y0 and b.y1 <= axbox.y1
                if inside and not hits(b, i):
                    choice = b
                    break
            if choice is not None:
                break
        if choice is None:  # crowded: keep the first spot
            ann.set_ha("left")
            ann.xyann = (10, 0)
            choice = text_box(ann)
        placed.append((choice.x0, choice.y0, choice.x1, choice.y1))


def plot(refs: dict, rows: dict, png: Path) -> None:
    """Per model: mean KLD (filled) and 99th percentile (hollow) against bits per weight for
    each weight format and activation emulation (log-log), and against KV bits per element
    for each KV-cache dtype; every point labelled by its format."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    models = [m for m in DEMO_MODELS if m.key in refs]
    if not models:
        return
    fig, axes = plt.subplots(len(models), 2, figsize=(16, 7 * len(models)), squeeze=False,
                             gridspec_kw={"width_ratios": [2.4, 1]})

    def draw(ax, pts, marker, color, name):
        """pts: (x, mean KLD, 99% KLD, label). Mean filled, 99 % hollow, joined by a faint line."""
        pts = sorted(p for p in pts if p[1] > 0)
        if not pts:
            return []
        xs, means, p99 = [p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts]
        ax.vlines(xs, means, p99, colors=color, alpha=0.25, lw=1)
        ax.scatter(xs, means, marker=marker, color=color, s=45, zorder=3, label=f"{name}: mean KLD")
        ax.scatter(xs, p99, marker=marker, facecolors="none", edgecolors=color, s=35, alpha=0.7, zorder=2,
                   label=f"{name}: 99th percentile KLD")
        return [(x, y, label, color) for x, y, _, label in pts]

    def log2_axis(ax, ticks):
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FixedFormatter([f"{t:g}" for t in ticks]))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())

    labels = []  # (axes, points, colour): placed once the layout is final
    for i, m in enumerate(models):
        recs = rows.get(m.key, {})
        ref = refs[m.key]["saved"]
        ax, axk = axes[i]
        w = draw(ax, [(r["bpw"], r["kld"]["kld_mean"], r["kld"]["kld_p99"], r["variant"]["label"].split(" (")[0] +
                       (" ckpt" if "safetensors" in r["variant"]["label"] and "calibrated" not in r["variant"]["label"]
                        else ""))
                      for r in recs.values() if r["variant"]["group"] == "weights"], "o", "tab:blue", "weight format")
        a = draw(ax, [(r["bpw"], r["kld"]["kld_mean"], r["kld"]["kld_p99"],
                       r["variant"]["label"].replace(" weights)", ")").replace("activations, ", "act, ")
                       .replace("checkpoint input_scale (calibrated ModelOpt NVFP4)", "static input_scale"))
                      for r in recs.values() if r["variant"]["group"] == "act"], "s", "tab:red",
                 "activation emulation")
        zero = sorted(r["variant"]["label"].split(" (")[0] for r in recs.values()
                      if r["variant"]["group"] == "weights" and r["kld"]["kld_mean"] == 0)
        if zero:
            ax.text(0.01, 0.01, "KLD exactly 0, not drawn: " + ", ".join(zero), transform=ax.transAxes, fontsize=8,
                    color="gray")
        log2_axis(ax, [4, 5, 6, 8, 12, 16, 24, 32])
        ax.set_yscale("log")
        ax.set_xlabel("bits per weight (log scale; whole file: tensor bytes × 8 / parameters)")
        ax.set_ylabel("KL divergence to the F32 reference, nats/token (log scale)")
        ax.set_title(f"{m.name} (reference PPL {ref['ppl']:.2f}): weight formats and activation emulation",
                     fontsize=11)
        ax.grid(True, which="both", alpha=0.3)
        ax.margins(x=0.1, y=0.3)
        if w or a:
            ax.legend(fontsize=8.5, loc="upper right", framealpha=0.95)
        labels.append((ax, w + a))

        k = draw(axk, [(r["kv_bits"], r["kld"]["kld_mean"], r["kld"]["kld_p99"], r["variant"]["kv"])
                       for r in recs.values() if r["variant"]["group"] == "kv"], "D", "tab:green", "KV dtype")
        log2_axis(axk, [4, 5, 6, 8, 12, 16])
        axk.set_yscale("log")
        axk.set_xlabel("KV-cache bits per element (log scale; scales included)")
        axk.set_ylabel("KL divergence to the F32-KV reference, nats/token (log scale)")
        axk.set_title(f"{m.name}: KV-cache dtypes (F32 weights)", fontsize=11)
        axk.grid(True, which="both", alpha=0.3)
        axk.margins(x=0.2, y=0.3)
        if k:
            axk.legend(fontsize=8.5, loc="upper right", framealpha=0.95)
        else:
            axk.text(0.5, 0.5, "not measured yet", transform=axk.transAxes, ha="center", color="gray")
        labels.append((axk, k))
    fig.tight_layout()
    for ax, pts in labels:
        if pts:
            place_labels(ax, pts)
    fig.savefig(png, dpi=110)
    log(f"wrote {png}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--imp", default=str(REPO / "build" / "imp"), help="the imp binary (default build/imp)")
    ap.add_argument("--quantize-imp", help="the imp binary whose `imp quantize` makes the weight formats "
                    "(default: --imp)")
    ap.add_argument("--text", default=str(CACHE / "text" / "austen.txt"))
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=8)
    ap.add_argument("--top-k", type=int, default=4096)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--models", default=",".join(m.key for m in DEMO_MODELS), help="comma-separated model keys")
    ap.add_argument("--only", help="regex on variant ids (w-q4_0, kv-int4, act-nvfp4-f32, …)")
    ap.add_argument("--force", action="store_true", help="re-measure even where a result file exists")
    ap.add_argument("--render-only", action="store_true", help="only rebuild the table and plot from the results")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per imp command")
    ap.add_argument("--work", default=str(CACHE / "quality"), help="F32 / quantized models and logits (not committed)")
    ap.add_argument("--data", default=str(REPO / "docs" / "data" / "quality"))
    ap.add_argument("--md", default=str(REPO / "docs" / "quality.md"))
    ap.add_argument("--methods-data", default=str(REPO / "docs" / "data" / "quant-methods"),
                    help="the calibration-methods results (summary.json) rendered as the last section")
    ap.add_argument("--png", default=str(REPO / "docs" / "quality-kld-vs-bpw.png"))
    args = ap.parse_args()
    if not Path(args.text).exists():
        sys.exit(f"{args.text} is missing: run scripts/fetch-text.sh")
    if not Path(args.imp).exists():
        sys.exit(f"{args.imp} is missing: build imp first (ninja -C build imp)")
    sweep = Sweep(args)
    keys = args.models.split(",")
    unknown = set(keys) - {m.key for m in DEMO_MODELS}
    if unknown:
        sys.exit(f"unknown model keys {sorted(unknown)}; known: {[m.key for m in DEMO_MODELS]}")
    if not args.render_only:
        if not sweep.r.has_quantize:
            log("this imp has no `quantize` subcommand: weight formats other than F32 and the original are skipped")
        for m in DEMO_MODELS:
            if m.key in keys:
                sweep.run_model(m)
    command = "scripts/quality-table.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in (("ctx", args.ctx), ("chunks", args.chunks), ("top_k", args.top_k)))
    render(sweep, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
