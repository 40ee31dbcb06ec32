// Model shape presets for `imp synth`: the exact hyper-parameters and tensor shapes of real
// decoder-only models, so that synthetic (random-weight) models have their memory footprint,
// bandwidth and kernel shapes. Sources: the models' Hugging Face config.json files.
//   llama3.1-8b : 4096 embd, 32 layers, 32 heads / 8 KV heads, head_dim 128, ffn 14336,
//                 vocab 128256, rope θ 500000, rms eps 1e-5, separate lm_head
//   llama3.2-1b : 2048 embd, 16 layers, 32 / 8 heads, head_dim 64, ffn 8192, vocab 128256,
//                 rope θ 500000, tied embeddings
//   qwen3-8b    : 4096 embd, 36 layers, 32 / 8 heads, head_dim 128, ffn 12288, vocab 151936,
//                 rope θ 1000000, rms eps 1e-6, per-head q/k RMS norms, separate lm_head
//   tiny        : 256 embd, 2 layers, 4 / 2 heads, head_dim 64, ffn 512, vocab 512 (tests)
// The llama3 RoPE frequency scaling (rope_freqs) of the 3.x models is not reproduced: it
// changes no shape and no byte count.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace imp {

struct ModelPreset {
  std::string_view name;
  std::string_view arch;        // GGUF architecture: "llama" or "qwen3"
  std::string_view hf_class;    // config.json "architectures"
  std::string_view hf_type;     // config.json "model_type"
  int64_t n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx;
  float rope_theta, rms_eps;
  bool tied_embeddings;
  bool qk_norm;
};

std::span<const ModelPreset> model_presets();
// Throws imp::Error listing the known presets when `name` is not one.
const ModelPreset& find_model_preset(std::string_view name);

}  // namespace imp
