#include "formats/f16.h"

namespace imp {

void dequantize_row_f16(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src.data);
  for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(load_u16(p + 2 * i));
}

void quantize_row_f16(const float* src, const RowPlanes& dst, int64_t n) {
  auto* p = static_cast<uint8_t*>(dst.data);
  for (int64_t i = 0; i < n; ++i) store_u16(p + 2 * i, f32_to_f16(src[i]));
}

float vec_dot_f16(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(w.data);
  const auto* a = static_cast<const float*>(act);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += f16_to_f32(load_u16(p + 2 * i)) * a[i];
  return sum;
}

}  // namespace imp
