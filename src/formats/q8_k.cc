#include "formats/q8_k.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace imp {

void quantize_row_q8_k(const float* src, const RowPlanes& dst, int64_t n) {
  auto* out = static_cast<uint8_t*>(dst.data);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float* x = src + b * kQK_K;
    float max = 0, amax = 0;
    for (int j = 0; j < kQK_K; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    BlockQ8_K blk{};
    if (amax != 0) {
      // −127 (not −128) keeps every code in [−127, 127], as ggml's SIMD dots assume.
      const float iscale = -127.0f / max;
      for (int j = 0; j < kQK_K; ++j) blk.qs[j] = int8_t(std::min(127, nearest_int(iscale * x[j])));
      for (int k = 0; k < kQK_K / 16; ++k) {
        int sum = 0;
        for (int i = 0; i < 16; ++i) sum += blk.qs[16 * k + i];
        blk.bsums[k] = int16_t(sum);
      }
      blk.d = 1 / iscale;
    }
    std::memcpy(out + b * sizeof blk, &blk, sizeof blk);
  }
}

void dequantize_row_q8_k(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    BlockQ8_K blk;
    std::memcpy(&blk, in + b * sizeof blk, sizeof blk);
    float* y = dst + b * kQK_K;
    for (int j = 0; j < kQK_K; ++j) y[j] = blk.d * float(blk.qs[j]);
  }
}

}  // namespace imp
