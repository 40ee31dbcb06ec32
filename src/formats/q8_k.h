// Q8_K — 256 elements in 292 bytes (9.125 bits/weight). ggml GGML_TYPE_Q8_K (id 15).
// The activation format paired with the K-quants and IQ4_XS; never a weight (no vec_dot).
// Spec: ../shared/specs/formats.md §2.2, §2.4, §3.4.
//   offset 0: d (f32, not f16)   offset 4: qs int8[256]   offset 260: bsums int16[16]
//   y[e] = d·qs[e];  bsums[k] = Σ qs[16k .. 16k+15] (lets K-quant dots apply mins cheaply)
// Reference quantizer (quantize_row_q8_K_ref): max = signed x of largest |x| (first wins),
// iscale = −127/max, q = min(127, nearest_int(iscale·x)), d = 1/iscale (fp32).
// An all-zero block gets d = 0, qs = 0 and bsums = 0 (ggml leaves bsums unwritten there).
#pragma once

#include <cstdint>

#include "formats/kquant_common.h"
#include "formats/row_planes.h"

namespace imp {

struct BlockQ8_K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};
static_assert(sizeof(BlockQ8_K) == 292, "Q8_K block is 292 bytes");

void quantize_row_q8_k(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_q8_k(const ConstRowPlanes& src, float* dst, int64_t n);

}  // namespace imp
