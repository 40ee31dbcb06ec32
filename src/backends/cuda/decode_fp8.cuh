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

}  // namespace imp::cuda
