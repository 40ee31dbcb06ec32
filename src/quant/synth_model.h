// `imp synth`: random-weight models with the exact tensor shapes of real ones (model/presets.h).
//
// Weights are Gaussian at per-tensor scales typical of trained llama/qwen checkpoints (so
// quantizers see realistic block statistics and forwards stay finite):
//   token_embd, output, attention and FFN projections : N(0, 0.02²)
//   RMS norm weights (attn_norm, ffn_norm, output_norm, q/k norms) : 1 + N(0, 0.05²)
// Values come from mt19937_64 streams keyed by (seed, tensor index, 64-row chunk), so the
// model is the same for a seed whatever the thread count. Nothing is exactly zero
// (probability 0 for a continuous draw; the quantizers may round tiny values to code 0).
//
// Containers:
//   GGUF (any GGUF weight type): linears in the type; norms F32; token_embd in the type;
//     output (when not tied) in Q6_K for types under 6 bits, else the type, as llama.cpp's
//     mixes keep the lm_head at ≥ 6 bits. A synthetic byte-level BPE tokenizer (synth_vocab.h).
//   ModelOpt safetensors folder (NVFP4_CKPT "nvfp4", FP8_E4M3_TENSOR "fp8", or BF16): HF
//     tensor names (io/tensor_names.h); linears as ModelOpt exports them (NVFP4: weight U8
//     [out, in/2], weight_scale F8_E4M3 [out, in/16], weight_scale_2 F32 [], input_scale
//     F32 []; FP8: weight F8_E4M3, weight_scale F32 [], input_scale F32 []); embeddings,
//     lm_head and norms BF16 (excluded from quantization, as ModelOpt does); config.json,
//     hf_quant_config.json, tokenizer.json and tokenizer_config.json.
// Written tensor by tensor: peak memory is about one F32 copy of the largest tensor plus its
// encoding (2.6 GB for llama3.1-8b's 128256×4096 embedding), so an 8B model fits a 24 GiB
// machine. Quantization runs on a thread pool (backends/cpu/thread_pool.h), rows in parallel,
// bit-identical to the single-threaded reference quantize().
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "formats/format_id.h"
#include "model/presets.h"

namespace imp {

enum class SynthContainer : uint8_t { kGguf, kSafetensors };

struct SynthOptions {
  std::string preset;
  FormatId type = FormatId::Q4_K;
  // A llama.cpp mix ("q4_k_m", "q5_k_s", …; quant/gguf_mix.h): GGUF only; every quantized
  // tensor gets the type `imp quantize --type <mix>` (and llama-quantize) would give it,
  // general.file_type is the mix's. Empty: every linear in `type` (output as below).
  std::string mix;
  SynthContainer container = SynthContainer::kGguf;
  std::string out;         // GGUF: the file; safetensors: the folder (created)
  uint64_t seed = 0;
  int64_t layers = 0;      // > 0 overrides the preset's layer count
  int threads = 0;         // 0: every hardware thread
  std::function<void(const std::string&)> progress;  // one line per tensor (optional)
};

struct SynthTensor {
  enum Kind : uint8_t { kEmbed, kNorm, kProj, kOutput };
  std::string name;              // GGUF name
  std::vector<int64_t> shape;    // PyTorch order: [rows] or [rows, cols]
  Kind kind;
};

struct SynthSummary {
  std::string path;
  int64_t n_tensors = 0;
  uint64_t bytes = 0;  // tensor bytes written
};

// The tensors of a preset in file order (layers overridable as in SynthOptions).
std::vector<SynthTensor> synth_tensor_list(const ModelPreset& p, int64_t n_layer);
// Resolves a --type name: "nvfp4" and "fp8" mean the ModelOpt checkpoint formats unless
// the container is GGUF ("nvfp4" is then ggml's NVFP4); other names are format names, or
// a llama.cpp mix that is not one (q4_k_m …: the mix's base type; set SynthOptions::mix).
FormatId synth_type_from_name(const std::string& name, SynthContainer container);
// The llama.cpp mix a --type names (q4_k_m, q3_k_l, …), or "" for a plain format name.
std::string synth_mix_from_name(const std::string& name);
// The container a type is written in when the user does not choose.
SynthContainer default_synth_container(const std::string& type_name);

SynthSummary synth_model(const SynthOptions& o);

}  // namespace imp
