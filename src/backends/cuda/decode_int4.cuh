// Device (and host) element decoder for INT4_GROUP (spec formats.md §8.1, §8.2: GPTQ / AWQ
// repacked to [out, in]):
//   data   : rows × cols/2 bytes, element 2k low nibble, 2k+1 high nibble (uint4 codes)
//   scales : rows × cols/group F16       zeros : rows × cols/group uint8 (0..15)
//   W[r, c] = float(q − z[c/group]) · f16(s[c/group])      (one product, as the CPU)
// `group` is a positive multiple of 32 dividing cols.
#pragma once

#include "backends/cuda/decode_scalar.cuh"

namespace imp::cuda {

IMP_HD float decode_int4_group(const uint8_t* row_data, const uint8_t* row_scales, const uint8_t* row_zeros, int group,
                               int64_t e) {
  const int q = (row_data[e / 2] >> (4 * (e & 1))) & 0xF;
  const int64_t k = e / group;
  return imp_fmul_rn(float(q - int(row_zeros[k])), f16_bits_to_f32(load_le16(row_scales + 2 * k)));
}

}  // namespace imp::cuda
