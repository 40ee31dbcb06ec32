#!/usr/bin/env python3
"""A tiny random-weight Llama as a Hugging Face folder, plus transformers' logits for it,
for tests/ref/test_hf_logits.py (imp's safetensors-folder path against HF).

Run where torch, transformers and tokenizers are installed (CPU is enough):
    python scripts/make-hf-tiny-llama.py tests/data/hf-tiny-llama tests/data/hf-tiny-llama-logits.npz

The folder: config.json, model.safetensors (BF16: 2 layers, hidden 64, 4 heads / 2 KV
heads, head_dim 16, vocab 384, untied lm_head), tokenizer.json (a byte-level BPE trained
here on fixed text, GPT-2 regex pre-tokenizer), tokenizer_config.json. Weights have a
spread of magnitudes per row (2^U(−2, 2)) so that logits have clear margins.

The npz has the keys of scripts/make-reference-logits.py (ids, proj, norms, topk_ids/_vals,
greedy per prompt; meta) computed by transformers in float32 from the folder, plus each
prompt's text (p{i}_text) so the test can check imp's tokenizer too. Also, for each
prequantized checkpoint under tests/data/ckpt (ModelOpt NVFP4/FP8, llm-compressor NVFP4)
see scripts/make-ckpt-logits.py.
"""
import json
import os
import sys

import numpy as np

PROJ_SEED = 20261122
K = 512
TOPK = 32
N_GREEDY = 64
PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    if n < 2:\n        return n\n",
    "In 1969, 3 astronauts flew 384,400 km to the Moon.",
    "Ünïcödé → 日本語, emojis 🚀 and   runs   of   spaces.",
]
TRAIN_TEXT = [
    "The quick brown fox jumps over the lazy dog. The capital of France is Paris. " * 20,
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n" * 20,
    "In 1969, three astronauts flew to the Moon and came back. Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000. " * 20,
]


def projection(vocab: int) -> np.ndarray:
    rng = np.random.default_rng(PROJ_SEED)
    return (rng.standard_normal((K, vocab), dtype=np.float32) / np.sqrt(K)).astype(np.float32)


def make_tokenizer(folder: str, vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(TRAIN_TEXT, trainer)
    assert tok.get_vocab_size() == vocab_size, tok.get_vocab_size()
    tok.save(os.path.join(folder, "tokenizer.json"))
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|endoftext|>",
                   "eos_token": "<|endoftext|>", "add_bos_token": False, "model_max_length": 256}, f, indent=2)


def main() -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder, out = sys.argv[1:3]
    os.makedirs(folder, exist_ok=True)
    vocab = 384
    make_tokenizer(folder, vocab)
    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, head_dim=16, vocab_size=vocab, max_position_embeddings=256,
                      rms_norm_eps=1e-5, bos_token_id=0, eos_token_id=0, tie_word_embeddings=False,
                      architectures=["LlamaForCausalLM"])
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.mul_(torch.exp2(torch.empty(p.shape[0], 1).uniform_(-2, 2)) * 5)
            else:  # norm gains around 1 with spread
                p.copy_(torch.empty_like(p).uniform_(0.5, 1.5))
    model.to(torch.bfloat16).save_pretrained(folder, safe_serialization=True)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(folder, extra)):
            os.remove(os.path.join(folder, extra))

    tok = PreTrainedTokenizerFast.from_pretrained(folder)
    model = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    p = projection(vocab)
    data = {}
    for i, text in enumerate(PROMPTS):
        ids = tok(text, return_tensors="pt", add_special_tokens=False).input_ids
        with torch.no_grad():
            logits = model(ids).logits[0].float().numpy()
            greedy = model.generate(ids, max_new_tokens=N_GREEDY, do_sample=False, eos_token_id=None,
                                    pad_token_id=0)[0, ids.shape[1]:].numpy()
        order = np.argsort(-logits, axis=1, kind="stable")[:, :TOPK]
        srt = np.sort(logits, axis=1)
        print(f"prompt {i}: {ids.shape[1]} tokens, min top-1 margin {np.min(srt[:, -1] - srt[:, -2]):.3g}, "
              f"greedy {greedy[:16].tolist()}…")
        data[f"p{i}_text"] = np.array(text)
        data[f"p{i}_ids"] = ids[0].numpy().astype(np.int32)
        data[f"p{i}_proj"] = (logits.astype(np.float64) @ p.T.astype(np.float64)).astype(np.float32)
        data[f"p{i}_norms"] = np.linalg.norm(logits.astype(np.float64), axis=1)
        data[f"p{i}_topk_ids"] = order.astype(np.int32)
        data[f"p{i}_topk_vals"] = np.take_along_axis(logits, order, axis=1).astype(np.float32)
        data[f"p{i}_greedy"] = greedy.astype(np.int32)
    data["meta"] = np.array([PROJ_SEED, K, TOPK, N_GREEDY, len(PROMPTS)], np.int64)
    np.savez_compressed(out, **data)


if __name__ == "__main__":
    main()
