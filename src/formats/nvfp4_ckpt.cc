#include "formats/nvfp4_ckpt.h"

#include <cmath>
#include <cstring>

#include "formats/e2m1.h"
#include "formats/f16.h"
#include "formats/fp8_e4m3.h"
#include "formats/q8_0.h"

namespace imp {

float nvfp4_ckpt_tensor_scale(float amax) {
  const float g = amax / (6.0f * 448.0f);
  return g > 0.0f ? g : 1.0f;
}

void quantize_row_nvfp4_ckpt(const float* src, const RowPlanes& dst, int64_t n) {
  auto* codes = static_cast<uint8_t*>(dst.data);
  auto* scales = static_cast<uint8_t*>(dst.scales);
  const float g = dst.tensor_scale;
  for (int64_t b = 0; b < n / kNvfp4CkptBlock; ++b) {
    const float* x = src + b * kNvfp4CkptBlock;
    float amax = 0.0f;
    for (int j = 0; j < kNvfp4CkptBlock; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    float s = amax / (6.0f * g);
    if (s == 0.0f) s = 1.0f;
    if (s < 0x1p-9f) s = 0x1p-9f;  // torch clamp_(min=2^-9) passes NaN through, as this does
    const uint8_t sb = f32_to_e4m3(s);
    scales[b] = sb;
    const float d = e4m3_to_f32(sb) * g;
    for (int j = 0; j < kNvfp4CkptBlock; j += 2) {
      const uint8_t lo = f32_to_e2m1_rne(x[j] / d);
      const uint8_t hi = f32_to_e2m1_rne(x[j + 1] / d);
      codes[(b * kNvfp4CkptBlock + j) / 2] = uint8_t(lo | hi << 4);
    }
  }
}

void dequantize_row_nvfp4_ckpt(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* codes = static_cast<const uint8_t*>(src.data);
  const auto* scales = static_cast<const uint8_t*>(src.scales);
  for (int64_t b = 0; b < n / kNvfp4CkptBlock; ++b) {
    const float d = e4m3_to_f32(scales[b]) * src.tensor_scale;
    for (int j = 0; j < kNvfp4CkptBlock; ++j) {
      const int64_t e = b * kNvfp4CkptBlock + j;
      dst[e] = e2m1_to_f32(uint8_t(codes[e / 2] >> (4 * (e & 1)))) * d;
    }
  }
}

float vec_dot_nvfp4_ckpt(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* codes = static_cast<const uint8_t*>(w.data);
  const auto* scales = static_cast<const uint8_t*>(w.scales);
  const auto* ap = static_cast<const uint8_t*>(act);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    BlockQ8_0 y;
    std::memcpy(&y, ap + b * sizeof y, sizeof y);
    const float da = f16_to_f32(y.d);
    for (int h = 0; h < kQK8_0 / kNvfp4CkptBlock; ++h) {
      const int64_t sb = b * (kQK8_0 / kNvfp4CkptBlock) + h;  // 16-element block index
      int sumi = 0;
      for (int j = 0; j < kNvfp4CkptBlock; ++j) {
        const int64_t e = sb * kNvfp4CkptBlock + j;
        sumi += int(kE2M1TimesTwo[(codes[e / 2] >> (4 * (e & 1))) & 0xF]) * int(y.qs[h * kNvfp4CkptBlock + j]);
      }
      sum += float(sumi) * (0.5f * e4m3_to_f32(scales[sb]) * w.tensor_scale * da);
    }
  }
  return sum;
}

}  // namespace imp
