// llama.cpp's quantization mixes, rule for rule (facts from llama.cpp src/llama-quant.cpp
// llama_tensor_get_type and include/llama.h llama_ftype; no code copied).
//
// ftype table (general.file_type, default type):
//   f32 0 F32 · f16 1 F16 · bf16 32 BF16 · q4_0 2 · q4_1 3 · q8_0 7 · q5_0 8 · q5_1 9
//   q2_k 10 Q2_K · q3_k_s 11 / q3_k_m 12 / q3_k_l 13 Q3_K · q4_k_s 14 / q4_k_m 15 Q4_K
//   q5_k_s 16 / q5_k_m 17 Q5_K · q6_k 18 Q6_K · iq4_nl 25 · iq4_xs 30 · mxfp4_moe 38 MXFP4
//   Bare types without a preset are "pure" (every quantized tensor gets the type, as
//   llama-quantize --pure): q3_k → 12, q4_k → 15, q5_k → 17, mxfp4 → 38, nvfp4 → 39
//   (LLAMA_FTYPE_MOSTLY_NVFP4; ggml's 64-element NVFP4 block, type 40).
//
// Per-tensor rules for the quantized presets (n_gqa = n_head / n_head_kv;
// use_more_bits(i, n) = i < n/8 || i >= 7n/8 || (i − n/8) % 3 == 2):
//   output.weight, and token_embd.weight when there is no output.weight (tied):
//       mxfp4_moe → Q8_0; row % block(base) ≠ 0 → Q8_0; base ≠ Q8_0 → Q6_K
//   mxfp4_moe, everything else: 3-D (experts) → MXFP4, else Q8_0
//   token_embd.weight (untied): base
//   attn_v.weight (i = index among attn_v, n = their count):
//       q2_k: n_gqa ≥ 4 ? Q4_K : Q3_K · q3_k_m: i < 2 ? Q5_K : Q4_K · q3_k_l: Q5_K
//       iq4_nl/iq4_xs with n_gqa ≥ 4: Q5_K · q4_k_m/q5_k_m: use_more_bits(i, n) → Q6_K
//       q4_k_s: i < 4 → Q5_K · 8 experts: Q8_0   (llama.cpp's 70B-only bump is not applied:
//       imp does not classify model sizes)
//   attn_k.weight: 8 experts → Q8_0
//   ffn_down* (i = layer, n = n_layer):
//       q2_k: Q3_K · q3_k_m: i < n/16 ? Q5_K : Q4_K · q3_k_l: Q5_K
//       q4_k_m/q5_k_m: use_more_bits(i, n) → Q6_K · q4_k_s: i < n/8 → Q5_K
//       iq4_nl/iq4_xs without imatrix: i < n/8 → Q5_K
//       q4_0/q5_0 with imatrix: i < n/8 → Q4_1/Q5_1
//   attn_output.weight: 8 experts: q2_k, q3_k_s, q3_k_m, iq4_nl, q4_k_s, q4_k_m, iq4_xs → Q5_K;
//       otherwise q2_k → Q3_K, q3_k_m → Q4_K, q3_k_l → Q5_K
//   attn_qkv.weight: q3_k_m/q3_k_l → Q4_K, q4_k_m → Q5_K, q5_k_m → Q6_K
// Row-length fallback (row % block(type) ≠ 0): Q2_K, Q3_K, IQ4_XS → IQ4_NL; Q4_K → Q5_0;
//   Q5_K → Q5_1; Q6_K → Q8_0; other types have none (an error); a fallback that still does
//   not fit → F16.
#include "quant/gguf_mix.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "common/error.h"
#include "formats/traits.h"

