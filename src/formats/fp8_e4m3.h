// FP8 E4M3FN — 1 sign, 4 exponent (bias 7), 3 mantissa bits; finite only ("fn").
// Spec: ../shared/specs/formats.md §1.4 (OCP OFP8; torch Float8_e4m3fn).
//   decode: E≠0: (8+M)·2^(E−10); E=0: M·2^-9; S.1111.111 (0x7F/0xFF) = NaN; no Inf.
//   encode (torch .to(float8_e4m3fn)): RNE, non-saturating: |x| ≤ 464 rounds normally
//   (464 ties to 448), |x| > 464, ±Inf and NaN → NaN with the input's sign.
//   Max finite 448 (0x7E).
#pragma once

#include <cmath>
#include <cstdint>

#include "common/bits.h"
#include "formats/row_planes.h"

namespace imp {

inline float e4m3_to_f32(uint8_t b) {
  const uint32_t e = (b >> 3) & 0xF, m = b & 7;
  float v;
  if (e == 15 && m == 7) {
    v = NAN;
  } else if (e == 0) {
    v = float(m) * 0x1p-9f;
  } else {
    v = std::ldexp(float(8 + m), int(e) - 10);
  }
  return (b & 0x80) ? -v : v;
}

inline uint8_t f32_to_e4m3(float f) {
  const uint32_t x = f32_bits(f);
  const uint8_t sign = uint8_t((x >> 24) & 0x80);
  uint32_t ax = x & 0x7FFFFFFFu;
  const float a = f32_from_bits(ax);
  if (!(a <= 464.0f)) return sign | 0x7F;  // NaN, Inf, overflow → NaN
  if (a < 0x1p-6f) {                       // subnormal: units of 2^-9, RNE via the FPU
    const float r = a + 16384.0f;          // 2^14: its ulp is 2^-9
    return sign | uint8_t(f32_bits(r) - f32_bits(16384.0f));
  }
  ax += 0x7FFFFu + ((ax >> 20) & 1);  // RNE to 3 mantissa bits
  const uint32_t e = (ax >> 23) - 127 + 7;
  return sign | uint8_t((e << 3) | ((ax >> 20) & 7));
}

// OCP saturating conversion (overflow → ±448, NaN stays NaN). Producers that clamp
// before the cast (vLLM's reference NVFP4 block-scale path) get this behaviour.
inline uint8_t f32_to_e4m3_saturate(float f) {
  if (std::isnan(f)) return f32_to_e4m3(f);
  return f32_to_e4m3(std::fmin(std::fmax(f, -448.0f), 448.0f));
}

void dequantize_row_f8_e4m3(const ConstRowPlanes& src, float* dst, int64_t n);
void quantize_row_f8_e4m3(const float* src, const RowPlanes& dst, int64_t n);
// Dot with an F32 activation row, accumulated in FP32 in element order.
float vec_dot_f8_e4m3(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
