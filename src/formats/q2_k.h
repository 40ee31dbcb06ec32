// Q2_K — 256 elements in 84 bytes (2.625 bits/weight). ggml GGML_TYPE_Q2_K (id 10).
// Spec: ../shared/specs/formats.md §2.2, §2.4, §3.4.
//   offset 0: scales[16]  (per 16-element sub-block: low nibble = 4-bit scale, high = 4-bit min)
//   offset 16: qs[64]     (2-bit codes; element e, h = e/128, r = e%128:
//                          q = (qs[32h + r%32] >> 2·(r/32)) & 3)
//   offset 80: d (f16)    offset 82: dmin (f16)
//   y = (d·lo(scales[e/16]))·q − dmin·hi(scales[e/16])
// Reference quantizer: quantize_row_q2_K_ref (what llama-quantize runs without an imatrix):
// make_qkx2_quants(16, 3, w = |x|, −0.5, 0.1, 15, mad) per sub-block, 4-bit scale/min codes
// relative to the super-block maxima, then codes recomputed from the F16-rounded scales.
#pragma once

#include <cstdint>

#include "formats/kquant_common.h"
#include "formats/row_planes.h"

namespace imp {

struct BlockQ2_K {
  uint8_t scales[kQK_K / 16];
  uint8_t qs[kQK_K / 4];
  uint16_t d;     // f16
  uint16_t dmin;  // f16
};
static_assert(sizeof(BlockQ2_K) == 84, "Q2_K block is 84 bytes");

void quantize_row_q2_k(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_q2_k(const ConstRowPlanes& src, float* dst, int64_t n);
// Activations in Q8_K. Per super-block: integer Σ scale·Σq8·q and Σ bsums·min, then
// × d_w·d_a and × dmin_w·d_a; fp32 sum across super-blocks.
float vec_dot_q2_k(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
