#!/usr/bin/env python3
"""A real llm-compressor (compressed-tensors) NVFP4A16 checkpoint of a tiny random Llama for
tests/ref/test_llmcompressor_real.py. Needs torch, transformers and llmcompressor (CPU is enough):
    python scripts/make-llmcompressor-checkpoint.py tests/data/ckpt/llmcompressor-nvfp4
Writes the folder (save_pretrained(save_compressed=True)) and OUT-ref.npz with each
Linear's float32 weight before quantization (`<name>.orig`)."""
import torch, numpy as np, os, sys
from transformers import LlamaConfig, LlamaForCausalLM
from llmcompressor import oneshot
from llmcompressor.modifiers.quantization import QuantizationModifier
torch.manual_seed(0)
cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=256, max_position_embeddings=128, architectures=["LlamaForCausalLM"])
model = LlamaForCausalLM(cfg).eval()  # tiny random Llama; run: python scripts/make-llmcompressor-checkpoint.py tests/data/ckpt/llmcompressor-nvfp4
with torch.no_grad():
    for n, p in model.named_parameters():
        if p.dim() == 2: p.mul_(torch.exp2(torch.empty(p.shape[0], 1).uniform_(-3, 3)))
# oneshot() reads the model's config from disk, so the random model goes through a folder.
import tempfile
base = tempfile.mkdtemp()
model.save_pretrained(base)
model = LlamaForCausalLM.from_pretrained(base).eval()
orig = {n: m.weight.detach().float().clone().numpy() for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
recipe = QuantizationModifier(targets="Linear", scheme="NVFP4A16", ignore=["lm_head"])
oneshot(model=model, recipe=recipe)
out = sys.argv[1]
model.save_pretrained(out, save_compressed=True)
np.savez_compressed(out + "-ref.npz", **{k + ".orig": v for k, v in orig.items() if k != "lm_head"})
print(sorted(os.listdir(out)))
