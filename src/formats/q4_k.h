// Q4_K — 256 elements in 144 bytes (4.5 bits/weight). ggml GGML_TYPE_Q4_K (id 12).
// Spec: ../shared/specs/formats.md §2.2, §2.4, §3.4.
//   offset 0: d (f16)   offset 2: dmin (f16)
//   offset 4: scales[12] — 8 six-bit scales sc_t and mins m_t, packed as get_scale_min_k4
//             (kquant_common.h)
//   offset 16: qs[128] — element e: c = e/64, b = qs[32c + e%32]; q = e%64 < 32 ? lo(b) : hi(b)
//   y = (d·sc_t)·q − dmin·m_t,  t = e/32
// Reference quantizer: quantize_row_q4_K_ref — w = sqrt(Σx²/32) + |x|,
// make_qkx2_quants(32, 15, w, −1.0, 0.1, 20) per sub-block, 6-bit scale/min codes against
// the super-block maxima, codes recomputed from the F16-rounded scales.
#pragma once

#include <cstdint>

#include "formats/kquant_common.h"
#include "formats/row_planes.h"

namespace imp {

struct BlockQ4_K {
  uint16_t d;     // f16
  uint16_t dmin;  // f16
  uint8_t scales[12];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 144, "Q4_K block is 144 bytes");

void quantize_row_q4_k(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_q4_k(const ConstRowPlanes& src, float* dst, int64_t n);
// Activations in Q8_K. Per super-block: integer Σ_t sc_t·Σ q8·q and Σ_k m_(k/2)·bsums_k,
// × d_w·d_a and × dmin_w·d_a; fp32 sum across super-blocks.
float vec_dot_q4_k(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
