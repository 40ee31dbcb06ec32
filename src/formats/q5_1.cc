#include "formats/q5_1.h"

#include <cfloat>
#include <cstring>

#include "common/bits.h"
#include "formats/f16.h"
#include "formats/ggml_cast.h"
#include "formats/q8_1.h"

namespace imp {
namespace {

// Unsigned 5-bit code of element j (0..31).
inline int q5_1_code(const BlockQ5_1& blk, uint32_t qh, int j) {
  const int nib = j < 16 ? (blk.qs[j] & 0xF) : (blk.qs[j - 16] >> 4);
  return nib | int((qh >> j) & 1) << 4;
}

}  // namespace

void quantize_row_q5_1(const float* src, const RowPlanes& dst, int64_t n) {
  auto* out = static_cast<uint8_t*>(dst.data);
  for (int64_t b = 0; b < n / kQK5_1; ++b) {
    const float* x = src + b * kQK5_1;
    float mn = FLT_MAX, mx = -FLT_MAX;
    for (int j = 0; j < kQK5_1; ++j) {
      if (x[j] < mn) mn = x[j];
      if (x[j] > mx) mx = x[j];
    }
    const float d = (mx - mn) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ5_1 blk;
    blk.d = f32_to_f16(d);
    blk.m = f32_to_f16(mn);
    uint32_t qh = 0;
    for (int j = 0; j < kQK5_1 / 2; ++j) {
      const uint8_t q0 = cast_f32_u8((x[j] - mn) * id + 0.5f);
      const uint8_t q1 = cast_f32_u8((x[j + 16] - mn) * id + 0.5f);
      blk.qs[j] = uint8_t((q0 & 0xF) | ((q1 & 0xF) << 4));
      qh |= uint32_t((q0 >> 4) & 1) << j;
      qh |= uint32_t((q1 >> 4) & 1) << (j + 16);
    }
    store_u32(blk.qh, qh);
    std::memcpy(out + b * sizeof blk, &blk, sizeof blk);
  }
}

void dequantize_row_q5_1(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  for (int64_t b = 0; b < n / kQK5_1; ++b) {
    BlockQ5_1 blk;
    std::memcpy(&blk, in + b * sizeof blk, sizeof blk);
    const float d = f16_to_f32(blk.d);
    const float m = f16_to_f32(blk.m);
    const uint32_t qh = load_u32(blk.qh);
    for (int j = 0; j < kQK5_1; ++j) dst[b * kQK5_1 + j] = float(q5_1_code(blk, qh, j)) * d + m;
  }
}

float vec_dot_q5_1(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* wp = static_cast<const uint8_t*>(w.data);
  const auto* ap = static_cast<const uint8_t*>(act);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK5_1; ++b) {
    BlockQ5_1 x;
    BlockQ8_1 y;
    std::memcpy(&x, wp + b * sizeof x, sizeof x);
    std::memcpy(&y, ap + b * sizeof y, sizeof y);
    const uint32_t qh = load_u32(x.qh);
    int sumi = 0;
    for (int j = 0; j < kQK5_1; ++j) sumi += q5_1_code(x, qh, j) * y.qs[j];
    sum += (f16_to_f32(x.d) * f16_to_f32(y.d)) * float(sumi) + f16_to_f32(x.m) * f16_to_f32(y.s);
  }
  return sum;
}

}  // namespace imp
