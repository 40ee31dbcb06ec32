#include "formats/int8_channel.h"

#include <cmath>
#include <cstring>

#include "common/bits.h"
#include "formats/f16.h"
#include "formats/q8_0.h"

namespace imp {

void quantize_row_int8_channel(const float* src, const RowPlanes& dst, int64_t n) {
  auto* q = static_cast<int8_t*>(dst.data);
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = std::fmax(amax, std::fabs(src[i]));
  const float s = amax / 127.0f;
  std::memcpy(dst.scales, &s, sizeof s);
  for (int64_t i = 0; i < n; ++i) {
    // std::round is half-away-from-zero; s == 0 only for an all-zero row; NaN → 0.
    const float r = s > 0.0f ? std::round(src[i] / s) : 0.0f;
    q[i] = int8_t(r >= -127.0f ? std::fmin(r, 127.0f) : (r < 0.0f ? -127.0f : 0.0f));
  }
}

void dequantize_row_int8_channel(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* q = static_cast<const int8_t*>(src.data);
  const float s = load_f32(src.scales);
  for (int64_t i = 0; i < n; ++i) dst[i] = float(q[i]) * s;
}

float vec_dot_int8_channel(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* q = static_cast<const int8_t*>(w.data);
  const auto* ap = static_cast<const uint8_t*>(act);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    BlockQ8_0 y;
    std::memcpy(&y, ap + b * sizeof y, sizeof y);
    int sumi = 0;
    for (int j = 0; j < kQK8_0; ++j) sumi += int(q[b * kQK8_0 + j]) * int(y.qs[j]);
    sum += float(sumi) * f16_to_f32(y.d);
  }
  return sum * load_f32(w.scales);
}

}  // namespace imp
