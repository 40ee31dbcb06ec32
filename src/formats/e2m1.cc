#include "formats/e2m1.h"

namespace imp {

// Plain E2M1 rows: two codes per byte, element 2k in the low nibble (OCP / checkpoint order).
void dequantize_row_e2m1(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src.data);
  for (int64_t i = 0; i < n; ++i) dst[i] = e2m1_to_f32(uint8_t(p[i / 2] >> (4 * (i & 1))));
}

void quantize_row_e2m1(const float* src, const RowPlanes& dst, int64_t n) {
  auto* p = static_cast<uint8_t*>(dst.data);
  for (int64_t i = 0; i < n; i += 2) {
    p[i / 2] = uint8_t(f32_to_e2m1_rne(src[i]) | f32_to_e2m1_rne(src[i + 1]) << 4);
  }
}

}  // namespace imp
