// F16 — IEEE 754 binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
// Spec: ../shared/specs/formats.md §1.2 (ggml ggml_compute_fp32_to_fp16).
//   decode: exact IEEE (subnormals M·2^-24, E=31 → Inf/NaN).
//   encode: round to nearest even, subnormals kept; |x| ≥ 65520 → ±Inf;
//           any NaN → 0x7E00 | sign (payload dropped).
#pragma once

#include <cstdint>

#include "common/bits.h"
#include "formats/row_planes.h"

namespace imp {

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  const uint32_t e = (h >> 10) & 0x1F;
  const uint32_t m = h & 0x3FF;
  if (e == 0) {
    const float v = float(m) * 0x1p-24f;  // exact: m < 2^10
    return sign ? -v : v;
  }
  if (e == 31) return f32_from_bits(sign | 0x7F800000u | (m << 13));
  return f32_from_bits(sign | ((e + 112) << 23) | (m << 13));
}

inline uint16_t f32_to_f16(float f) {
  const uint32_t x = f32_bits(f);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000);
  uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return sign | 0x7E00;       // NaN
  if (ax >= 0x477FF000u) return sign | 0x7C00;      // ≥ 65520 rounds to Inf
  if (ax < 0x38800000u) {                           // below 2^-14: subnormal
    // Adding 0.5 puts the 2^-24 unit at the float's last mantissa bit, so the FPU
    // does the round-to-nearest-even for us.
    const float r = f32_from_bits(ax) + 0.5f;
    return sign | uint16_t(f32_bits(r) - 0x3F000000u);
  }
  ax += 0xC8000FFFu + ((ax >> 13) & 1);             // rebias (−112 << 23) and RNE
  return sign | uint16_t(ax >> 13);
}

void dequantize_row_f16(const ConstRowPlanes& src, float* dst, int64_t n);
void quantize_row_f16(const float* src, const RowPlanes& dst, int64_t n);
// Dot with an F32 activation row, accumulated in FP32 in element order.
float vec_dot_f16(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
