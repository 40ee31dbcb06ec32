#include "formats/q4_1.h"

#include <algorithm>
#include <cfloat>
#include <cstring>

#include "formats/f16.h"
#include "formats/ggml_cast.h"
#include "formats/q8_1.h"

namespace imp {

void quantize_row_q4_1(const float* src, const RowPlanes& dst, int64_t n) {
  auto* out = static_cast<uint8_t*>(dst.data);
  for (int64_t b = 0; b < n / kQK4_1; ++b) {
    const float* x = src + b * kQK4_1;
    float mn = FLT_MAX, mx = -FLT_MAX;
    for (int j = 0; j < kQK4_1; ++j) {
      if (x[j] < mn) mn = x[j];
      if (x[j] > mx) mx = x[j];
    }
    const float d = (mx - mn) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ4_1 blk;
    blk.d = f32_to_f16(d);
    blk.m = f32_to_f16(mn);
    for (int j = 0; j < kQK4_1 / 2; ++j) {
      const auto q0 = uint8_t(std::min(15, int(cast_f32_i8((x[j] - mn) * id + 0.5f))));
      const auto q1 = uint8_t(std::min(15, int(cast_f32_i8((x[j + 16] - mn) * id + 0.5f))));
      blk.qs[j] = uint8_t(q0 | (q1 << 4));
    }
    std::memcpy(out + b * sizeof blk, &blk, sizeof blk);
  }
}

void dequantize_row_q4_1(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  for (int64_t b = 0; b < n / kQK4_1; ++b) {
    BlockQ4_1 blk;
    std::memcpy(&blk, in + b * sizeof blk, sizeof blk);
    const float d = f16_to_f32(blk.d);
    const float m = f16_to_f32(blk.m);
    float* y = dst + b * kQK4_1;
    for (int j = 0; j < kQK4_1 / 2; ++j) {
      y[j] = float(blk.qs[j] & 0xF) * d + m;
      y[j + 16] = float(blk.qs[j] >> 4) * d + m;
    }
  }
}

float vec_dot_q4_1(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* wp = static_cast<const uint8_t*>(w.data);
  const auto* ap = static_cast<const uint8_t*>(act);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK4_1; ++b) {
    BlockQ4_1 x;
    BlockQ8_1 y;
    std::memcpy(&x, wp + b * sizeof x, sizeof x);
    std::memcpy(&y, ap + b * sizeof y, sizeof y);
    int sumi = 0;
    for (int j = 0; j < kQK4_1 / 2; ++j) {
      sumi += int(x.qs[j] & 0xF) * y.qs[j];
      sumi += int(x.qs[j] >> 4) * y.qs[j + 16];
    }
    // ggml's order: (d_w·d_a)·sumi + m·s.
    sum += (f16_to_f32(x.d) * f16_to_f32(y.d)) * float(sumi) + f16_to_f32(x.m) * f16_to_f32(y.s);
  }
  return sum;
}

}  // namespace imp
