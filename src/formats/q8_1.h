// Q8_1 — 32 elements in 36 bytes (9 bits/weight). ggml GGML_TYPE_Q8_1 (id 9).
// Spec: ../shared/specs/formats.md §2.2, §3.2.
//   offset 0: d (f16)   offset 2: s (f16) = F16(d·Σqs)   offset 4: qs int8[32];  y[e] = qs[e]·d
// Reference quantizer (quantize_row_q8_1_ref): as Q8_0 — d = amax/127, id = 1/d (fp32),
// q = (int8)roundf(x·id) — plus s = F16(float(Σq)·d) from the integer sum of the stored
// codes and the fp32 d.
// Activation-only: the format Q4_1 and Q5_1 weights dot with, never a weight itself
// (no vec_dot; gguf-py's 40-byte size for it is stale, ggml's struct is 36 bytes).
#pragma once

#include <cstdint>

#include "formats/row_planes.h"

namespace imp {

inline constexpr int kQK8_1 = 32;

struct BlockQ8_1 {
  uint16_t d;  // f16 scale
  uint16_t s;  // f16 of d·Σqs: lets a weight's min term be added once per block
  int8_t qs[kQK8_1];
};
static_assert(sizeof(BlockQ8_1) == 36, "Q8_1 block is 36 bytes");

void quantize_row_q8_1(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_q8_1(const ConstRowPlanes& src, float* dst, int64_t n);

}  // namespace imp
