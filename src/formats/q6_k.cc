#include "formats/q6_k.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "formats/f16.h"
#include "formats/q8_k.h"

namespace imp {

namespace {

constexpr float kGroupMaxEps = 1e-15f;  // ggml GROUP_MAX_EPS

// Signed code (−32..31) of element e.
inline int q6_code(const BlockQ6_K& b, int e) {
  const int h = e / 128, r = e % 128, g = r / 32, l = r % 32;
  const uint8_t byte = b.ql[64 * h + l + 32 * (g & 1)];
  const int low4 = g < 2 ? (byte & 0xF) : (byte >> 4);
  const int high2 = (b.qh[32 * h + l] >> (2 * g)) & 3;
  return (low4 | (high2 << 4)) - 32;
}

void quantize_block(const float* x, BlockQ6_K& y) {
  int8_t L[kQK_K];
  float scales[kQK_K / 16];
  float max_scale = 0, max_abs_scale = 0;
  for (int j = 0; j < kQK_K / 16; ++j) {
    scales[j] = make_qx_quants(16, 32, x + 16 * j, L + 16 * j);
    const float abs_scale = std::fabs(scales[j]);
    if (abs_scale > max_abs_scale) {
      max_abs_scale = abs_scale;
      max_scale = scales[j];
    }
  }
  if (max_abs_scale < kGroupMaxEps) {
    y = BlockQ6_K{};  // every byte zero, d = +0
    return;
  }
  const float iscale = -128.0f / max_scale;
  y.d = f32_to_f16(1 / iscale);
  for (int j = 0; j < kQK_K / 16; ++j) y.scales[j] = int8_t(std::min(127, nearest_int(iscale * scales[j])));
  const float d_all = f16_to_f32(y.d);
  for (int j = 0; j < kQK_K / 16; ++j) {
    const float d = d_all * float(y.scales[j]);
    if (d == 0) continue;  // keeps the codes of the sub-block fit
    for (int i = 0; i < 16; ++i) {
      L[16 * j + i] = int8_t(std::clamp(nearest_int(x[16 * j + i] / d), -32, 31) + 32);
    }
  }
  for (int j = 0; j < kQK_K; j += 128) {
    uint8_t* ql = y.ql + j / 2;
    uint8_t* qh = y.qh + j / 4;
    for (int l = 0; l < 32; ++l) {
      const int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
      ql[l] = uint8_t((q1 & 0xF) | ((q3 & 0xF) << 4));
      ql[l + 32] = uint8_t((q2 & 0xF) | ((q4 & 0xF) << 4));
      qh[l] = uint8_t((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
    }
  }
}

}  // namespace

void quantize_row_q6_k(const float* src, const RowPlanes& dst, int64_t n) {
  auto* out = static_cast<uint8_t*>(dst.data);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    BlockQ6_K blk{};
    quantize_block(src + b * kQK_K, blk);
    std::memcpy(out + b * sizeof blk, &blk, sizeof blk);
  }
}

void dequantize_row_q6_k(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    BlockQ6_K blk;
    std::memcpy(&blk, in + b * sizeof blk, sizeof blk);
    const float d = f16_to_f32(blk.d);
    float* y = dst + b * kQK_K;
    for (int t = 0; t < kQK_K / 16; ++t) {
      const float dl = d * float(blk.scales[t]);
      for (int i = 0; i < 16; ++i) y[16 * t + i] = dl * float(q6_code(blk, 16 * t + i));
    }
  }
}

float vec_dot_q6_k(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* wp = static_cast<const uint8_t*>(w.data);
  const auto* ap = static_cast<const uint8_t*>(act);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    BlockQ6_K x;
    BlockQ8_K y;
    std::memcpy(&x, wp + b * sizeof x, sizeof x);
    std::memcpy(&y, ap + b * sizeof y, sizeof y);
    int isum = 0;  // |isum| ≤ 128·32·127·256 < 2^31
    for (int t = 0; t < kQK_K / 16; ++t) {
      int isub = 0;
      for (int i = 0; i < 16; ++i) isub += int(y.qs[16 * t + i]) * q6_code(x, 16 * t + i);
      isum += int(x.scales[t]) * isub;
    }
    sum += f16_to_f32(x.d) * y.d * float(isum);
  }
  return sum;
}

}  // namespace imp
