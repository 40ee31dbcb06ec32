// Q5_K — 256 elements in 176 bytes (5.5 bits/weight). ggml GGML_TYPE_Q5_K (id 13).
// Spec: ../shared/specs/formats.md §2.2, §2.4, §3.4.
//   offset 0: d (f16)   offset 2: dmin (f16)
//   offset 4: scales[12] — 8 six-bit scales sc_t and mins m_t, packed as get_scale_min_k4
//   offset 16: qh[32] — bit 4 of element e is bit t = e/32 of qh[e%32]
//   offset 48: qs[128] — low 4 bits, laid out as Q4_K's qs
//   q = low4 + 16·highbit;  y = (d·sc_t)·q − dmin·m_t,  t = e/32
// Reference quantizer: quantize_row_q5_K_ref — as Q4_K with make_qkx2_quants(32, 31, w,
// −0.5, 0.1, 15).
#pragma once

#include <cstdint>

#include "formats/kquant_common.h"
#include "formats/row_planes.h"

namespace imp {

struct BlockQ5_K {
  uint16_t d;     // f16
  uint16_t dmin;  // f16
  uint8_t scales[12];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ5_K) == 176, "Q5_K block is 176 bytes");

void quantize_row_q5_k(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_q5_k(const ConstRowPlanes& src, float* dst, int64_t n);
// Activations in Q8_K; as Q4_K (integer sums per super-block, mins via bsums).
float vec_dot_q5_k(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
