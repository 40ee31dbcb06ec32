// MXFP4_CKPT — OCP MXFP4 as checkpoints store it (gpt-oss `*_blocks` / `*_scales`).
// Spec: ../shared/specs/formats.md §1.6, §1.7, §6.5; OCP Microscaling Formats (MX) v1.0 §6.3.
//   data   : row of n/2 bytes; byte k = E2M1 code of element 2k (low nibble)
//            | code of element 2k+1 (high nibble); 16 bytes per 32 elements
//   scales : one E8M0 byte per 32 consecutive elements of the row
//   y[e] = E2M1(code[e]) · 2^(scale[e/32] − 127)       (0xFF = NaN)
// Reference quantizer (OCP MX v1.0 §6.3), per 32-element block:
//   shared_exp = floor(log2(amax)) − 2   (2 = emax of E2M1), clamped to [−127, 127];
//                amax = 0 or below 2^-126 → −127 (E8M0 byte 0x00); Inf amax → 0xFF (NaN)
//   code[e]    = E2M1 RNE of x[e] / 2^shared_exp, saturating at ±6, sign bit = (x < 0)
// (ggml's own MXFP4 quantizer differs: it rounds ties to the smaller magnitude, §1.6.)
#pragma once

#include <cstdint>

#include "formats/row_planes.h"

namespace imp {

inline constexpr int kMxfp4CkptBlock = 32;

// The E8M0 byte the OCP rule gives a block of max |x| = amax.
uint8_t mxfp4_ckpt_shared_exponent(float amax);

void quantize_row_mxfp4_ckpt(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_mxfp4_ckpt(const ConstRowPlanes& src, float* dst, int64_t n);
// Activations in Q8_0; the blocks line up. Per block:
//   sumi = Σ (2·E2M1 as int8) · q8;   sum += sumi · 2^(E−128) · d_a
float vec_dot_mxfp4_ckpt(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
