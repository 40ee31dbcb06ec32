#include "formats/fp8_e5m2.h"

namespace imp {

void dequantize_row_f8_e5m2(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src.data);
  for (int64_t i = 0; i < n; ++i) dst[i] = e5m2_to_f32(p[i]);
}

void quantize_row_f8_e5m2(const float* src, const RowPlanes& dst, int64_t n) {
  auto* p = static_cast<uint8_t*>(dst.data);
  for (int64_t i = 0; i < n; ++i) p[i] = f32_to_e5m2(src[i]);
}

float vec_dot_f8_e5m2(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(w.data);
  const auto* a = static_cast<const float*>(act);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += e5m2_to_f32(p[i]) * a[i];
  return sum;
}

}  // namespace imp
