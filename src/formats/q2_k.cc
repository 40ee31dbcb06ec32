#include "formats/q2_k.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>

#include "formats/f16.h"
#include "formats/q8_k.h"

namespace imp {

namespace {

// 2-bit code of element e (0..255) of a Q2_K block.
inline int q2_code(const BlockQ2_K& b, int e) {
  const int h = e / 128, r = e % 128;
  return (b.qs[32 * h + r % 32] >> (2 * (r / 32))) & 3;
}

void quantize_block(const float* x, BlockQ2_K& y) {
  constexpr float kQ4Scale = 15.0f;
  uint8_t L[kQK_K];
  uint8_t laux[16];
  float weights[16];
  float mins[kQK_K / 16];
  float scales[kQK_K / 16];
  float max_scale = 0, max_min = 0;  // the min is subtracted, so fitted scales are ≥ 0
  for (int j = 0; j < kQK_K / 16; ++j) {
    for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
    scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], laux, -0.5f, 0.1f, 15, true);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  // Codes are stored through uint8_t exactly as ggml does (a negative code wraps).
  if (max_scale > 0) {
    const float iscale = kQ4Scale / max_scale;
    for (int j = 0; j < kQK_K / 16; ++j) y.scales[j] = uint8_t(nearest_int(iscale * scales[j]));
    y.d = f32_to_f16(max_scale / kQ4Scale);
  } else {
    std::fill(std::begin(y.scales), std::end(y.scales), uint8_t(0));
    y.d = f32_to_f16(0.0f);
  }
  if (max_min > 0) {
    const float iscale = kQ4Scale / max_min;
    for (int j = 0; j < kQK_K / 16; ++j) {
      y.scales[j] = uint8_t(y.scales[j] | (unsigned(nearest_int(iscale * mins[j])) << 4));
    }
    y.dmin = f32_to_f16(max_min / kQ4Scale);
  } else {
    y.dmin = f32_to_f16(0.0f);
  }
  // Requantize against the stored (F16-rounded) scales; a zero sub-block scale keeps
  // the codes of its fit.
  const float d_all = f16_to_f32(y.d), dmin_all = f16_to_f32(y.dmin);
  for (int j = 0; j < kQK_K / 16; ++j) {
    const float d = d_all * float(y.scales[j] & 0xF);
    if (d == 0) continue;
    const float dm = dmin_all * float(y.scales[j] >> 4);
    for (int i = 0; i < 16; ++i) {
      L[16 * j + i] = uint8_t(std::clamp(nearest_int((x[16 * j + i] + dm) / d), 0, 3));
    }
  }
  for (int j = 0; j < kQK_K; j += 128) {
    for (int l = 0; l < 32; ++l) {
      y.qs[j / 4 + l] =
          uint8_t(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
  }
}

}  // namespace

void quantize_row_q2_k(const float* src, const RowPlanes& dst, int64_t n) {
  auto* out = static_cast<uint8_t*>(dst.data);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    BlockQ2_K blk{};
    quantize_block(src + b * kQK_K, blk);
    std::memcpy(out + b * sizeof blk, &blk, sizeof blk);
  }
}

void dequantize_row_q2_k(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    BlockQ2_K blk;
    std::memcpy(&blk, in + b * sizeof blk, sizeof blk);
    const float d = f16_to_f32(blk.d), dmin = f16_to_f32(blk.dmin);
    float* y = dst + b * kQK_K;
    for (int t = 0; t < kQK_K / 16; ++t) {
      const uint8_t sc = blk.scales[t];
      const float dl = d * float(sc & 0xF);
      const float ml = dmin * float(sc >> 4);
      for (int i = 0; i < 16; ++i) y[16 * t + i] = dl * float(q2_code(blk, 16 * t + i)) - ml;
    }
  }
}

float vec_dot_q2_k(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* wp = static_cast<const uint8_t*>(w.data);
  const auto* ap = static_cast<const uint8_t*>(act);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    BlockQ2_K x;
    BlockQ8_K y;
    std::memcpy(&x, wp + b * sizeof x, sizeof x);
    std::memcpy(&y, ap + b * sizeof y, sizeof y);
    // Σ_e (d·s_t·q − dmin·m_t)·a_e = d·Σ_t s_t·Σ q·q8 − dmin·Σ_t m_t·bsums_t.
    int summs = 0, isum = 0;
    for (int t = 0; t < kQK_K / 16; ++t) {
      summs += int(y.bsums[t]) * (x.scales[t] >> 4);
      int isuml = 0;
      for (int i = 0; i < 16; ++i) isuml += int(y.qs[16 * t + i]) * q2_code(x, 16 * t + i);
      isum += (x.scales[t] & 0xF) * isuml;
    }
    const float dall = y.d * f16_to_f32(x.d);
    const float dmin = y.d * f16_to_f32(x.dmin);
    sum += dall * float(isum) - dmin * float(summs);
  }
  return sum;
}

}  // namespace imp
