// NVFP4 (ggml block) — 64 E2M1 elements + four UE4M3 sub-block scales in 36 bytes
// (4.5 bits/weight). ggml GGML_TYPE_NVFP4 (id 40). Spec: ../shared/specs/formats.md §1.6,
// §1.8, §2.2, §2.3, §2.5, §3.3. (Checkpoint NVFP4 with a global scale is nvfp4_ckpt.)
//   offset 0: d[4] (UE4M3, one per 16 elements)   offset 4: qs[32]
//   sub-block s = 0..3, j = 0..7, D = ue4m3_to_f32_half_ggml(d[s]) (0.5·UE4M3; 0x00/0x7F → 0):
//     y[16s+j] = kv[lo(qs[8s+j])]·D,  y[16s+j+8] = kv[hi(qs[8s+j])]·D,  kv = 2·E2M1
//   (inside a sub-block low nibbles hold elements 0..7, high nibbles 8..15.)
// Reference quantizer (quantize_row_nvfp4_ref, no global scale): per sub-block
// d[s] = f32_to_ue4m3_ggml(amax/6), codes by ggml's first-minimum search with D.
// Activations in Q8_0: a block spans two Q8_0 blocks, sub-blocks 2k and 2k+1 fall in the
// k-th. Per sub-block: integer Σ kv·qa, then × (d_a·D).
#pragma once

#include <cstdint>

#include "formats/row_planes.h"

namespace imp {

inline constexpr int kQK_NVFP4 = 64;
inline constexpr int kQK_NVFP4_SUB = 16;

struct BlockNVFP4 {
  uint8_t d[kQK_NVFP4 / kQK_NVFP4_SUB];  // UE4M3 sub-block scales
  uint8_t qs[kQK_NVFP4 / 2];
};
static_assert(sizeof(BlockNVFP4) == 36, "NVFP4 block is 36 bytes");

void quantize_row_nvfp4(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_nvfp4(const ConstRowPlanes& src, float* dst, int64_t n);
float vec_dot_nvfp4(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
