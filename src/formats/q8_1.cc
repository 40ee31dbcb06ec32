#include "formats/q8_1.h"

#include <cmath>
#include <cstring>

#include "formats/f16.h"
#include "formats/ggml_cast.h"

namespace imp {

void quantize_row_q8_1(const float* src, const RowPlanes& dst, int64_t n) {
  auto* out = static_cast<uint8_t*>(dst.data);
  for (int64_t b = 0; b < n / kQK8_1; ++b) {
    const float* x = src + b * kQK8_1;
    float amax = 0.0f;
    // ggml's MAX(a, b) = a > b ? a : b, so a NaN element poisons amax (fmax would skip it).
    for (int j = 0; j < kQK8_1; ++j) amax = amax > std::fabs(x[j]) ? amax : std::fabs(x[j]);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ8_1 blk;
    blk.d = f32_to_f16(d);
    int sum = 0;
    for (int j = 0; j < kQK8_1; ++j) {
      blk.qs[j] = cast_f32_i8(std::roundf(x[j] * id));
      sum += blk.qs[j];
    }
    blk.s = f32_to_f16(float(sum) * d);
    std::memcpy(out + b * sizeof blk, &blk, sizeof blk);
  }
}

void dequantize_row_q8_1(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  for (int64_t b = 0; b < n / kQK8_1; ++b) {
    BlockQ8_1 blk;
    std::memcpy(&blk, in + b * sizeof blk, sizeof blk);
    const float d = f16_to_f32(blk.d);
    for (int j = 0; j < kQK8_1; ++j) dst[b * kQK8_1 + j] = float(blk.qs[j]) * d;
  }
}

}  // namespace imp
