#include "formats/q3_k.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "formats/f16.h"
#include "formats/q8_k.h"

namespace imp {

namespace {

// Biased 6-bit scale code (0..63) of sub-block t.
inline int q3_scale(const uint8_t* scales, int t) {
  const int low4 = t < 8 ? (scales[t] & 0xF) : (scales[t - 8] >> 4);
  const int high2 = (scales[8 + t % 4] >> (2 * (t / 4))) & 3;
  return low4 | (high2 << 4);
}

// Signed code (−4..3) of element e.
inline int q3_code(const BlockQ3_K& b, int e) {
  const int h = e / 128, r = e % 128, g = r / 32, l = r % 32;
  const int low2 = (b.qs[32 * h + l] >> (2 * g)) & 3;
  const int hb = (b.hmask[l] >> (4 * h + g)) & 1;
  return low2 - (hb ? 0 : 4);
}

void quantize_block(const float* x, BlockQ3_K& y) {
  int8_t L[kQK_K];
  float scales[kQK_K / 16];
  float max_scale = 0, amax = 0;
  for (int j = 0; j < kQK_K / 16; ++j) {
    scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
    const float scale = std::fabs(scales[j]);
    if (scale > amax) {
      amax = scale;
      max_scale = scales[j];
    }
  }
  std::memset(y.scales, 0, sizeof y.scales);
  if (max_scale != 0) {
    const float iscale = -32.0f / max_scale;
    for (int j = 0; j < kQK_K / 16; ++j) {
      // ggml narrows nearest_int to int8_t before clamping; |iscale·S| ≤ 32 so it is exact.
      const int8_t l = int8_t(std::clamp<int>(int8_t(nearest_int(iscale * scales[j])), -32, 31) + 32);
      if (j < 8) {
        y.scales[j] = uint8_t(l & 0xF);
      } else {
        y.scales[j - 8] = uint8_t(y.scales[j - 8] | ((l & 0xF) << 4));
      }
      y.scales[j % 4 + 8] = uint8_t(y.scales[j % 4 + 8] | ((l >> 4) << (2 * (j / 4))));
    }
    y.d = f32_to_f16(1 / iscale);
  } else {
    y.d = f32_to_f16(0.0f);
  }
  const float d_all = f16_to_f32(y.d);
  for (int j = 0; j < kQK_K / 16; ++j) {
    const float d = d_all * float(q3_scale(y.scales, j) - 32);
    if (d == 0) continue;  // keeps the codes of the sub-block fit
    for (int i = 0; i < 16; ++i) {
      L[16 * j + i] = int8_t(std::clamp(nearest_int(x[16 * j + i] / d), -4, 3) + 4);
    }
  }
  // High bit of element j goes to hmask[j % 32], bit j / 32.
  std::memset(y.hmask, 0, sizeof y.hmask);
  for (int j = 0; j < kQK_K; ++j) {
    if (L[j] > 3) {
      y.hmask[j % 32] = uint8_t(y.hmask[j % 32] | (1 << (j / 32)));
      L[j] = int8_t(L[j] - 4);
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

void quantize_row_q3_k(const float* src, const RowPlanes& dst, int64_t n) {
  auto* out = static_cast<uint8_t*>(dst.data);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    BlockQ3_K blk{};
    quantize_block(src + b * kQK_K, blk);
    std::memcpy(out + b * sizeof blk, &blk, sizeof blk);
  }
}

void dequantize_row_q3_k(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    BlockQ3_K blk;
    std::memcpy(&blk, in + b * sizeof blk, sizeof blk);
    const float d_all = f16_to_f32(blk.d);
    float* y = dst + b * kQK_K;
    for (int t = 0; t < kQK_K / 16; ++t) {
      const float dl = d_all * float(q3_scale(blk.scales, t) - 32);
      for (int i = 0; i < 16; ++i) y[16 * t + i] = dl * float(q3_code(blk, 16 * t + i));
    }
  }
}

float vec_dot_q3_k(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* wp = static_cast<const uint8_t*>(w.data);
  const auto* ap = static_cast<const uint8_t*>(act);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    BlockQ3_K x;
    BlockQ8_K y;
    std::memcpy(&x, wp + b * sizeof x, sizeof x);
    std::memcpy(&y, ap + b * sizeof y, sizeof y);
    int isum = 0;  // |isum| ≤ 32·4·127·256 < 2^31
    for (int t = 0; t < kQK_K / 16; ++t) {
      int isub = 0;
      for (int i = 0; i < 16; ++i) isub += int(y.qs[16 * t + i]) * q3_code(x, 16 * t + i);
      isum += (q3_scale(x.scales, t) - 32) * isub;
    }
    sum += f16_to_f32(x.d) * y.d * float(isum);
  }
  return sum;
}

}  // namespace imp
