// INT4_GROUP — TODO(layout comment): bit layout and source.
#pragma once

#include <cstdint>

#include "formats/row_planes.h"

namespace imp {

void quantize_row_int4_group(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_int4_group(const ConstRowPlanes& src, float* dst, int64_t n);
float vec_dot_int4_group(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
