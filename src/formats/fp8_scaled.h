// FP8_SCALED — TODO(layout comment): bit layout and source.
#pragma once

#include <cstdint>

#include "formats/row_planes.h"

namespace imp {

// Per-tensor scale from the tensor's max |x|.
float fp8_e4m3_tensor_scale(float amax);   // amax / 448

void quantize_row_fp8_e4m3_tensor(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_fp8_e4m3_tensor(const ConstRowPlanes& src, float* dst, int64_t n);
float vec_dot_fp8_e4m3_tensor(const ConstRowPlanes& w, const void* act, int64_t n);

void quantize_row_fp8_e4m3_channel(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_fp8_e4m3_channel(const ConstRowPlanes& src, float* dst, int64_t n);
float vec_dot_fp8_e4m3_channel(const ConstRowPlanes& w, const void* act, int64_t n);

void quantize_row_fp8_e4m3_block128(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_fp8_e4m3_block128(const ConstRowPlanes& src, float* dst, int64_t n);
float vec_dot_fp8_e4m3_block128(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
