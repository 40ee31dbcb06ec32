#include "formats/q5_0.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/bits.h"
#include "formats/f16.h"
#include "formats/ggml_cast.h"
#include "formats/q8_0.h"

namespace imp {
namespace {

// Signed 5-bit code of element j (0..31): nibble plus qh bit, minus 16.
inline int q5_0_code(const BlockQ5_0& blk, uint32_t qh, int j) {
  const int nib = j < 16 ? (blk.qs[j] & 0xF) : (blk.qs[j - 16] >> 4);
  return (nib | int((qh >> j) & 1) << 4) - 16;
}

}  // namespace

void quantize_row_q5_0(const float* src, const RowPlanes& dst, int64_t n) {
  auto* out = static_cast<uint8_t*>(dst.data);
  for (int64_t b = 0; b < n / kQK5_0; ++b) {
    const float* x = src + b * kQK5_0;
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK5_0; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ5_0 blk;
    blk.d = f32_to_f16(d);
    uint32_t qh = 0;
    for (int j = 0; j < kQK5_0 / 2; ++j) {
      const auto q0 = uint8_t(std::min(31, int(cast_f32_i8(x[j] * id + 16.5f))));
      const auto q1 = uint8_t(std::min(31, int(cast_f32_i8(x[j + 16] * id + 16.5f))));
      blk.qs[j] = uint8_t((q0 & 0xF) | ((q1 & 0xF) << 4));
      qh |= uint32_t((q0 >> 4) & 1) << j;
      qh |= uint32_t((q1 >> 4) & 1) << (j + 16);
    }
    store_u32(blk.qh, qh);
    std::memcpy(out + b * sizeof blk, &blk, sizeof blk);
  }
}

void dequantize_row_q5_0(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  for (int64_t b = 0; b < n / kQK5_0; ++b) {
    BlockQ5_0 blk;
    std::memcpy(&blk, in + b * sizeof blk, sizeof blk);
    const float d = f16_to_f32(blk.d);
    const uint32_t qh = load_u32(blk.qh);
    for (int j = 0; j < kQK5_0; ++j) dst[b * kQK5_0 + j] = float(q5_0_code(blk, qh, j)) * d;
  }
}

float vec_dot_q5_0(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* wp = static_cast<const uint8_t*>(w.data);
  const auto* ap = static_cast<const uint8_t*>(act);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK5_0; ++b) {
    BlockQ5_0 x;
    BlockQ8_0 y;
    std::memcpy(&x, wp + b * sizeof x, sizeof x);
    std::memcpy(&y, ap + b * sizeof y, sizeof y);
    const uint32_t qh = load_u32(x.qh);
    int sumi = 0;
    for (int j = 0; j < kQK5_0; ++j) sumi += q5_0_code(x, qh, j) * y.qs[j];
    sum += (f16_to_f32(x.d) * f16_to_f32(y.d)) * float(sumi);
  }
  return sum;
}

}  // namespace imp
