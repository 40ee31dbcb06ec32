// INT4_GROUP — asymmetric uint4 weights with an F16 scale and a uint8 zero point per group
// of `group` input elements: the canonical layout GPTQ (v2 zeros) and AWQ GEMM checkpoints
// are repacked into (their I32 words unpacked, transposed to [out, in], v1 zeros + 1).
// Spec: ../shared/specs/formats.md §8.1, §8.2.
//   data   : row of n/2 bytes; byte k = q[2k] (low nibble) | q[2k+1] (high nibble)
//   scales : one F16 per group of the row          zeros : one uint8 (0..15) per group
//   group  : RowPlanes.group, a positive multiple of 32 dividing the row
//   y[e] = (q[e] − z[e/group]) · f16(s[e/group])
// Reference quantizer (round to nearest, GPTQ's Quantizer.find_params + quantize), fp32:
//   lo = min(min(x), 0), hi = max(max(x), 0)   (GPTQ keeps 0 inside the range, so the zero
//        point needs no clamp and 0 stays exact);  lo == hi == 0 → lo = −1, hi = 1 (as GPTQ)
//   s = F16((hi − lo) / 15), then with the stored s:
//   z = clamp(round(−lo / s), 0, 15),  q = clamp(round(x / s) + z, 0, 15)
//   round = round half to even, as torch.round. GPTQ divides by the fp32 scale and rounds it
//   to F16 only when packing; dividing by the stored scale instead keeps the codes
//   consistent with what is decoded. A scale that underflows F16 writes s = 0, z = q = 0;
//   one that overflows it (group range above ~9.8e5) is an error.
#pragma once

#include <cstdint>

#include "formats/row_planes.h"

namespace imp {

void quantize_row_int4_group(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_int4_group(const ConstRowPlanes& src, float* dst, int64_t n);
// Activations in Q8_0 (groups are whole Q8_0 blocks). Per 32-element block:
//   sumi = Σ (q − z) · q8 (exact);  sum += sumi · (s · d_a)
float vec_dot_int4_group(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
