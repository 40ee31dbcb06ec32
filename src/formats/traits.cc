#include "formats/traits.h"

#include <array>
#include <string>

#include "common/error.h"
#include "formats/bf16.h"
#include "formats/e2m1.h"
#include "formats/e8m0.h"
#include "formats/f16.h"
#include "formats/f32.h"
#include "formats/fp8_e4m3.h"
#include "formats/fp8_e5m2.h"
#include "formats/fp8_scaled.h"
#include "formats/int4_group.h"
#include "formats/int8_channel.h"
#include "formats/iq4_nl.h"
#include "formats/iq4_xs.h"
#include "formats/mxfp4.h"
#include "formats/mxfp4_ckpt.h"
#include "formats/nf4.h"
#include "formats/nvfp4.h"
#include "formats/nvfp4_ckpt.h"
#include "formats/q2_k.h"
#include "formats/q3_k.h"
#include "formats/q4_0.h"
#include "formats/q4_1.h"
#include "formats/q4_k.h"
#include "formats/q5_0.h"
#include "formats/q5_1.h"
#include "formats/q5_k.h"
#include "formats/q6_k.h"
#include "formats/q8_0.h"
#include "formats/q8_1.h"
#include "formats/q8_k.h"
#include "formats/ue4m3.h"

namespace imp {
namespace {

using F = FormatId;
using S = ScaleLayout;

// clang-format off
constexpr std::array<FormatTraits, kFormatCount> kTraits = {{
//  id                    name                 gguf elems bytes  bpw      scales         sbytes tensor zeros  act-only dot-activation
  {F::F32,               "f32",               0,   1,   4,   32.0f,    S::kNone,      0, false, false, false, F::F32,  quantize_row_f32,  dequantize_row_f32,  vec_dot_f32},
  {F::F16,               "f16",               1,   1,   2,   16.0f,    S::kNone,      0, false, false, false, F::F32,  quantize_row_f16,  dequantize_row_f16,  vec_dot_f16},
  {F::BF16,              "bf16",              30,  1,   2,   16.0f,    S::kNone,      0, false, false, false, F::F32,  quantize_row_bf16, dequantize_row_bf16, vec_dot_bf16},
  {F::F8_E4M3,           "f8_e4m3",           -1,  1,   1,   8.0f,     S::kNone,      0, false, false, false, F::F32,  quantize_row_f8_e4m3, dequantize_row_f8_e4m3, vec_dot_f8_e4m3},
  {F::F8_E5M2,           "f8_e5m2",           -1,  1,   1,   8.0f,     S::kNone,      0, false, false, false, F::F32,  quantize_row_f8_e5m2, dequantize_row_f8_e5m2, vec_dot_f8_e5m2},
  {F::E2M1,              "e2m1",              -1,  2,   1,   4.0f,     S::kNone,      0, false, false, true,  F::F32,  quantize_row_e2m1, dequantize_row_e2m1, nullptr},
  {F::E8M0,              "e8m0",              -1,  1,   1,   8.0f,     S::kNone,      0, false, false, true,  F::F32,  quantize_row_e8m0, dequantize_row_e8m0, nullptr},
  {F::UE4M3,             "ue4m3",             -1,  1,   1,   8.0f,     S::kNone,      0, false, false, true,  F::F32,  quantize_row_ue4m3, dequantize_row_ue4m3, nullptr},
  {F::Q4_0,              "q4_0",              2,   32,  18,  4.5f,     S::kInBlock,   0, false, false, false, F::Q8_0, quantize_row_q4_0, dequantize_row_q4_0, vec_dot_q4_0},
  {F::Q4_1,              "q4_1",              3,   32,  20,  5.0f,     S::kInBlock,   0, false, false, false, F::Q8_1, quantize_row_q4_1, dequantize_row_q4_1, vec_dot_q4_1},
  {F::Q5_0,              "q5_0",              6,   32,  22,  5.5f,     S::kInBlock,   0, false, false, false, F::Q8_0, quantize_row_q5_0, dequantize_row_q5_0, vec_dot_q5_0},
  {F::Q5_1,              "q5_1",              7,   32,  24,  6.0f,     S::kInBlock,   0, false, false, false, F::Q8_1, quantize_row_q5_1, dequantize_row_q5_1, vec_dot_q5_1},
  {F::Q8_0,              "q8_0",              8,   32,  34,  8.5f,     S::kInBlock,   0, false, false, false, F::Q8_0, quantize_row_q8_0, dequantize_row_q8_0, vec_dot_q8_0},
  {F::Q8_1,              "q8_1",              9,   32,  36,  9.0f,     S::kInBlock,   0, false, false, true,  F::F32,  quantize_row_q8_1, dequantize_row_q8_1, nullptr},
  {F::Q2_K,              "q2_k",              10,  256, 84,  2.625f,   S::kInBlock,   0, false, false, false, F::Q8_K, quantize_row_q2_k, dequantize_row_q2_k, vec_dot_q2_k},
  {F::Q3_K,              "q3_k",              11,  256, 110, 3.4375f,  S::kInBlock,   0, false, false, false, F::Q8_K, quantize_row_q3_k, dequantize_row_q3_k, vec_dot_q3_k},
  {F::Q4_K,              "q4_k",              12,  256, 144, 4.5f,     S::kInBlock,   0, false, false, false, F::Q8_K, quantize_row_q4_k, dequantize_row_q4_k, vec_dot_q4_k},
  {F::Q5_K,              "q5_k",              13,  256, 176, 5.5f,     S::kInBlock,   0, false, false, false, F::Q8_K, quantize_row_q5_k, dequantize_row_q5_k, vec_dot_q5_k},
  {F::Q6_K,              "q6_k",              14,  256, 210, 6.5625f,  S::kInBlock,   0, false, false, false, F::Q8_K, quantize_row_q6_k, dequantize_row_q6_k, vec_dot_q6_k},
  {F::Q8_K,              "q8_k",              15,  256, 292, 9.125f,   S::kInBlock,   0, false, false, true,  F::F32,  quantize_row_q8_k, dequantize_row_q8_k, nullptr},
  {F::IQ4_NL,            "iq4_nl",            20,  32,  18,  4.5f,     S::kInBlock,   0, false, false, false, F::Q8_0, quantize_row_iq4_nl, dequantize_row_iq4_nl, vec_dot_iq4_nl},
  {F::IQ4_XS,            "iq4_xs",            23,  256, 136, 4.25f,    S::kInBlock,   0, false, false, false, F::Q8_K, quantize_row_iq4_xs, dequantize_row_iq4_xs, vec_dot_iq4_xs},
  {F::MXFP4,             "mxfp4",             39,  32,  17,  4.25f,    S::kInBlock,   0, false, false, false, F::Q8_0, quantize_row_mxfp4, dequantize_row_mxfp4, vec_dot_mxfp4},
  {F::NVFP4,             "nvfp4",             40,  64,  36,  4.5f,     S::kInBlock,   0, false, false, false, F::Q8_0, quantize_row_nvfp4, dequantize_row_nvfp4, vec_dot_nvfp4},
  {F::NVFP4_CKPT,        "nvfp4_ckpt",        -1,  16,  8,   4.5f,     S::kPerBlock,  1, true,  false, false, F::Q8_0, quantize_row_nvfp4_ckpt, dequantize_row_nvfp4_ckpt, vec_dot_nvfp4_ckpt},
  {F::MXFP4_CKPT,        "mxfp4_ckpt",        -1,  32,  16,  4.25f,    S::kPerBlock,  1, false, false, false, F::Q8_0, quantize_row_mxfp4_ckpt, dequantize_row_mxfp4_ckpt, vec_dot_mxfp4_ckpt},
  {F::FP8_E4M3_TENSOR,   "fp8_e4m3_tensor",   -1,  1,   1,   8.0f,     S::kPerTensor, 4, true,  false, false, F::F32,  quantize_row_fp8_e4m3_tensor, dequantize_row_fp8_e4m3_tensor, vec_dot_fp8_e4m3_tensor},
  {F::FP8_E4M3_CHANNEL,  "fp8_e4m3_channel",  -1,  1,   1,   8.0f,     S::kPerRow,    4, false, false, false, F::F32,  quantize_row_fp8_e4m3_channel, dequantize_row_fp8_e4m3_channel, vec_dot_fp8_e4m3_channel},
  {F::FP8_E4M3_BLOCK128, "fp8_e4m3_block128", -1,  1,   1,   8.00195f, S::kTile128,   4, false, false, false, F::F32,  quantize_row_fp8_e4m3_block128, dequantize_row_fp8_e4m3_block128, vec_dot_fp8_e4m3_block128},
  {F::INT8_CHANNEL,      "int8_channel",      -1,  32,  32,  8.0f,     S::kPerRow,    4, false, false, false, F::Q8_0, quantize_row_int8_channel, dequantize_row_int8_channel, vec_dot_int8_channel},
  {F::INT4_GROUP,        "int4_group",        -1,  32,  16,  4.1875f,  S::kPerGroup,  2, false, true,  false, F::Q8_0, quantize_row_int4_group, dequantize_row_int4_group, vec_dot_int4_group},
  {F::NF4,               "nf4",               -1,  64,  32,  4.5f,     S::kPerBlock,  4, false, false, false, F::F32,  quantize_row_nf4, dequantize_row_nf4, vec_dot_nf4},
}};
// clang-format on

constexpr bool table_is_indexed_by_id() {
  for (int i = 0; i < kFormatCount; ++i) {
    if (int(kTraits[i].id) != i) return false;
  }
  return true;
}
static_assert(table_is_indexed_by_id(), "kTraits rows must be in FormatId order");

}  // namespace

const FormatTraits& format_traits(FormatId id) {
  const int i = int(id);
  if (i < 0 || i >= kFormatCount) fail("unknown format id {}", i);
  return kTraits[i];
}

std::optional<FormatId> format_from_name(std::string_view name) {
  std::string lower(name);
  for (auto& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& t : kTraits) {
    if (t.name == lower) return t.id;
  }
  return std::nullopt;
}

std::optional<FormatId> format_from_gguf_type(uint32_t gguf_type) {
  for (const auto& t : kTraits) {
    if (t.gguf_type >= 0 && uint32_t(t.gguf_type) == gguf_type) return t.id;
  }
  return std::nullopt;
}

FormatId checked_format_from_gguf_type(uint32_t gguf_type) {
  if (auto id = format_from_gguf_type(gguf_type)) return *id;
  fail("unknown or unsupported GGUF tensor type id {}", gguf_type);
}

}  // namespace imp
