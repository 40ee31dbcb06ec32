#include "formats/q4_k.h"

#include <algorithm>
#include <cstring>

#include "formats/f16.h"
#include "formats/q8_k.h"

namespace imp {

namespace {

// 4-bit code of element e.
inline int q4_code(const BlockQ4_K& b, int e) {
  const uint8_t byte = b.qs[32 * (e / 64) + e % 32];
  return e % 64 < 32 ? (byte & 0xF) : (byte >> 4);
}

void quantize_block(const float* x, BlockQ4_K& y) {
  uint8_t L[kQK_K];
  float mins[kQK_K / 32];
  float scales[kQK_K / 32];
  for (int j = 0; j < kQK_K / 32; ++j) {
    scales[j] = fit_sub_block_k4(x + 32 * j, 15, -1.0f, 0.1f, 20, L + 32 * j, &mins[j]);
  }
  float d, dmin;
  quantize_scales_mins_k4(scales, mins, y.scales, &d, &dmin);
  y.d = f32_to_f16(d);
  y.dmin = f32_to_f16(dmin);
  for (int j = 0; j < kQK_K / 32; ++j) {
    uint8_t sc, m;
    get_scale_min_k4(j, y.scales, &sc, &m);
    const float dj = f16_to_f32(y.d) * float(sc);
    if (dj == 0) continue;  // keeps the codes of the sub-block fit
    const float dm = f16_to_f32(y.dmin) * float(m);
    for (int i = 0; i < 32; ++i) {
      L[32 * j + i] = uint8_t(std::clamp(nearest_int((x[32 * j + i] + dm) / dj), 0, 15));
    }
  }
  for (int j = 0; j < kQK_K; j += 64) {
    for (int l = 0; l < 32; ++l) y.qs[j / 2 + l] = uint8_t(L[j + l] | (L[j + l + 32] << 4));
  }
}

}  // namespace

void quantize_row_q4_k(const float* src, const RowPlanes& dst, int64_t n) {
  auto* out = static_cast<uint8_t*>(dst.data);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    BlockQ4_K blk{};
    quantize_block(src + b * kQK_K, blk);
    std::memcpy(out + b * sizeof blk, &blk, sizeof blk);
  }
}

void dequantize_row_q4_k(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    BlockQ4_K blk;
    std::memcpy(&blk, in + b * sizeof blk, sizeof blk);
    const float d = f16_to_f32(blk.d), dmin = f16_to_f32(blk.dmin);
    float* y = dst + b * kQK_K;
    for (int t = 0; t < kQK_K / 32; ++t) {
      uint8_t sc, m;
      get_scale_min_k4(t, blk.scales, &sc, &m);
      const float dl = d * float(sc), ml = dmin * float(m);
      for (int i = 0; i < 32; ++i) y[32 * t + i] = dl * float(q4_code(blk, 32 * t + i)) - ml;
    }
  }
}

float vec_dot_q4_k(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* wp = static_cast<const uint8_t*>(w.data);
  const auto* ap = static_cast<const uint8_t*>(act);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    BlockQ4_K x;
    BlockQ8_K y;
    std::memcpy(&x, wp + b * sizeof x, sizeof x);
    std::memcpy(&y, ap + b * sizeof y, sizeof y);
    int isum = 0, summs = 0;
    for (int t = 0; t < kQK_K / 32; ++t) {
      uint8_t sc, m;
      get_scale_min_k4(t, x.scales, &sc, &m);
      int isub = 0;
      for (int i = 0; i < 32; ++i) isub += int(y.qs[32 * t + i]) * q4_code(x, 32 * t + i);
      isum += int(sc) * isub;
      summs += int(m) * (y.bsums[2 * t] + y.bsums[2 * t + 1]);
    }
    const float d = f16_to_f32(x.d) * y.d;
    const float dmin = f16_to_f32(x.dmin) * y.d;
    sum += d * float(isum) - dmin * float(summs);
  }
  return sum;
}

}  // namespace imp
