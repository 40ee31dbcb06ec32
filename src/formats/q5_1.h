// Q5_1 — 32 elements in 24 bytes (6 bits/weight). ggml GGML_TYPE_Q5_1 (id 7).
// Spec: ../shared/specs/formats.md §2.2, §2.3, §3.2.
//   offset 0: d (f16)   offset 2: m (f16)   offset 4: qh (u32 LE)   offset 8: qs[16]
//   y[j]    = (lo(qs[j]) | bit(qh, j) << 4)·d + m
//   y[j+16] = (hi(qs[j]) | bit(qh, j+16) << 4)·d + m,  j = 0..15
// Reference quantizer (quantize_row_q5_1_ref): mn/mx = min/max x, d = (mx − mn)/31,
// id = 1/d (fp32 d), m = F16(mn), q = (uint8)((x − mn)·id + 0.5) — no clamp.
// Activations in Q8_1: per block d_w·d_a·Σ(q·qa) + m·s, s = the Q8_1 block's F16(d_a·Σqa).
#pragma once

#include <cstdint>

#include "formats/row_planes.h"

namespace imp {

inline constexpr int kQK5_1 = 32;

struct BlockQ5_1 {
  uint16_t d;     // f16 scale
  uint16_t m;     // f16 minimum
  uint8_t qh[4];  // little-endian u32 of fifth bits
  uint8_t qs[kQK5_1 / 2];
};
static_assert(sizeof(BlockQ5_1) == 24, "Q5_1 block is 24 bytes");

void quantize_row_q5_1(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_q5_1(const ConstRowPlanes& src, float* dst, int64_t n);
float vec_dot_q5_1(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
