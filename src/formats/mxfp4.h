// MXFP4 (ggml block) — 32 E2M1 elements + one E8M0 exponent in 17 bytes (4.25 bits/weight).
// ggml GGML_TYPE_MXFP4 (id 39). Spec: ../shared/specs/formats.md §1.6, §1.7, §2.2, §2.3,
// §2.5, §3.3. (The gpt-oss safetensors layout, scales in a separate tensor, is mxfp4_ckpt.)
//   offset 0: e (E8M0)   offset 1: qs[16]
//   y[j] = kv[lo(qs[j])]·h,  y[j+16] = kv[hi(qs[j])]·h,  j = 0..15,
//   kv = 2·E2M1 (kE2M1TimesTwo), h = e8m0_to_f32_half_ggml(e) = 2^(e−128).
// Reference quantizer (quantize_row_mxfp4_ref): amax = max |x|;
// e = amax > 0 ? (uint8)(floorf(log2f(amax)) − 2 + 127) : 0; each element → the first
// code i minimising |kv[i]·h − x| (ties go to the smaller magnitude, zero to code 0).
// log2f is libm's: for amax just below a power of two it may round up to the integer.
// Activations in Q8_0. Per block: integer Σ kv·qa, then × (d_a·h).
#pragma once

#include <cstdint>

#include "formats/row_planes.h"

namespace imp {

inline constexpr int kQK_MXFP4 = 32;

struct BlockMXFP4 {
  uint8_t e;  // E8M0 shared exponent
  uint8_t qs[kQK_MXFP4 / 2];
};
static_assert(sizeof(BlockMXFP4) == 17, "MXFP4 block is 17 bytes");

// ggml best_index_mxfp4: the first E2M1 code whose doubled value times half_scale is
// nearest to v. Shared with NVFP4.
int e2m1_best_index_ggml(float v, float half_scale);

void quantize_row_mxfp4(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_mxfp4(const ConstRowPlanes& src, float* dst, int64_t n);
float vec_dot_mxfp4(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
