// Q5_1 — TODO(layout comment): bit layout and source.
#pragma once

#include <cstdint>

#include "formats/row_planes.h"

namespace imp {

void quantize_row_q5_1(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_q5_1(const ConstRowPlanes& src, float* dst, int64_t n);
float vec_dot_q5_1(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
