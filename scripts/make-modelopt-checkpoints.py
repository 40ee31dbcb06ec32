#!/usr/bin/env python3
"""Real NVIDIA ModelOpt checkpoints of a tiny random Llama, for tests/ref/test_modelopt_real.py.

Run where torch, transformers and nvidia-modelopt are installed (CPU is enough; the tests
themselves need none of them):
    python scripts/make-modelopt-checkpoints.py tests/data/ckpt
Writes, per algorithm (nvfp4, fp8):
  modelopt-<algo>/            the folder export_hf_checkpoint() wrote (config.json,
                              hf_quant_config.json, model.safetensors)
  modelopt-<algo>-ref.npz     for every quantized Linear: `<name>.orig` the float32 weight
                              before quantization and, where ModelOpt can run it on the CPU
                              (FP8, not NVFP4), `<name>.fakequant`: ModelOpt's own
                              quantize→dequantize of it (weight_quantizer(weight))
The model is 2 layers, hidden 64, so everything stays under a few hundred kB.
"""
import os
import sys

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

import modelopt.torch.quantization as mtq
from modelopt.torch.export import export_hf_checkpoint


def main() -> None:
    out_root = sys.argv[1]
    for algo, qcfg in (("nvfp4", mtq.NVFP4_DEFAULT_CFG), ("fp8", mtq.FP8_DEFAULT_CFG)):
        torch.manual_seed(0)
        cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=2, vocab_size=256, max_position_embeddings=128,
                          architectures=["LlamaForCausalLM"])
        model = LlamaForCausalLM(cfg).eval()
        # Weights with a realistic spread of magnitudes per row (not all N(0, 0.02)).
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.dim() == 2:
                    p.mul_(torch.exp2(torch.empty(p.shape[0], 1).uniform_(-3, 3)))
        orig = {n: m.weight.detach().float().clone() for n, m in model.named_modules()
                if isinstance(m, torch.nn.Linear)}

        def calib(m):
            for _ in range(4):
                m(torch.randint(0, 256, (1, 16)))

        model = mtq.quantize(model, qcfg, calib)
        ref = {}
        with torch.no_grad():
            for n, m in model.named_modules():
                if n in orig and hasattr(m, "weight_quantizer") and m.weight_quantizer.is_enabled:
                    ref[n + ".orig"] = orig[n].numpy()
                    try:  # ModelOpt's own quantize→dequantize; NVFP4's needs CUDA, so CPU runs skip it
                        ref[n + ".fakequant"] = m.weight_quantizer(m.weight.float()).float().numpy()
                    except AssertionError:
                        pass
        folder = os.path.join(out_root, f"modelopt-{algo}")
        export_hf_checkpoint(model, export_dir=folder)
        for extra in ("generation_config.json",):
            path = os.path.join(folder, extra)
            if os.path.exists(path):
                os.remove(path)
        np.savez_compressed(os.path.join(out_root, f"modelopt-{algo}-ref.npz"), **ref)
        print(algo, sorted(os.listdir(folder)), sum(k.endswith(".orig") for k in ref), "quantized linears")


if __name__ == "__main__":
    main()
