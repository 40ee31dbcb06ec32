#include "formats/e8m0.h"

namespace imp {

void dequantize_row_e8m0(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src.data);
  for (int64_t i = 0; i < n; ++i) dst[i] = e8m0_to_f32(p[i]);
}

void quantize_row_e8m0(const float* src, const RowPlanes& dst, int64_t n) {
  auto* p = static_cast<uint8_t*>(dst.data);
  for (int64_t i = 0; i < n; ++i) p[i] = f32_to_e8m0_floor(src[i]);
}

}  // namespace imp
