// Q5_0 — 32 elements in 22 bytes (5.5 bits/weight). ggml GGML_TYPE_Q5_0 (id 6).
// Spec: ../shared/specs/formats.md §2.2, §2.3, §2.5, §3.2.
//   offset 0: d (f16)   offset 2: qh (u32 LE, bit k = bit 4 of element k)   offset 6: qs[16]
//   y[j]    = ((lo(qs[j]) | bit(qh, j) << 4) − 16)·d
//   y[j+16] = ((hi(qs[j]) | bit(qh, j+16) << 4) − 16)·d,  j = 0..15
// Reference quantizer (quantize_row_q5_0_ref): max = the signed x of largest |x| (first
// wins), d = max / −16, id = 1/d (fp32 d), q = min(31, (int8)(x·id + 16.5)).
// Activations in Q8_0. Per block: integer sum of products, then × (d_w·d_a).
#pragma once

#include <cstdint>

#include "formats/row_planes.h"

namespace imp {

inline constexpr int kQK5_0 = 32;

struct BlockQ5_0 {
  uint16_t d;     // f16
  uint8_t qh[4];  // little-endian u32 of fifth bits; a byte array keeps the struct 22 bytes
  uint8_t qs[kQK5_0 / 2];
};
static_assert(sizeof(BlockQ5_0) == 22, "Q5_0 block is 22 bytes");

void quantize_row_q5_0(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_q5_0(const ConstRowPlanes& src, float* dst, int64_t n);
float vec_dot_q5_0(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
