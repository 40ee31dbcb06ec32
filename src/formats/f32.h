// F32 — IEEE 754 binary32, stored little-endian. Rows are copied as they are.
#pragma once

#include <cstdint>

#include "formats/row_planes.h"

namespace imp {

void dequantize_row_f32(const ConstRowPlanes& src, float* dst, int64_t n);
void quantize_row_f32(const float* src, const RowPlanes& dst, int64_t n);
// Dot with an F32 activation row, accumulated in FP32 in element order.
float vec_dot_f32(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
