// Q6_K — 256 elements in 210 bytes (6.5625 bits/weight). ggml GGML_TYPE_Q6_K (id 14).
// Spec: ../shared/specs/formats.md §2.2, §2.4, §3.4.
//   offset 0: ql[128]   (low 4 bits; element e, h = e/128, r = e%128, g = r/32, l = r%32:
//                        b = ql[64h + l + 32·(g&1)], low4 = g < 2 ? lo(b) : hi(b))
//   offset 128: qh[64]  (high 2 bits: (qh[32h + l] >> 2g) & 3)
//   offset 192: scales int8[16] (one per 16-element sub-block)
//   offset 208: d (f16)
//   q = (low4 | high2 << 4) − 32 ∈ [−32, 31];  y = (d·scales[e/16])·q
// Reference quantizer: quantize_row_q6_K_ref — make_qx_quants(16, 32, rmse_type 1) per
// sub-block, int8 scale codes against the scale of largest |S| (iscale = −128/maxS), codes
// recomputed from the F16-rounded scale.
#pragma once

#include <cstdint>

#include "formats/kquant_common.h"
#include "formats/row_planes.h"

namespace imp {

struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;  // f16
};
static_assert(sizeof(BlockQ6_K) == 210, "Q6_K block is 210 bytes");

void quantize_row_q6_k(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_q6_k(const ConstRowPlanes& src, float* dst, int64_t n);
// Activations in Q8_K. Per super-block: integer Σ_t scales_t·Σ q8·q, × d_w·d_a; fp32 sum
// across super-blocks.
float vec_dot_q6_k(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
