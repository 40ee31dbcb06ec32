// Device (and host) element decoders for the plain 16-bit weight formats, bit-identical to
// formats/bf16.h and formats/f16.h (NaN payloads kept). Row = n little-endian 16-bit codes.
#pragma once

#include "backends/cuda/decode_scalar.cuh"

namespace imp::cuda {

IMP_HD float decode_bf16(const uint8_t* row, int64_t e) { return bf16_bits_to_f32(load_le16(row + 2 * e)); }
IMP_HD float decode_f16(const uint8_t* row, int64_t e) { return f16_bits_to_f32(load_le16(row + 2 * e)); }

}  // namespace imp::cuda
