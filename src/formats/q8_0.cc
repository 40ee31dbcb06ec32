#include "formats/q8_0.h"

#include <cmath>
#include <cstring>

#include "formats/f16.h"

namespace imp {

void quantize_row_q8_0(const float* src, const RowPlanes& dst, int64_t n) {
  auto* out = static_cast<uint8_t*>(dst.data);
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    const float* x = src + b * kQK8_0;
    float amax = 0.0f;
    for (int j = 0; j < kQK8_0; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ8_0 blk;
    blk.d = f32_to_f16(d);
    for (int j = 0; j < kQK8_0; ++j) blk.qs[j] = int8_t(std::roundf(x[j] * id));
    std::memcpy(out + b * sizeof blk, &blk, sizeof blk);
  }
}

void dequantize_row_q8_0(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    BlockQ8_0 blk;
    std::memcpy(&blk, in + b * sizeof blk, sizeof blk);
    const float d = f16_to_f32(blk.d);
    for (int j = 0; j < kQK8_0; ++j) dst[b * kQK8_0 + j] = float(blk.qs[j]) * d;
  }
}

float vec_dot_q8_0(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* wp = static_cast<const uint8_t*>(w.data);
  const auto* ap = static_cast<const uint8_t*>(act);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    BlockQ8_0 x, y;
    std::memcpy(&x, wp + b * sizeof x, sizeof x);
    std::memcpy(&y, ap + b * sizeof y, sizeof y);
    int sumi = 0;
    for (int j = 0; j < kQK8_0; ++j) sumi += int(x.qs[j]) * int(y.qs[j]);
    sum += float(sumi) * f16_to_f32(x.d) * f16_to_f32(y.d);
  }
  return sum;
}

}  // namespace imp
