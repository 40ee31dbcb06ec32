// Device (and host) element decoder for FP8_E4M3_CHANNEL (spec formats.md §7, "CT strategy
// channel"): data = rows × cols E4M3FN bytes, scales = one little-endian F32 per row.
//   W[r, c] = fp32(E4M3(data[r, c])) · scale[r]      (one fp32 product, RNE)
// Bit-identical to the CPU reference dequantize_row_fp8_e4m3_channel.
#pragma once

#include "backends/cuda/decode_scalar.cuh"

namespace imp::cuda {

IMP_HD float decode_fp8_e4m3_channel(const uint8_t* row, float row_scale, int64_t e) {
  return imp_fmul_rn(e4m3_bits_to_f32(row[e]), row_scale);
}

// FP8_E4M3_TENSOR (ModelOpt FP8, CT tensor): one F32 multiplier for the whole matrix.
//   W[r, c] = fp32(E4M3(data[r, c])) · tensor_scale
IMP_HD float decode_fp8_e4m3_tensor(const uint8_t* row, float tensor_scale, int64_t e) {
  return imp_fmul_rn(e4m3_bits_to_f32(row[e]), tensor_scale);
}

// FP8_E4M3_BLOCK128 (DeepSeek-V3 / CT block): one F32 per 128×128 tile, scales stored
// row-major as ⌈rows/128⌉ × ⌈cols/128⌉ floats; `tile_scales` points at the tile row of r.
//   W[r, c] = fp32(E4M3(data[r, c])) · scale[r/128][c/128]
IMP_HD float decode_fp8_e4m3_block128(const uint8_t* row, const uint8_t* tile_scales, int64_t e) {
  return imp_fmul_rn(e4m3_bits_to_f32(row[e]), load_le_f32(tile_scales + 4 * (e / 128)));
}

}  // namespace imp::cuda
