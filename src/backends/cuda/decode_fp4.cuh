// Device (and host) element decoder for NVFP4_CKPT (spec formats.md §6.1, ModelOpt /
// compressed-tensors / Quark checkpoints):
//   data   : rows × cols/2 bytes; byte k of a row holds element 2k in the low nibble and
//            element 2k+1 in the high nibble (E2M1 codes, §1.6)
//   scales : rows × cols/16 E4M3FN bytes, one per 16 consecutive elements of a row
//   G      : per-tensor F32 multiplier (ModelOpt weight_scale_2)
//   W[r, c] = E2M1(code) · (fp32(E4M3 scale) · G)   (the block scale first, as the CPU reference)
// evaluated left to right as the spec writes it: the first product is exact (2 × 4
// significant bits), so only the multiplication by G rounds. A reference that instead
// rounds fp32(S)·G first would differ in the last bit for some codes (1.5, 3, 6); the
// bit-exact test (tests/cuda/test_gemv.cc) is what pins the two together.
#pragma once

#include "backends/cuda/decode_scalar.cuh"

namespace imp::cuda {

IMP_HD float decode_nvfp4_ckpt(const uint8_t* row_data, const uint8_t* row_scales, float g, int64_t e) {
  const uint8_t code = uint8_t(row_data[e / 2] >> (4 * (e & 1)));
  return imp_fmul_rn(e2m1_bits_to_f32(code & 0xF), imp_fmul_rn(e4m3_bits_to_f32(row_scales[e / 16]), g));
}

// MXFP4_CKPT (spec formats.md §6.5, gpt-oss `*_blocks` / `*_scales`, OCP MX v1.0):
//   data   : rows × cols/2 bytes, element 2k low nibble, 2k+1 high nibble (E2M1)
//   scales : rows × cols/32 E8M0 bytes
//   W[r, c] = E2M1(code) · 2^(scale − 127)     (one product; exact unless it underflows)
// A 0xFF (NaN) scale decodes to NaN; its bit pattern may differ from the CPU's.
IMP_HD float decode_mxfp4_ckpt(const uint8_t* row_data, const uint8_t* row_scales, int64_t e) {
  const uint8_t code = uint8_t(row_data[e / 2] >> (4 * (e & 1)));
  return imp_fmul_rn(e2m1_bits_to_f32(code & 0xF), e8m0_value(row_scales[e / 32]));
}

}  // namespace imp::cuda
