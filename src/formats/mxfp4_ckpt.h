// MXFP4_CKPT — TODO(layout comment): bit layout and source.
#pragma once

#include <cstdint>

#include "formats/row_planes.h"

namespace imp {

void quantize_row_mxfp4_ckpt(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_mxfp4_ckpt(const ConstRowPlanes& src, float* dst, int64_t n);
float vec_dot_mxfp4_ckpt(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