namespace imp {
namespace {

constexpr std::array kMixes = {
    GgufMix{"f32", 0, FormatId::F32, false},        GgufMix{"f16", 1, FormatId::F16, false},
    GgufMix{"bf16", 32, FormatId::BF16, false},     GgufMix{"q4_0", 2, FormatId::Q4_0, false},
    GgufMix{"q4_1", 3, FormatId::Q4_1, false},      GgufMix{"q8_0", 7, FormatId::Q8_0, false},
    GgufMix{"q5_0", 8, FormatId::Q5_0, false},      GgufMix{"q5_1", 9, FormatId::Q5_1, false},
    GgufMix{"q2_k", 10, FormatId::Q2_K, false},     GgufMix{"q3_k_s", 11, FormatId::Q3_K, false},
    GgufMix{"q3_k_m", 12, FormatId::Q3_K, false},   GgufMix{"q3_k_l", 13, FormatId::Q3_K, false},
    GgufMix{"q4_k_s", 14, FormatId::Q4_K, false},   GgufMix{"q4_k_m", 15, FormatId::Q4_K, false},
    GgufMix{"q5_k_s", 16, FormatId::Q5_K, false},   GgufMix{"q5_k_m", 17, FormatId::Q5_K, false},
    GgufMix{"q6_k", 18, FormatId::Q6_K, false},     GgufMix{"iq4_nl", 25, FormatId::IQ4_NL, false},
    GgufMix{"iq4_xs", 30, FormatId::IQ4_XS, false}, GgufMix{"mxfp4_moe", 38, FormatId::MXFP4, false},
    GgufMix{"q3_k", 12, FormatId::Q3_K, true},      GgufMix{"q4_k", 15, FormatId::Q4_K, true},
    GgufMix{"q5_k", 17, FormatId::Q5_K, true},      GgufMix{"mxfp4", 38, FormatId::MXFP4, true},
    GgufMix{"nvfp4", 39, FormatId::NVFP4, true},
};

bool use_more_bits(int64_t i, int64_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }
bool has(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }
bool is_quantized(FormatId f) { return f != FormatId::F32 && f != FormatId::F16 && f != FormatId::BF16; }
std::string tname(FormatId f) { return std::string(format_name(f)); }

// The rule-chosen type before the row-length check; `why` says which rule fired.
FormatId rule_type(const GgufMix& mix, const GgufMixModel& m, const std::string& name, int layer, int i_wv, int64_t ne0,
                   int64_t ne2, std::string& why) {
  const std::string_view f = mix.name;
  const FormatId base = mix.base;
  const int64_t n_gqa = m.n_head_kv > 0 ? m.n_head / m.n_head_kv : 1;
  const bool moe8 = m.n_expert == 8;
  auto set = [&](FormatId t, std::string rule) {
    why = std::move(rule);
    return t;
  };
  if (name == "output.weight" || (!m.has_output && name == "token_embd.weight")) {
    if (f == "mxfp4_moe") return set(FormatId::Q8_0, "output tensor of mxfp4_moe");
    if (ne0 % format_traits(base).block_elems != 0)
      return set(FormatId::Q8_0, "output tensor, row not a multiple of the base block");
    if (base != FormatId::Q8_0) return set(FormatId::Q6_K, "output tensor");
    return base;
  }
  if (f == "mxfp4_moe")
    return ne2 > 1 ? set(FormatId::MXFP4, "expert tensor") : set(FormatId::Q8_0, "non-expert tensor of mxfp4_moe");
  if (name == "token_embd.weight") return base;
  if (has(name, "attn_v.weight")) {
    FormatId t = base;
    if (f == "q2_k")
      t = set(n_gqa >= 4 ? FormatId::Q4_K : FormatId::Q3_K, "attn_v of q2_k");
    else if (f == "q3_k_m")
      t = set(i_wv < 2 ? FormatId::Q5_K : FormatId::Q4_K, "attn_v of q3_k_m");
    else if (f == "q3_k_l")
      t = set(FormatId::Q5_K, "attn_v of q3_k_l");
    else if ((f == "iq4_nl" || f == "iq4_xs") && n_gqa >= 4)
      t = set(FormatId::Q5_K, "attn_v, n_gqa >= 4");
    else if ((f == "q4_k_m" || f == "q5_k_m") && use_more_bits(i_wv, m.n_attention_wv))
      t = set(FormatId::Q6_K, "attn_v use_more_bits");
    else if (f == "q4_k_s" && i_wv < 4)
      t = set(FormatId::Q5_K, "attn_v of the first 4 layers");
    if (moe8) t = set(FormatId::Q8_0, "attn_v of an 8-expert model");
    return t;
  }
  if (has(name, "attn_k.weight")) return moe8 ? set(FormatId::Q8_0, "attn_k of an 8-expert model") : base;
  if (has(name, "ffn_down")) {
    const int64_t i = layer, n = m.n_layer;
    if (f == "q2_k") return set(FormatId::Q3_K, "ffn_down of q2_k");
    if (f == "q3_k_m") return set(i < n / 16 ? FormatId::Q5_K : FormatId::Q4_K, "ffn_down of q3_k_m");
    if (f == "q3_k_l") return set(FormatId::Q5_K, "ffn_down of q3_k_l");
    if ((f == "q4_k_m" || f == "q5_k_m") && use_more_bits(i, n)) return set(FormatId::Q6_K, "ffn_down use_more_bits");
    if ((f == "iq4_nl" || f == "iq4_xs") && !m.has_imatrix && i < n / 8)
      return set(FormatId::Q5_K, "ffn_down, first n/8 layers");
    if (f == "q4_k_s" && i < n / 8) return set(FormatId::Q5_K, "ffn_down, first n/8 layers");
    if ((f == "q4_0" || f == "q5_0") && m.has_imatrix && i < n / 8) {
      return set(f == "q4_0" ? FormatId::Q4_1 : FormatId::Q5_1, "ffn_down, first n/8 layers with imatrix");
    }
    return base;
  }
  if (has(name, "attn_output.weight")) {
    if (moe8) {
      for (std::string_view g : {"q2_k", "q3_k_s", "q3_k_m", "iq4_nl", "q4_k_s", "q4_k_m", "iq4_xs"}) {
        if (f == g) return set(FormatId::Q5_K, "attn_output of an 8-expert model");
      }
      return base;
    }
    if (f == "q2_k") return set(FormatId::Q3_K, "attn_output of q2_k");
    if (f == "q3_k_m") return set(FormatId::Q4_K, "attn_output of q3_k_m");
    if (f == "q3_k_l") return set(FormatId::Q5_K, "attn_output of q3_k_l");
    return base;
  }
  if (has(name, "attn_qkv.weight")) {
    if (f == "q3_k_m" || f == "q3_k_l") return set(FormatId::Q4_K, "attn_qkv");
    if (f == "q4_k_m") return set(FormatId::Q5_K, "attn_qkv");
    if (f == "q5_k_m") return set(FormatId::Q6_K, "attn_qkv");
  }
  return base;
}

}  // namespace

std::optional<GgufMix> find_gguf_mix(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  for (const auto& m : kMixes) {
    if (m.name == lower) return m;
  }
  return std::nullopt;
}

std::vector<std::string_view> gguf_mix_names() {
  std::vector<std::string_view> v;
  for (const auto& m : kMixes) v.push_back(m.name);
  return v;
}

std::optional<FormatId> gguf_fallback_type(FormatId f) {
  switch (f) {
    case FormatId::Q2_K:
    case FormatId::Q3_K:
    case FormatId::IQ4_XS:
      return FormatId::IQ4_NL;
    case FormatId::Q4_K:
      return FormatId::Q5_0;
    case FormatId::Q5_K:
      return FormatId::Q5_1;
    case FormatId::Q6_K:
      return FormatId::Q8_0;
    default:
      return std::nullopt;
  }
}

GgufMixChoice gguf_mix_tensor_type(const GgufMix& mix, const GgufMixModel& model, const std::string& name, int layer,
                                   int i_attention_wv, int64_t ne0, int64_t ne2) {
  GgufMixChoice c{mix.base, std::string(mix.name) + (mix.pure ? " (pure)" : "")};
  if (!is_quantized(mix.base)) return c;
  if (!mix.pure) {
    std::string why;
    c.format = rule_type(mix, model, name, layer, i_attention_wv, ne0, ne2, why);
    if (!why.empty()) c.reason = std::string(mix.name) + ": " + why;
  }
  const int64_t block = format_traits(c.format).block_elems;
  if (ne0 % block != 0) {
    const auto fb = gguf_fallback_type(c.format);
    if (!fb) {
      fail("{}: row length {} is not a multiple of {}'s block of {}, and llama.cpp has no fallback for {}", name, ne0,
           tname(c.format), block, tname(c.format));
    }
    const FormatId to = ne0 % format_traits(*fb).block_elems == 0 ? *fb : FormatId::F16;
    c.reason += fmt::format("; fallback: row {} % {} != 0, {} -> {}", ne0, block, tname(c.format), tname(to));
    c.format = to;
    c.fallback = true;
  }
  return c;
}

}  // namespace imp
