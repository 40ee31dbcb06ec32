#include "formats/f32.h"

#include <cstring>

#include "common/bits.h"

namespace imp {

void dequantize_row_f32(const ConstRowPlanes& src, float* dst, int64_t n) {
  std::memcpy(dst, src.data, size_t(n) * sizeof(float));
}

void quantize_row_f32(const float* src, const RowPlanes& dst, int64_t n) {
  std::memcpy(dst.data, src, size_t(n) * sizeof(float));
}

float vec_dot_f32(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(w.data);
  const auto* a = static_cast<const float*>(act);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += load_f32(p + 4 * i) * a[i];
  return sum;
}

}  // namespace imp
