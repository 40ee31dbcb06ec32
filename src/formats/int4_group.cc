#include "formats/int4_group.h"

#include <cmath>
#include <cstring>

#include "common/bits.h"
#include "common/error.h"
#include "formats/f16.h"
#include "formats/q8_0.h"

namespace imp {
namespace {

void check_group(int32_t group, int64_t n) {
  if (group <= 0 || group % kQK8_0 != 0 || n % group != 0) {
    fail("int4_group: group size {} must be a positive multiple of {} dividing the row length {}", group, kQK8_0, n);
  }
}

// Round half to even (the default FP environment), clamped to the uint4 range; NaN → 0.
float round_clamp_u4(float v) {
  const float r = std::nearbyint(v);
  return r > 0.0f ? std::fmin(r, 15.0f) : 0.0f;
}

uint8_t nibble(const uint8_t* codes, int64_t e) { return uint8_t((codes[e / 2] >> (4 * (e & 1))) & 0xF); }

}  // namespace

void quantize_row_int4_group(const float* src, const RowPlanes& dst, int64_t n) {
  check_group(dst.group, n);
  auto* codes = static_cast<uint8_t*>(dst.data);
  auto* scales = static_cast<uint8_t*>(dst.scales);
  auto* zeros = static_cast<uint8_t*>(dst.zeros);
  const int64_t g = dst.group;
  std::memset(codes, 0, size_t(n / 2));
  for (int64_t k = 0; k < n / g; ++k) {
    const float* x = src + k * g;
    float lo = 0.0f, hi = 0.0f;
    for (int64_t j = 0; j < g; ++j) {
      lo = std::fmin(lo, x[j]);
      hi = std::fmax(hi, x[j]);
    }
    if (lo == 0.0f && hi == 0.0f) lo = -1.0f, hi = 1.0f;
    const uint16_t sh = f32_to_f16((hi - lo) / 15.0f);
    const float s = f16_to_f32(sh);
    if (!std::isfinite(s)) fail("int4_group: group {} spans [{}, {}], beyond what an F16 scale holds", k, lo, hi);
    store_u16(scales + k * 2, sh);
    const float z = s > 0.0f ? round_clamp_u4(-lo / s) : 0.0f;
    zeros[k] = uint8_t(z);
    for (int64_t j = 0; j < g; ++j) {
      const uint8_t q = s > 0.0f ? uint8_t(round_clamp_u4(std::nearbyint(x[j] / s) + z)) : 0;
      const int64_t e = k * g + j;
      codes[e / 2] = uint8_t(codes[e / 2] | q << (4 * (e & 1)));
    }
  }
}

void dequantize_row_int4_group(const ConstRowPlanes& src, float* dst, int64_t n) {
  check_group(src.group, n);
  const auto* codes = static_cast<const uint8_t*>(src.data);
  const auto* scales = static_cast<const uint8_t*>(src.scales);
  const auto* zeros = static_cast<const uint8_t*>(src.zeros);
  for (int64_t e = 0; e < n; ++e) {
    const int64_t k = e / src.group;
    dst[e] = float(int(nibble(codes, e)) - int(zeros[k])) * f16_to_f32(load_u16(scales + k * 2));
  }
}

float vec_dot_int4_group(const ConstRowPlanes& w, const void* act, int64_t n) {
  check_group(w.group, n);
  const auto* codes = static_cast<const uint8_t*>(w.data);
  const auto* scales = static_cast<const uint8_t*>(w.scales);
  const auto* zeros = static_cast<const uint8_t*>(w.zeros);
  const auto* ap = static_cast<const uint8_t*>(act);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    const int64_t k = b * kQK8_0 / w.group;
    const int z = zeros[k];
    BlockQ8_0 y;
    std::memcpy(&y, ap + b * sizeof y, sizeof y);
    int sumi = 0;
    for (int j = 0; j < kQK8_0; ++j) sumi += (int(nibble(codes, b * kQK8_0 + j)) - z) * int(y.qs[j]);
    sum += float(sumi) * (f16_to_f32(load_u16(scales + k * 2)) * f16_to_f32(y.d));
  }
  return sum;
}

}  // namespace imp
