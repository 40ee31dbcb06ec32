#include "formats/q4_0.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "formats/f16.h"
#include "formats/q8_0.h"

namespace imp {

void quantize_row_q4_0(const float* src, const RowPlanes& dst, int64_t n) {
  auto* out = static_cast<uint8_t*>(dst.data);
  for (int64_t b = 0; b < n / kQK4_0; ++b) {
    const float* x = src + b * kQK4_0;
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK4_0; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ4_0 blk;
    blk.d = f32_to_f16(d);
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      const uint8_t q0 = uint8_t(std::min<int8_t>(15, int8_t(x[j] * id + 8.5f)));
      const uint8_t q1 = uint8_t(std::min<int8_t>(15, int8_t(x[j + 16] * id + 8.5f)));
      blk.qs[j] = uint8_t(q0 | (q1 << 4));
    }
    std::memcpy(out + b * sizeof blk, &blk, sizeof blk);
  }
}

void dequantize_row_q4_0(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  for (int64_t b = 0; b < n / kQK4_0; ++b) {
    BlockQ4_0 blk;
    std::memcpy(&blk, in + b * sizeof blk, sizeof blk);
    const float d = f16_to_f32(blk.d);
    float* y = dst + b * kQK4_0;
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      y[j] = float(int(blk.qs[j] & 0xF) - 8) * d;
      y[j + 16] = float(int(blk.qs[j] >> 4) - 8) * d;
    }
  }
}

float vec_dot_q4_0(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* wp = static_cast<const uint8_t*>(w.data);
  const auto* ap = static_cast<const uint8_t*>(act);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK4_0; ++b) {
    BlockQ4_0 x;
    BlockQ8_0 y;
    std::memcpy(&x, wp + b * sizeof x, sizeof x);
    std::memcpy(&y, ap + b * sizeof y, sizeof y);
    int sumi = 0;
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      sumi += (int(x.qs[j] & 0xF) - 8) * y.qs[j];
      sumi += (int(x.qs[j] >> 4) - 8) * y.qs[j + 16];
    }
    sum += float(sumi) * f16_to_f32(x.d) * f16_to_f32(y.d);
  }
  return sum;
}

}  // namespace imp
