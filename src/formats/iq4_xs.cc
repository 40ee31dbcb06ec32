#include "formats/iq4_xs.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "formats/f16.h"
#include "formats/iq4_nl.h"
#include "formats/q8_k.h"

namespace imp {

namespace {

constexpr float kGroupMaxEps = 1e-15f;  // ggml GROUP_MAX_EPS
constexpr int kNtry = 7;                // quantize_iq4_xs's search width (the _ref IQ4_NL uses −1)

// The IQ4_NL code book and its nearest-entry search (ggml best_index_int8) are shared.
constexpr const int8_t* kKnl = kIq4nlValues;
int best_index(float v) { return iq4nl_best_index(v); }

// Weighted fit of one 32-element sub-block: returns the scale d (x ≈ d·KNL[L]).
float fit_sub_block(const float* xb, const float* weight) {
  float amax = 0, max = 0;
  for (int j = 0; j < 32; ++j) {
    const float ax = std::fabs(xb[j]);
    if (ax > amax) {
      amax = ax;
      max = xb[j];
    }
  }
  if (amax < kGroupMaxEps) return 0.0f;
  float d = -max / float(kKnl[0]);
  float id = 1 / d;
  float sumqx = 0, sumq2 = 0;
  for (int j = 0; j < 32; ++j) {
    const float q = float(kKnl[best_index(id * xb[j])]);
    sumqx += weight[j] * q * xb[j];
    sumq2 += weight[j] * q * q;
  }
  d = sumq2 > 0 ? sumqx / sumq2 : 0.0f;
  float best = d * sumqx;
  for (int itry = -kNtry; itry <= kNtry; ++itry) {
    id = float(itry + kKnl[0]) / max;
    sumqx = sumq2 = 0;
    for (int j = 0; j < 32; ++j) {
      const float q = float(kKnl[best_index(id * xb[j])]);
      sumqx += weight[j] * q * xb[j];
      sumq2 += weight[j] * q * q;
    }
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
  return d;
}

void quantize_block(const float* x, BlockIq4_XS& y) {
  // (ggml also sums σ² = 2/256·Σx² here; it only enters the imatrix weights, unused here.)
  float scales[kQK_K / 32];
  float weight[32];
  float max_scale = 0, amax_scale = 0;
  for (int ib = 0; ib < kQK_K / 32; ++ib) {
    const float* xb = x + 32 * ib;
    for (int j = 0; j < 32; ++j) weight[j] = xb[j] * xb[j];
    scales[ib] = fit_sub_block(xb, weight);
    const float abs_d = std::fabs(scales[ib]);
    if (abs_d > amax_scale) {
      amax_scale = abs_d;
      max_scale = scales[ib];
    }
  }
  // fp32 d (not its F16 rounding) sets the sub-block codes; an all-zero block stores −0.
  const float d = -max_scale / 32;
  y.d = f32_to_f16(d);
  const float id = d != 0 ? 1 / d : 0.0f;
  uint8_t L[kQK_K];
  y.scales_h = 0;
  for (int ib = 0; ib < kQK_K / 32; ++ib) {
    int l = std::clamp(nearest_int(id * scales[ib]), -32, 31);
    const float dl = d * float(l);
    const float idl = dl != 0 ? 1 / dl : 0.0f;
    for (int j = 0; j < 32; ++j) L[32 * ib + j] = uint8_t(best_index(idl * x[32 * ib + j]));
    l += 32;
    const uint8_t l_l = uint8_t(l & 0xF), l_h = uint8_t(l >> 4);
    if (ib % 2 == 0) {
      y.scales_l[ib / 2] = l_l;
    } else {
      y.scales_l[ib / 2] = uint8_t(y.scales_l[ib / 2] | (l_l << 4));
    }
    y.scales_h = uint16_t(y.scales_h | (l_h << (2 * ib)));
  }
  for (int i = 0; i < kQK_K / 32; ++i) {
    for (int j = 0; j < 16; ++j) y.qs[16 * i + j] = uint8_t(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
  }
}

inline int iq4_xs_scale(const BlockIq4_XS& b, int t) {
  return (((b.scales_l[t / 2] >> (4 * (t % 2))) & 0xF) | (((b.scales_h >> (2 * t)) & 3) << 4)) - 32;
}

// KNL value of element e.
inline int iq4_xs_value(const BlockIq4_XS& b, int e) {
  const uint8_t byte = b.qs[16 * (e / 32) + (e % 32) % 16];
  return kKnl[e % 32 < 16 ? (byte & 0xF) : (byte >> 4)];
}

}  // namespace

void quantize_row_iq4_xs(const float* src, const RowPlanes& dst, int64_t n) {
  auto* out = static_cast<uint8_t*>(dst.data);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    BlockIq4_XS blk{};
    quantize_block(src + b * kQK_K, blk);
    std::memcpy(out + b * sizeof blk, &blk, sizeof blk);
  }
}

void dequantize_row_iq4_xs(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    BlockIq4_XS blk;
    std::memcpy(&blk, in + b * sizeof blk, sizeof blk);
    const float d = f16_to_f32(blk.d);
    float* y = dst + b * kQK_K;
    for (int t = 0; t < kQK_K / 32; ++t) {
      const float dl = d * float(iq4_xs_scale(blk, t));
      for (int i = 0; i < 32; ++i) y[32 * t + i] = dl * float(iq4_xs_value(blk, 32 * t + i));
    }
  }
}

float vec_dot_iq4_xs(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* wp = static_cast<const uint8_t*>(w.data);
  const auto* ap = static_cast<const uint8_t*>(act);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    BlockIq4_XS x;
    BlockQ8_K y;
    std::memcpy(&x, wp + b * sizeof x, sizeof x);
    std::memcpy(&y, ap + b * sizeof y, sizeof y);
    int isum = 0;  // |isum| ≤ 32·127·127·256 < 2^31
    for (int t = 0; t < kQK_K / 32; ++t) {
      int isub = 0;
      for (int i = 0; i < 32; ++i) isub += int(y.qs[32 * t + i]) * iq4_xs_value(x, 32 * t + i);
      isum += iq4_xs_scale(x, t) * isub;
    }
    sum += f16_to_f32(x.d) * y.d * float(isum);
  }
  return sum;
}

}  // namespace imp
