// What `imp quantize` makes of --type and of each tensor: the target (a GGUF mix, or a
// safetensors scheme and layout) and, per tensor, quantize-or-keep with the reason that is
// printed. Defaults:
//   GGUF: llama.cpp's choice of quantizable tensors (names ending in "weight", 2-D or more,
//         not *_norm.weight, not ffn_gate_inp (MoE router)) and its per-tensor mix rules
//         (quant/gguf_mix.h) — token_embd and output are quantized as llama.cpp does.
//   safetensors: every ≥ 2-D "*.weight" except embeddings (embed_tokens), lm_head, norms
//         and MoE routers (mlp.gate, router), which stay at source precision.
//         A tensor whose row length the scheme cannot hold (INT4 g128 on SmolLM2's 576-wide
//         rows, NVFP4 on rows not a multiple of 16) stays at source precision too — the
//         analogue of llama.cpp's K-quant fallbacks — and is listed as excluded in the config;
//         forcing it with --quantize is an error.
//   --keep REGEX / --quantize REGEX (PCRE2 via common/bounded_regex.h, searched in the output tensor name)
//   override the default; a tensor matching both is kept.
#pragma once

#include <optional>
#include "common/bounded_regex.h"
#include <string>
#include <vector>

#include "formats/format_id.h"
#include "quant/gguf_mix.h"
#include "quant/quant_input.h"

namespace imp {

enum class StScheme {
  kPlain,       // f32 / f16 / bf16: every tensor converted
  kNvfp4,       // NVFP4_CKPT, layout modelopt or compressed-tensors
  kFp8Tensor,   // FP8_E4M3_TENSOR, ModelOpt FP8 layout
  kFp8Channel,  // FP8_E4M3_CHANNEL, compressed-tensors float-quantized channel
  kFp8Block,    // FP8_E4M3_BLOCK128, DeepSeek weight_scale_inv + quant_method fp8
  kMxfp4,       // MXFP4_CKPT, gpt-oss _blocks/_scales
  kGptq,        // INT4_GROUP g128, GPTQ v1 layout
};

struct QuantTarget {
  OutputKind kind = OutputKind::kGguf;
  std::string type;            // as given
  std::optional<GgufMix> mix;  // GGUF
  StScheme scheme = StScheme::kPlain;
  bool compressed_tensors = false;  // NVFP4 layout
  FormatId format = FormatId::F32;  // safetensors target format
  int32_t group = 0;
};

// kind from OUT: a path ending in ".gguf" is a GGUF file, anything else a folder.
QuantTarget parse_target(const std::string& type, const std::string& out_path, const std::string& layout, bool pure);
std::string target_type_list();

struct Overrides {
  std::vector<BoundedRegex> keep, quantize;
  static Overrides compile(const std::vector<std::string>& keep, const std::vector<std::string>& quantize);
};

struct Decision {
  bool quantize = false;
  FormatId to = FormatId::F32;  // the stored format (for a kept tensor: its source format or F32)
  std::string reason;
  // The target cannot hold this tensor's rows, so it got the fallback: GGUF llama.cpp's
  // (Q4_K → Q5_0, …); safetensors schemes keep it at source precision. The summary counts them.
  bool fallback = false;
};

// Model facts for the GGUF rules, from the input's tensors and config.
GgufMixModel gguf_mix_model(const QuantInput& in);

// One decision per input tensor (same order). GGUF rules count attn_v tensors in order, so
// the whole list is decided at once.
std::vector<Decision> decide(const QuantInput& in, const QuantTarget& target, const Overrides& ov);

}  // namespace imp
