// INT8_CHANNEL — symmetric int8 weights with one F32 scale per output row
// (compressed-tensors int-quantized channel strategy, SmoothQuant W8A8).
// Spec: ../shared/specs/formats.md §8.4.
//   data   : one int8 per element (two's complement), row-major [out, in]
//   scales : one F32 per row (`weight_scale` [out, 1])
//   y[e] = q[e] · s
// Reference quantizer: s = amax(row) / 127 (fp32), q = clamp(round_half_away(x / s), −127, 127);
// an all-zero row gets s = 0 and q = 0. −128 is never written but decodes as −128·s.
#pragma once

#include <cstdint>

#include "formats/row_planes.h"

namespace imp {

void quantize_row_int8_channel(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_int8_channel(const ConstRowPlanes& src, float* dst, int64_t n);
// Activations in Q8_0: per 32-element block sumi = Σ q_w·q_a (exact), sum += sumi · d_a;
// the row scale multiplies the total once.
float vec_dot_int8_channel(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
