#include "formats/iq4_nl.h"

#include <cmath>
#include <cstring>

#include "formats/f16.h"
#include "formats/q8_0.h"

namespace imp {
namespace {

constexpr int kTries = 7;               // ggml quantize_iq4_nl's ntry
constexpr float kGroupMaxEps = 1e-15f;  // ggml GROUP_MAX_EPS

// Weighted fit of one block at inverse scale id: Σw·q·x and Σw·q² over the nearest
// code-book entries, accumulated in element order as ggml does ((w·q)·x, (w·q)·q).
struct Fit {
  float sumqx = 0.0f, sumq2 = 0.0f;
};

Fit fit_at(const float* x, const float* w, float id) {
  Fit f;
  for (int j = 0; j < kQK4_NL; ++j) {
    const int l = iq4nl_best_index(id * x[j]);
    const float q = float(kIq4nlValues[l]);
    f.sumqx += w[j] * q * x[j];
    f.sumq2 += w[j] * q * q;
  }
  return f;
}

// The fp32 block scale that quantize_iq4_nl settles on (0 for a negligible block).
float iq4_nl_block_scale(const float* x) {
  float w[kQK4_NL];
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < kQK4_NL; ++j) {
    w[j] = x[j] * x[j];
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  if (amax < kGroupMaxEps) return 0.0f;
  const float k0 = float(kIq4nlValues[0]);
  const float d0 = -max / k0;
  const Fit first = fit_at(x, w, 1.0f / d0);
  float d = first.sumq2 > 0 ? first.sumqx / first.sumq2 : 0.0f;
  float best = d * first.sumqx;
  for (int t = -kTries; t <= kTries; ++t) {
    const Fit f = fit_at(x, w, float(t + kIq4nlValues[0]) / max);
    if (f.sumq2 > 0 && f.sumqx * f.sumqx > best * f.sumq2) {
      d = f.sumqx / f.sumq2;
      best = d * f.sumqx;
    }
  }
  return d;
}

}  // namespace

void quantize_row_iq4_nl(const float* src, const RowPlanes& dst, int64_t n) {
  auto* out = static_cast<uint8_t*>(dst.data);
  for (int64_t b = 0; b < n / kQK4_NL; ++b) {
    const float* x = src + b * kQK4_NL;
    const float d = iq4_nl_block_scale(x);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    uint8_t codes[kQK4_NL];
    for (int j = 0; j < kQK4_NL; ++j) codes[j] = uint8_t(iq4nl_best_index(id * x[j]));
    BlockIQ4_NL blk;
    blk.d = f32_to_f16(d);
    for (int j = 0; j < kQK4_NL / 2; ++j) blk.qs[j] = uint8_t(codes[j] | (codes[j + 16] << 4));
    std::memcpy(out + b * sizeof blk, &blk, sizeof blk);
  }
}

void dequantize_row_iq4_nl(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  for (int64_t b = 0; b < n / kQK4_NL; ++b) {
    BlockIQ4_NL blk;
    std::memcpy(&blk, in + b * sizeof blk, sizeof blk);
    const float d = f16_to_f32(blk.d);
    float* y = dst + b * kQK4_NL;
    for (int j = 0; j < kQK4_NL / 2; ++j) {
      y[j] = d * float(kIq4nlValues[blk.qs[j] & 0xF]);
      y[j + 16] = d * float(kIq4nlValues[blk.qs[j] >> 4]);
    }
  }
}

float vec_dot_iq4_nl(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* wp = static_cast<const uint8_t*>(w.data);
  const auto* ap = static_cast<const uint8_t*>(act);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK4_NL; ++b) {
    BlockIQ4_NL x;
    BlockQ8_0 y;
    std::memcpy(&x, wp + b * sizeof x, sizeof x);
    std::memcpy(&y, ap + b * sizeof y, sizeof y);
    int sumi = 0;
    for (int j = 0; j < kQK4_NL / 2; ++j) {
      sumi += y.qs[j] * kIq4nlValues[x.qs[j] & 0xF];
      sumi += y.qs[j + 16] * kIq4nlValues[x.qs[j] >> 4];
    }
    sum += (f16_to_f32(y.d) * f16_to_f32(x.d)) * float(sumi);
  }
  return sum;
}

}  // namespace imp
