#include "formats/ue4m3.h"

namespace imp {

void dequantize_row_ue4m3(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src.data);
  for (int64_t i = 0; i < n; ++i) dst[i] = ue4m3_to_f32(p[i]);
}

void quantize_row_ue4m3(const float* src, const RowPlanes& dst, int64_t n) {
  auto* p = static_cast<uint8_t*>(dst.data);
  for (int64_t i = 0; i < n; ++i) p[i] = f32_to_ue4m3(src[i]);
}

}  // namespace imp
