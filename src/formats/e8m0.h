// E8M0 — OCP MX shared scale: an unsigned biased exponent, value 2^(E−127); 0xFF = NaN;
// no sign, no zero (0x00 = 2^-127). Spec: ../shared/specs/formats.md §1.7.
// ggml's two readings differ from the spec at 0xFF (no NaN) and are kept separate:
//   e8m0_to_f32_ggml(E)      = bits E<<23 (E=0 → 0x00400000)
//   e8m0_to_f32_half_ggml(E) = 2^(E−128), used with the doubled E2M1 table.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/bits.h"
#include "formats/row_planes.h"

namespace imp {

inline float e8m0_to_f32(uint8_t e) {
  if (e == 0xFF) return NAN;
  return e == 0 ? f32_from_bits(0x00400000u) : f32_from_bits(uint32_t(e) << 23);
}

inline float e8m0_to_f32_ggml(uint8_t e) {
  return e == 0 ? f32_from_bits(0x00400000u) : f32_from_bits(uint32_t(e) << 23);
}

inline float e8m0_to_f32_half_ggml(uint8_t e) {
  return e < 2 ? f32_from_bits(0x00200000u << e) : f32_from_bits(uint32_t(e - 1) << 23);
}

// Round-down encoding of a positive power-of-two-ish scale: floor(log2 x) + 127,
// clamped to [0, 254]. NaN or x ≤ 0 → 0xFF / 0x00.
inline uint8_t f32_to_e8m0_floor(float x) {
  if (std::isnan(x)) return 0xFF;
  if (!(x > 0)) return 0;
  const int e = int((f32_bits(x) >> 23) & 0xFF);
  if (e == 0) return 0;  // subnormal fp32 is below 2^-126: clamp to the smallest code
  return uint8_t(e > 254 ? 254 : e);
}

void dequantize_row_e8m0(const ConstRowPlanes& src, float* dst, int64_t n);
void quantize_row_e8m0(const float* src, const RowPlanes& dst, int64_t n);

}  // namespace imp
