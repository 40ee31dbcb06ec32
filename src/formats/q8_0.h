// Q8_0 — 32 elements in 34 bytes (8.5 bits/weight). ggml GGML_TYPE_Q8_0 (id 8).
// Spec: ../shared/specs/formats.md §2.3, §3.2.
//   offset 0: d (f16)   offset 2: qs int8[32];   y[e] = qs[e]·d
// Reference quantizer: d = amax/127, id = 1/d (fp32), q = (int8)roundf(x·id).
// Blocks are 34 bytes, so in a row they sit at 2-byte alignment at best: always memcpy.
// Q8_0 is also the activation format the 32-element weight types dot with.
#pragma once

#include <cstdint>

#include "formats/row_planes.h"

namespace imp {

inline constexpr int kQK8_0 = 32;

struct BlockQ8_0 {
  uint16_t d;  // f16
  int8_t qs[kQK8_0];
};
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block is 34 bytes");

void quantize_row_q8_0(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_q8_0(const ConstRowPlanes& src, float* dst, int64_t n);
float vec_dot_q8_0(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
