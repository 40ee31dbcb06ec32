// GGUF quantization mixes — llama.cpp's llama_ftype presets and its per-tensor rules
// (llama-quant.cpp, llama_tensor_get_type), so that `imp quantize --type q4_k_m` picks the
// same type for every tensor as `llama-quantize … Q4_K_M` does. The rule table is in
// gguf_mix.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "formats/format_id.h"

namespace imp {

struct GgufMix {
  std::string_view name;  // as users type it: "q4_k_m"
  int32_t file_type;      // general.file_type (llama_ftype)
  FormatId base;          // llama.cpp's default_type for the ftype
  bool pure;              // no per-tensor rules (a bare type without a llama.cpp preset)
};

// The mix for a --type name (case-insensitive), or nullopt.
std::optional<GgufMix> find_gguf_mix(std::string_view name);
std::vector<std::string_view> gguf_mix_names();

// What the rules need to know about the model and the tensor.
struct GgufMixModel {
  int64_t n_layer = 0;
  int64_t n_head = 0, n_head_kv = 0;  // n_gqa = n_head / n_head_kv
  int64_t n_expert = 0;
  int64_t n_attention_wv = 0;  // number of attn_v tensors
  bool has_output = false;     // a separate output.weight (untied)
  bool has_imatrix = false;
};

struct GgufMixChoice {
  FormatId format;
  std::string reason;  // "q4_k_m: attn_v use_more_bits → q6_k", "fallback: 384 % 256 ≠ 0 → q5_0"
  bool fallback = false;  // the row-length fallback replaced the rule's type
};

// Type for a quantizable tensor (2-D/3-D weight, not a norm, not a router). `i_attention_wv`
// is the index of this tensor among the attn_v tensors in llama.cpp's order (layer, name);
// `layer` is the blk index (-1 for non-block tensors); ne0 = row length, ne2 = experts (1
// for plain matrices). Applies the row-length fallback of llama.cpp; throws imp::Error when
// even the fallback cannot hold the row (types without one: q4_0 … q8_0, f16 …).
GgufMixChoice gguf_mix_tensor_type(const GgufMix& mix, const GgufMixModel& model, const std::string& name, int layer,
                                   int i_attention_wv, int64_t ne0, int64_t ne2);

// The row-length fallback alone (llama.cpp convert_incompatible_tensor): nullopt when the
// type has none.
std::optional<FormatId> gguf_fallback_type(FormatId f);

}  // namespace imp
