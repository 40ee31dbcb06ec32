// BF16 — the top 16 bits of an fp32: 1 sign, 8 exponent (bias 127), 7 mantissa bits.
// Spec: ../shared/specs/formats.md §1.3 (ggml ggml_compute_fp32_to_bf16).
//   decode: fp32 bits = bf16 << 16 (exact).
//   encode: NaN → (u >> 16) | 0x0040 (quiet, sign and top payload kept);
//           else (u + 0x7FFF + ((u >> 16) & 1)) >> 16 (RNE; subnormals kept; overflow → Inf).
#pragma once

#include <cstdint>

#include "common/bits.h"
#include "formats/row_planes.h"

namespace imp {

inline float bf16_to_f32(uint16_t h) { return f32_from_bits(uint32_t(h) << 16); }

inline uint16_t f32_to_bf16(float f) {
  const uint32_t u = f32_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((u >> 16) | 0x0040);
  return uint16_t((u + 0x7FFFu + ((u >> 16) & 1)) >> 16);
}

void dequantize_row_bf16(const ConstRowPlanes& src, float* dst, int64_t n);
void quantize_row_bf16(const float* src, const RowPlanes& dst, int64_t n);
// Dot with an F32 activation row, accumulated in FP32 in element order.
float vec_dot_bf16(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
