#include "formats/nvfp4.h"

#include <cmath>
#include <cstring>

#include "formats/e2m1.h"
#include "formats/f16.h"
#include "formats/mxfp4.h"
#include "formats/q8_0.h"
#include "formats/ue4m3.h"

namespace imp {
namespace {

constexpr int kSubBlocks = kQK_NVFP4 / kQK_NVFP4_SUB;
constexpr int kSubBytes = kQK_NVFP4_SUB / 2;

}  // namespace

void quantize_row_nvfp4(const float* src, const RowPlanes& dst, int64_t n) {
  auto* out = static_cast<uint8_t*>(dst.data);
  for (int64_t b = 0; b < n / kQK_NVFP4; ++b) {
    BlockNVFP4 blk;
    for (int s = 0; s < kSubBlocks; ++s) {
      const float* x = src + b * kQK_NVFP4 + s * kQK_NVFP4_SUB;
      float amax = 0.0f;
      for (int j = 0; j < kQK_NVFP4_SUB; ++j) {
        if (amax < std::fabs(x[j])) amax = std::fabs(x[j]);
      }
      blk.d[s] = f32_to_ue4m3_ggml(amax / 6.0f);
      const float d = ue4m3_to_f32_half_ggml(blk.d[s]);
      for (int j = 0; j < kSubBytes; ++j) {
        const int q0 = e2m1_best_index_ggml(x[j], d);
        const int q1 = e2m1_best_index_ggml(x[j + kSubBytes], d);
        blk.qs[s * kSubBytes + j] = uint8_t(q0 | (q1 << 4));
      }
    }
    std::memcpy(out + b * sizeof blk, &blk, sizeof blk);
  }
}

void dequantize_row_nvfp4(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  for (int64_t b = 0; b < n / kQK_NVFP4; ++b) {
    BlockNVFP4 blk;
    std::memcpy(&blk, in + b * sizeof blk, sizeof blk);
    for (int s = 0; s < kSubBlocks; ++s) {
      const float d = ue4m3_to_f32_half_ggml(blk.d[s]);
      float* y = dst + b * kQK_NVFP4 + s * kQK_NVFP4_SUB;
      for (int j = 0; j < kSubBytes; ++j) {
        const uint8_t q = blk.qs[s * kSubBytes + j];
        y[j] = float(kE2M1TimesTwo[q & 0xF]) * d;
        y[j + kSubBytes] = float(kE2M1TimesTwo[q >> 4]) * d;
      }
    }
  }
}

float vec_dot_nvfp4(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* wp = static_cast<const uint8_t*>(w.data);
  const auto* ap = static_cast<const uint8_t*>(act);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK_NVFP4; ++b) {
    BlockNVFP4 x;
    BlockQ8_0 y[2];
    std::memcpy(&x, wp + b * sizeof x, sizeof x);
    std::memcpy(y, ap + 2 * b * sizeof(BlockQ8_0), sizeof y);
    for (int s = 0; s < kSubBlocks; ++s) {
      const BlockQ8_0& ya = y[s / 2];
      const int off = (s % 2) * kQK_NVFP4_SUB;
      int sumi = 0;
      for (int j = 0; j < kSubBytes; ++j) {
        const uint8_t q = x.qs[s * kSubBytes + j];
        sumi += ya.qs[off + j] * kE2M1TimesTwo[q & 0xF];
        sumi += ya.qs[off + j + kSubBytes] * kE2M1TimesTwo[q >> 4];
      }
      sum += (f16_to_f32(ya.d) * ue4m3_to_f32_half_ggml(x.d[s])) * float(sumi);
    }
  }
  return sum;
}

}  // namespace imp
