// FP8 E5M2 — 1 sign, 5 exponent (bias 15), 2 mantissa bits; IEEE-like with Inf and NaN.
// Spec: ../shared/specs/formats.md §1.5 (OCP OFP8; torch float8_e5m2).
//   decode: E≠0,31: (4+M)·2^(E−17); E=0: M·2^-16; E=31: M=0 → ±Inf, else NaN.
//   encode (torch): RNE; |x| ≥ 61440 (ties to even = Inf) → ±Inf; NaN → 0x7F | sign.
//   Max finite 57344 (0x7B).
#pragma once

#include <cmath>
#include <cstdint>

#include "common/bits.h"
#include "formats/row_planes.h"

namespace imp {

inline float e5m2_to_f32(uint8_t b) {
  const uint32_t e = (b >> 2) & 0x1F, m = b & 3;
  float v;
  if (e == 31) {
    v = m ? NAN : INFINITY;
  } else if (e == 0) {
    v = float(m) * 0x1p-16f;
  } else {
    v = std::ldexp(float(4 + m), int(e) - 17);
  }
  return (b & 0x80) ? -v : v;
}

inline uint8_t f32_to_e5m2(float f) {
  const uint32_t x = f32_bits(f);
  const uint8_t sign = uint8_t((x >> 24) & 0x80);
  uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return sign | 0x7F;                 // NaN
  if (f32_from_bits(ax) >= 61440.0f) return sign | 0x7C;    // rounds to Inf
  if (ax < 0x38800000u) {                                   // below 2^-14: units of 2^-16
    const float r = f32_from_bits(ax) + 128.0f;             // 2^7: its ulp is 2^-16
    return sign | uint8_t(f32_bits(r) - f32_bits(128.0f));
  }
  ax += 0xFFFFFu + ((ax >> 21) & 1);  // RNE to 2 mantissa bits
  const uint32_t e = (ax >> 23) - 127 + 15;
  return sign | uint8_t((e << 2) | ((ax >> 21) & 3));
}

void dequantize_row_f8_e5m2(const ConstRowPlanes& src, float* dst, int64_t n);
void quantize_row_f8_e5m2(const float* src, const RowPlanes& dst, int64_t n);
// Dot with an F32 activation row, accumulated in FP32 in element order.
float vec_dot_f8_e5m2(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
