// Q4_0 — 32 elements in 18 bytes (4.5 bits/weight). ggml GGML_TYPE_Q4_0 (id 2).
// Spec: ../shared/specs/formats.md §2.3, §3.2.
//   offset 0: d (f16)   offset 2: qs[16]
//   y[j]    = (lo(qs[j]) − 8)·d,  y[j+16] = (hi(qs[j]) − 8)·d,  j = 0..15
// Reference quantizer (quantize_row_q4_0_ref): max = the signed x of largest |x| (first
// wins), d = max / −8, id = 1/d (fp32 d, before F16 rounding), q = min(15, (int8)(x·id + 8.5)).
#pragma once

#include <cstdint>

#include "formats/row_planes.h"

namespace imp {

inline constexpr int kQK4_0 = 32;

struct BlockQ4_0 {
  uint16_t d;  // f16
  uint8_t qs[kQK4_0 / 2];
};
static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 block is 18 bytes");

void quantize_row_q4_0(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_q4_0(const ConstRowPlanes& src, float* dst, int64_t n);
// Activations in Q8_0. Per block: integer sum of products, then × d_w × d_a.
float vec_dot_q4_0(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
