#include "formats/mxfp4.h"

#include <cmath>
#include <cstring>

#include "formats/e2m1.h"
#include "formats/e8m0.h"
#include "formats/f16.h"
#include "formats/ggml_cast.h"
#include "formats/q8_0.h"

namespace imp {

int e2m1_best_index_ggml(float v, float half_scale) {
  int best = 0;
  float best_err = std::fabs(float(kE2M1TimesTwo[0]) * half_scale - v);
  for (int i = 1; i < 16; ++i) {
    const float err = std::fabs(float(kE2M1TimesTwo[i]) * half_scale - v);
    if (err < best_err) {
      best = i;
      best_err = err;
    }
  }
  return best;
}

void quantize_row_mxfp4(const float* src, const RowPlanes& dst, int64_t n) {
  auto* out = static_cast<uint8_t*>(dst.data);
  for (int64_t b = 0; b < n / kQK_MXFP4; ++b) {
    const float* x = src + b * kQK_MXFP4;
    float amax = 0.0f;
    for (int j = 0; j < kQK_MXFP4; ++j) {
      if (amax < std::fabs(x[j])) amax = std::fabs(x[j]);
    }
    // The uint8 cast wraps for amax < 2^-125 (exponent below 0) and is 0 for amax = Inf,
    // as ggml's is on x86-64 (ggml_cast.h).
    BlockMXFP4 blk;
    blk.e = amax > 0.0f ? cast_f32_u8(std::floor(std::log2(amax)) - 2.0f + 127.0f) : 0;
    const float h = e8m0_to_f32_half_ggml(blk.e);
    for (int j = 0; j < kQK_MXFP4 / 2; ++j) {
      const int q0 = e2m1_best_index_ggml(x[j], h);
      const int q1 = e2m1_best_index_ggml(x[j + 16], h);
      blk.qs[j] = uint8_t(q0 | (q1 << 4));
    }
    std::memcpy(out + b * sizeof blk, &blk, sizeof blk);
  }
}

void dequantize_row_mxfp4(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  for (int64_t b = 0; b < n / kQK_MXFP4; ++b) {
    BlockMXFP4 blk;
    std::memcpy(&blk, in + b * sizeof blk, sizeof blk);
    const float h = e8m0_to_f32_half_ggml(blk.e);
    float* y = dst + b * kQK_MXFP4;
    for (int j = 0; j < kQK_MXFP4 / 2; ++j) {
      y[j] = float(kE2M1TimesTwo[blk.qs[j] & 0xF]) * h;
      y[j + 16] = float(kE2M1TimesTwo[blk.qs[j] >> 4]) * h;
    }
  }
}

float vec_dot_mxfp4(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* wp = static_cast<const uint8_t*>(w.data);
  const auto* ap = static_cast<const uint8_t*>(act);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK_MXFP4; ++b) {
    BlockMXFP4 x;
    BlockQ8_0 y;
    std::memcpy(&x, wp + b * sizeof x, sizeof x);
    std::memcpy(&y, ap + b * sizeof y, sizeof y);
    int sumi = 0;
    for (int j = 0; j < kQK_MXFP4 / 2; ++j) {
      sumi += y.qs[j] * kE2M1TimesTwo[x.qs[j] & 0xF];
      sumi += y.qs[j + 16] * kE2M1TimesTwo[x.qs[j] >> 4];
    }
    sum += (f16_to_f32(y.d) * e8m0_to_f32_half_ggml(x.e)) * float(sumi);
  }
  return sum;
}

}  // namespace imp
