// FP8_E4M3_TENSOR / _CHANNEL / _BLOCK128 — scaled FP8 E4M3FN weights as checkpoints store
// them (ModelOpt FP8, compressed-tensors float-quantized, DeepSeek-V3 block FP8, vLLM fp8).
// Spec: ../shared/specs/formats.md §1.4, §7.
//   data : one E4M3FN byte per element, row-major [out, in]
//   y[i, j] = fp32(E4M3(data[i, j])) · scale, where scale is
//     _TENSOR   : tensor_scale                          (`weight_scale` [] or [1])
//     _CHANNEL  : scales[i], one F32 per row            (`weight_scale` [out, 1])
//     _BLOCK128 : scales[i/128][j/128], F32 per 128×128 tile (`weight_scale(_inv)`
//                 [⌈out/128⌉, ⌈in/128⌉]); RowPlanes.scales points at row i's tile-row
// Reference quantizer: scale = amax / 448 over the tensor / row / tile (1 when amax is 0),
// code = E4M3 RNE cast of x / scale (torch .to(float8_e4m3fn)); |x / scale| ≤ 448 up to
// one rounding, far from the 464 overflow point. The tile scales are computed by
// quantize() (formats/quant_matrix.cc) because a tile spans 128 rows; the row quantizer
// reads them from the scales plane.
#pragma once

#include <cstdint>

#include "formats/row_planes.h"

namespace imp {

inline constexpr int kFp8Tile = 128;

// amax / 448; 1 when that is 0 (an all-zero tensor, row or tile).
float fp8_e4m3_tensor_scale(float amax);

// Activations in F32 for all three. Sums run in fp32 in element order; the scale is
// applied once per tensor / row / 128-element tile segment.
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
