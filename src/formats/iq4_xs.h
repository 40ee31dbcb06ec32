// IQ4_XS — 256 elements in 136 bytes (4.25 bits/weight). ggml GGML_TYPE_IQ4_XS (id 23).
// Spec: ../shared/specs/formats.md §2.2, §2.4, §3.4 (and §2.3 for the KNL table).
//   offset 0: d (f16)   offset 2: scales_h (u16)   offset 4: scales_l[4]   offset 8: qs[128]
//   8 sub-blocks t of 32: ls_t = ((scales_l[t/2] >> 4·(t%2)) & 15) | ((scales_h >> 2t) & 3) << 4,
//   dl = d·(ls_t − 32); b = qs[16t + (e%32)%16]; y = dl·KNL[e%32 < 16 ? lo(b) : hi(b)]
//   KNL = kvalues_iq4nl (non-linear int8 grid −127 … 113).
// Reference quantizer: what llama-quantize runs without an imatrix, ggml_quantize_chunk →
// quantize_iq4_xs → quantize_row_iq4_nl_impl(256, 32, ntry = 7, weights x²): per sub-block a
// weighted least-squares scale over 15 candidate grids, 6-bit signed sub-block scales against
// d = −maxS/32 (fp32), codes = nearest KNL entry to x/(d·l).
#pragma once

#include <cstdint>

#include "formats/kquant_common.h"
#include "formats/row_planes.h"

namespace imp {

struct BlockIq4_XS {
  uint16_t d;  // f16
  uint16_t scales_h;
  uint8_t scales_l[kQK_K / 64];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockIq4_XS) == 136, "IQ4_XS block is 136 bytes");

void quantize_row_iq4_xs(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_iq4_xs(const ConstRowPlanes& src, float* dst, int64_t n);
// Activations in Q8_K. Per super-block: integer Σ_t (ls_t − 32)·Σ q8·KNL[q], × d_w·d_a;
// fp32 sum across super-blocks.
float vec_dot_iq4_xs(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
