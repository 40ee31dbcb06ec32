// Q3_K — 256 elements in 110 bytes (3.4375 bits/weight). ggml GGML_TYPE_Q3_K (id 11).
// Spec: ../shared/specs/formats.md §2.2, §2.4, §3.4.
//   offset 0: hmask[32]   (high bit of element 32k + l is bit k of hmask[l])
//   offset 32: qs[64]     (low 2 bits; element e, h = e/128, r = e%128:
//                          (qs[32h + r%32] >> 2·(r/32)) & 3)
//   offset 96: scales[12] (16 six-bit scales S_t, biased by 32: for t < 8 the low nibble of
//                          scales[t], for t ≥ 8 the high nibble of scales[t−8]; bits 4–5
//                          are bits 2·(t/4).. of scales[8 + t%4])
//   offset 108: d (f16)
//   q = low2 − (high bit ? 0 : 4) ∈ [−4, 3];  y = (d·(S_t − 32))·q,  t = e/16
// Reference quantizer: quantize_row_q3_K_ref — make_q3_quants(16, 4) per sub-block,
// 6-bit signed scale codes against the scale of largest |S|, codes recomputed from the
// F16-rounded scales.
#pragma once

#include <cstdint>

#include "formats/kquant_common.h"
#include "formats/row_planes.h"

namespace imp {

struct BlockQ3_K {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[12];
  uint16_t d;  // f16
};
static_assert(sizeof(BlockQ3_K) == 110, "Q3_K block is 110 bytes");

void quantize_row_q3_k(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_q3_k(const ConstRowPlanes& src, float* dst, int64_t n);
// Activations in Q8_K. Per super-block: integer Σ_t (S_t − 32)·Σ q8·q, × d_w·d_a; fp32
// sum across super-blocks.
float vec_dot_q3_k(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
