#!/usr/bin/env python3
"""Reference logits for the prequantized checkpoints under tests/data/ckpt (ModelOpt NVFP4,
ModelOpt FP8, llm-compressor NVFP4 — tiny random Llamas), for tests/ref/test_hf_logits.py.

Run where torch and transformers are installed (CPU is enough):
    python scripts/make-ckpt-logits.py tests/data/ckpt
Writes tests/data/ckpt/<name>-logits.npz per checkpoint.

The reference is transformers' LlamaForCausalLM in float32 with the checkpoint's weights
fake-quantized, i.e. decoded back to float32 independently of imp:
  - ModelOpt FP8: ModelOpt's own quantize→dequantize (<name>.fakequant in <ckpt>-ref.npz);
  - NVFP4 (both producers): E2M1 code · E4M3 block scale · global scale G, decoded here with
    numpy (llm-compressor stores G as a divisor: G = 1 / weight_global_scale);
  - embeddings, norms and lm_head as stored (unquantized).
Weight-only: the checkpoints' static input scales (W4A4 / W8A8 activation quantization on
GPUs) are not applied; imp's CPU path does not quantize activations either.
Per prompt (random token ids, vocab 256): p{i}_ids, p{i}_logits (n, 256) float32 and
p{i}_greedy (32 greedy tokens, EOS ignored).
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np

E2M1 = np.array([0, .5, 1, 1.5, 2, 3, 4, 6, -0., -.5, -1, -1.5, -2, -3, -4, -6], np.float32)
PROMPT_LENGTHS = (1, 7, 23)
N_GREEDY = 32


def read_safetensors(path: Path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    return {k: (v["dtype"], v["shape"], body[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in header.items() if k != "__metadata__"}


def plain(dtype, shape, b):
    import torch
    t = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[dtype]
    return torch.frombuffer(bytearray(b), dtype=t).float().numpy().reshape(shape)


def e4m3(b):
    import torch
    return torch.frombuffer(bytearray(b), dtype=torch.float8_e4m3fn).float().numpy()


def nvfp4(packed, scale, g, shape):
    rows, cols = shape[0], shape[1] * 2
    codes = np.frombuffer(packed, np.uint8).reshape(rows, cols // 2)
    vals = np.stack([E2M1[codes & 15], E2M1[codes >> 4]], axis=-1).reshape(rows, cols)
    s = e4m3(scale).reshape(rows, cols // 16)
    return (vals * np.repeat(s * np.float32(g), 16, axis=1)).astype(np.float32)


def weights(folder: Path, ref):
    t = read_safetensors(folder / "model.safetensors")
    out = {}
    for name, (dtype, shape, b) in t.items():
        if name.endswith(".weight") and dtype in ("F32", "F16", "BF16"):
            out[name] = plain(dtype, shape, b)
        elif name.endswith(".weight") and dtype == "F8_E4M3":
            out[name] = ref[name[:-len(".weight")] + ".fakequant"]
        elif name.endswith(".weight") and dtype == "U8":  # ModelOpt NVFP4
            g = np.frombuffer(t[name + "_scale_2"][2], np.float32).item()
            out[name] = nvfp4(b, t[name + "_scale"][2], g, shape)
        elif name.endswith(".weight_packed"):  # compressed-tensors NVFP4
            base = name[:-len("_packed")]
            g = np.float32(1) / np.frombuffer(t[base + "_global_scale"][2], np.float32).item()
            out[base] = nvfp4(b, t[base + "_scale"][2], g, shape)
    return out


def main() -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    root = Path(sys.argv[1])
    for name in ("modelopt-nvfp4", "modelopt-fp8", "llmcompressor-nvfp4"):
        folder = root / name
        ref = np.load(root / f"{name}-ref.npz")
        cfg_d = json.loads((folder / "config.json").read_text())
        cfg_d.pop("quantization_config", None)
        cfg = LlamaConfig(**cfg_d)
        model = LlamaForCausalLM(cfg).eval()
        w = weights(folder, ref)
        sd = model.state_dict()
        missing = [k for k in sd if k not in w]
        assert not missing, f"{name}: no weights for {missing}"
        model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(w[k])) for k in sd})
        rng = np.random.default_rng(7)
        data = {}
        for i, n in enumerate(PROMPT_LENGTHS):
            ids = torch.from_numpy(rng.integers(0, cfg.vocab_size, size=(1, n)).astype(np.int64))
            with torch.no_grad():
                logits = model(ids).logits[0].float().numpy()
                greedy = model.generate(ids, max_new_tokens=N_GREEDY, do_sample=False, eos_token_id=None,
                                        pad_token_id=0)[0, n:].numpy()
            srt = np.sort(logits, axis=1)
            print(f"{name} prompt {i}: {n} tokens, min top-1 margin {np.min(srt[:, -1] - srt[:, -2]):.3g}")
            data[f"p{i}_ids"] = ids[0].numpy().astype(np.int32)
            data[f"p{i}_logits"] = logits.astype(np.float32)
            data[f"p{i}_greedy"] = greedy.astype(np.int32)
        data["meta"] = np.array([len(PROMPT_LENGTHS), N_GREEDY], np.int64)
        np.savez_compressed(root / f"{name}-logits.npz", **data)


if __name__ == "__main__":
    main()
