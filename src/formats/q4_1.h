// Q4_1 — 32 elements in 20 bytes (5 bits/weight). ggml GGML_TYPE_Q4_1 (id 3).
// Spec: ../shared/specs/formats.md §2.2, §2.3, §3.2.
//   offset 0: d (f16)   offset 2: m (f16)   offset 4: qs[16]
//   y[j] = lo(qs[j])·d + m,  y[j+16] = hi(qs[j])·d + m,  j = 0..15
// Reference quantizer (quantize_row_q4_1_ref): mn/mx = min/max x (start ±FLT_MAX),
// d = (mx − mn)/15, id = 1/d (fp32 d, before F16 rounding), m = F16(mn),
// q = min(15, (int8)((x − mn)·id + 0.5)).
// Activations in Q8_1: per block d_w·d_a·Σ(q·qa) + m·s, s = the Q8_1 block's F16(d_a·Σqa).
#pragma once

#include <cstdint>

#include "formats/row_planes.h"

namespace imp {

inline constexpr int kQK4_1 = 32;

struct BlockQ4_1 {
  uint16_t d;  // f16 scale
  uint16_t m;  // f16 minimum (added, not subtracted)
  uint8_t qs[kQK4_1 / 2];
};
static_assert(sizeof(BlockQ4_1) == 20, "Q4_1 block is 20 bytes");

void quantize_row_q4_1(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_q4_1(const ConstRowPlanes& src, float* dst, int64_t n);
float vec_dot_q4_1(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
