// INT8_CHANNEL — TODO(layout comment): bit layout and source.
#pragma once

#include <cstdint>

#include "formats/row_planes.h"

namespace imp {

void quantize_row_int8_channel(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_int8_channel(const ConstRowPlanes& src, float* dst, int64_t n);
float vec_dot_int8_channel(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
