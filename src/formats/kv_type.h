// KvType — the element types a KV cache stores its rows in, and their row codecs.
//
// A KV row is one token's K (or V) for one KV head: head_dim floats. Each type below encodes
// such a row into kv_row_bytes(type, head_dim) bytes, scales inside the row, so a paged
// cache can place rows anywhere and decode any row on its own. Scalar encodings and the
// NVFP4 quantizer come from the formats core (f16.h, bf16.h, fp8_e4m3.h, nvfp4_ckpt.h);
// only the row framing is new here. Multi-byte fields are little-endian, read with memcpy.
//
//   f32      : head_dim × F32.
//   f16      : head_dim × F16 (IEEE binary16, RNE).
//   bf16     : head_dim × BF16 (RNE, formats/bf16.h).
//   fp8_e4m3 : F32 s, then head_dim × E4M3FN.   Per token·head scale s = amax / 448
//              (s = 1 for an all-zero row); code = E4M3(x / s) saturated to ±448; y = E4M3·s.
//              A per-row scale keeps large-magnitude K rows (which overflow an unscaled
//              E4M3) and small V rows (which underflow into its subnormals) both usable.
//   int8     : F32 s, then head_dim × int8.     Symmetric, s = amax / 127 (1 for zeros);
//              q = clamp(round_half_away(x / s), −127, 127); y = q·s.
//   int4     : G = ceil(head_dim / 32) F16 scales d_g, then head_dim / 2 bytes; byte k holds
//              element 2k in the low nibble and 2k+1 in the high nibble as q + 8.
//              Symmetric per group of 32 elements (the last group may be shorter, e.g.
//              head_dim 80 = 32 + 32 + 16): d = f16(amax_g / 7) (1 for zeros),
//              q = clamp(round_half_away(x / fp32(d)), −7, 7); y = q·fp32(d).
//              Symmetric, not asymmetric: K/V rows are near zero-mean, and ±7 keeps 0 exact.
//              head_dim must be even.
//   nvfp4    : F32 G, then head_dim / 16 E4M3 scales, then head_dim / 2 E2M1 bytes — the
//              NVFP4_CKPT planes (formats/nvfp4_ckpt.h, ModelOpt quantizer) for one row,
//              with G = amax_row / (6·448) computed per token·head instead of per tensor.
//              y = E2M1 · fp32(E4M3 scale) · G.  head_dim must be a multiple of 16.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "formats/format_id.h"

namespace imp {

enum class KvType : uint8_t { F32, F16, BF16, FP8_E4M3, INT8, INT4, NVFP4 };

inline constexpr KvType kAllKvTypes[] = {KvType::F32,      KvType::F16,  KvType::BF16, KvType::FP8_E4M3,
                                         KvType::INT8,     KvType::INT4, KvType::NVFP4};
inline constexpr int kKvInt4Group = 32;

std::string_view kv_type_name(KvType t);  // "f32", "f16", "bf16", "fp8_e4m3", "int8", "int4", "nvfp4"
// Parses a name above (also "fp8" for fp8_e4m3); fails with the list of valid names.
KvType parse_kv_type(std::string_view name);
// The plain scalar format a row is an array of (f32, f16, bf16), else nullopt — lets a
// backend use its fast row dequantizer for those.
std::optional<FormatId> kv_type_scalar_format(KvType t);

// Whether the type can hold rows of head_dim elements (int4 needs an even head_dim, nvfp4
// a multiple of 16).
bool kv_type_fits_head_dim(KvType t, int64_t head_dim);
// Bytes of one encoded row; fails (naming type and head_dim) where the type does not fit.
int64_t kv_row_bytes(KvType t, int64_t head_dim);

using KvEncodeRowFn = void (*)(const float* src, uint8_t* dst, int64_t head_dim);
using KvDecodeRowFn = void (*)(const uint8_t* src, float* dst, int64_t head_dim);
// Scalar reference codecs (fp32 arithmetic, no FMA).
KvEncodeRowFn kv_encode_row_fn(KvType t);
KvDecodeRowFn kv_decode_row_fn(KvType t);

}  // namespace imp
