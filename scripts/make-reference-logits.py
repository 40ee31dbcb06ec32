#!/usr/bin/env python3
"""Reference logits from Hugging Face transformers for the demo model, stored compactly so
that CI can check imp's logits without torch.

Run on a machine with torch + transformers + accelerate + gguf (not needed by the tests):
    python scripts/make-reference-logits.py MODEL_DIR GGUF_NAME OUT.npz

What is stored, per prompt (token ids from the model's own HF tokenizer):
  text         the prompt
  ids          the prompt token ids
  proj         P · logits[t] for every position t, P a fixed N(0, 1/K) matrix [K, vocab]
               regenerated from PROJ_SEED: by Johnson–Lindenstrauss, ‖P(a−b)‖/‖P b‖
               estimates the relative error ‖a−b‖/‖b‖ within a few percent (K = 512)
  norms        ‖logits[t]‖ (exact)
  topk_ids/_vals  the 32 largest logits of every position (exact, float32)
  greedy       64 greedy next tokens after the prompt (HF generate, do_sample=False)
The full fp32 logits would be 200 kB per position; this is under 3 kB.

Gemma 3: transformers' AutoTokenizer for a gemma3 GGUF adds no <bos> and splits words into
odd pieces, and Gemma without <bos> degenerates (" is is is …"); the prompt ids come from
transformers' GGUF → tokenizers conversion instead (convert_gguf_tokenizer, the tokenizer
tests/ref/test_tokenizer.py checks imp against) with <bos> prepended as the GGUF asks
(tokenizer.ggml.add_bos_token). transformers before ~5.23 converts the Gemma vocabulary
wrongly (" capital" in five pieces): then save a newer release's conversion as
tokenizer.json and set GEMMA3_TOKENIZER_JSON to it. A fifth, long prompt (> 512 tokens) runs past the
sliding window of gemma3's local layers.
"""
import sys

import numpy as np

PROJ_SEED = 20261122
K = 512
TOPK = 32
N_GREEDY = 64
PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    if n < 2:\n        return n\n",
    "In 1969, 3 astronauts flew 384,400 km to the Moon; the trip took about 76 hours.",
    "Ünïcödé → 日本語のテキスト, emojis 🚀🔥 and   runs   of   spaces.",
]


def projection(vocab: int) -> np.ndarray:
    rng = np.random.default_rng(PROJ_SEED)
    return (rng.standard_normal((K, vocab), dtype=np.float32) / np.sqrt(K)).astype(np.float32)


LONG_PROMPT = " ".join(
    f"Chapter {k}. It is a truth universally acknowledged that a single man in possession of a good fortune, "
    f"numbered {k * 37 % 101}, must be in want of a wife; the {['first', 'second', 'third', 'last'][k % 4]} "
    f"ball at Netherfield changed that." for k in range(18))


def gemma3_tokenize(path: str):
    """transformers' GGUF tokenizer conversion + <bos>, as the GGUF asks."""
    import os

    import gguf
    import torch
    try:  # the module moved between transformers releases
        from transformers.integrations.gguf.gguf_tokenizer_mapping import convert_gguf_tokenizer
    except ImportError:
        from transformers.integrations.ggml import convert_gguf_tokenizer

    r = gguf.GGUFReader(path)
    bos = int(r.fields["tokenizer.ggml.bos_token_id"].contents())
    if os.environ.get("GEMMA3_TOKENIZER_JSON"):
        from tokenizers import Tokenizer
        saved = Tokenizer.from_file(os.environ["GEMMA3_TOKENIZER_JSON"])
        return lambda text: torch.tensor([[bos] + saved.encode(text, add_special_tokens=False).ids])
    f = {k: r.fields[k].contents() for k in ("tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.scores",
                                             "tokenizer.ggml.token_type", "tokenizer.ggml.bos_token_id")}
    d = {"tokenizer_type": f["tokenizer.ggml.model"], "tokens": list(f["tokenizer.ggml.tokens"]),
         "scores": list(f["tokenizer.ggml.scores"]), "token_type": list(f["tokenizer.ggml.token_type"])}
    try:
        tok, _ = convert_gguf_tokenizer("gemma3", d)
    except KeyError:  # older releases key the converter by the config's model_type
        tok, _ = convert_gguf_tokenizer("gemma3_text", d)
    bos = int(f["tokenizer.ggml.bos_token_id"])
    return lambda text: torch.tensor([[bos] + tok.encode(text, add_special_tokens=False).ids])


def main() -> None:
    import os

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir, gguf_name, out = sys.argv[1:4]
    model = AutoModelForCausalLM.from_pretrained(model_dir, gguf_file=gguf_name, dtype=torch.float32)
    model.eval()
    prompts = list(PROMPTS)
    if model.config.model_type.startswith("gemma3"):
        encode = gemma3_tokenize(os.path.join(model_dir, gguf_name))
        prompts.append(LONG_PROMPT)
    else:
        tok = AutoTokenizer.from_pretrained(model_dir, gguf_file=gguf_name)
        encode = lambda text: tok(text, return_tensors="pt").input_ids  # noqa: E731
    data = {}
    p = None
    for i, text in enumerate(prompts):
        ids = encode(text)
        with torch.no_grad():
            logits = model(ids).logits[0].float().numpy()
            greedy = model.generate(ids, max_new_tokens=N_GREEDY, do_sample=False)[0, ids.shape[1]:].numpy()
        if p is None:
            p = projection(logits.shape[1])
        order = np.argsort(-logits, axis=1, kind="stable")[:, :TOPK]
        data[f"p{i}_text"] = np.array(text)
        data[f"p{i}_ids"] = ids[0].numpy().astype(np.int32)
        data[f"p{i}_proj"] = (logits.astype(np.float64) @ p.T.astype(np.float64)).astype(np.float32)
        data[f"p{i}_norms"] = np.linalg.norm(logits.astype(np.float64), axis=1)
        data[f"p{i}_topk_ids"] = order.astype(np.int32)
        data[f"p{i}_topk_vals"] = np.take_along_axis(logits, order, axis=1).astype(np.float32)
        data[f"p{i}_greedy"] = greedy.astype(np.int32)
        if ids.shape[1] > 256:  # keep the long prompt compact: every 16th position and the last 8
            n = ids.shape[1]
            pos = np.unique(np.concatenate([np.arange(0, n, 16), np.arange(n - 8, n)])).astype(np.int32)
            for key in ("proj", "norms", "topk_ids", "topk_vals"):
                data[f"p{i}_{key}"] = data[f"p{i}_{key}"][pos]
            data[f"p{i}_pos"] = pos
        print(f"prompt {i}: {ids.shape[1]} tokens, greedy ids: {greedy[:16].tolist()}")
    data["meta"] = np.array([PROJ_SEED, K, TOPK, N_GREEDY, len(prompts)], np.int64)
    np.savez_compressed(out, **data)


if __name__ == "__main__":
    main()
