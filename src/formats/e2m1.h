// FP4 E2M1 — 1 sign (bit 3), 2 exponent (bias 1), 1 mantissa bit; no Inf, no NaN.
// Spec: ../shared/specs/formats.md §1.6 (OCP MX v1.0; ModelOpt/transformers FP4_VALUES).
//   code:  0   1    2  3    4  5  6  7 | 8..15 = the same values negated (8 = −0)
//   value: 0  0.5   1 1.5   2  3  4  6
// ggml stores twice these values as int8 (kvalues_fp4) and halves every scale it
// multiplies with, so that products stay integer-exact.
#pragma once

#include <cstdint>

#include "formats/row_planes.h"

namespace imp {

inline constexpr float kE2M1Values[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                          -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
// ggml kvalues_fp4 / kvalues_mxfp4: 2 × E2M1.
inline constexpr int8_t kE2M1TimesTwo[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

inline float e2m1_to_f32(uint8_t code) { return kE2M1Values[code & 0xF]; }

// ModelOpt _cast_fp4 / compressed-tensors cast_to_fp4: RNE on |v| with saturation at 6,
// sign bit = (v < 0), so small negatives give code 8 (−0). NaN → 0.
inline uint8_t f32_to_e2m1_rne(float v) {
  const float a = v < 0 ? -v : v;
  uint8_t c;
  if (!(a > 0.25f)) c = 0;  // also NaN
  else if (a < 0.75f) c = 1;
  else if (a <= 1.25f) c = 2;
  else if (a < 1.75f) c = 3;
  else if (a <= 2.5f) c = 4;
  else if (a < 3.5f) c = 5;
  else if (a <= 5.0f) c = 6;
  else c = 7;
  return uint8_t(c | (v < 0 ? 8 : 0));
}

void dequantize_row_e2m1(const ConstRowPlanes& src, float* dst, int64_t n);
void quantize_row_e2m1(const float* src, const RowPlanes& dst, int64_t n);

}  // namespace imp
