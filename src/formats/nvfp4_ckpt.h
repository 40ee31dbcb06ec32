// NVFP4_CKPT — NVFP4 as HF checkpoints store it (ModelOpt layout), scales in separate planes.
// Spec: ../shared/specs/formats.md §1.4, §1.6, §6.1, §6.2.
//   data   : row of n/2 bytes; byte k = E2M1 code of element 2k (low nibble)
//            | code of element 2k+1 (high nibble)                 (`<p>.weight` U8 [out, in/2])
//   scales : one E4M3FN byte per 16 consecutive elements of the row (`<p>.weight_scale`)
//   tensor_scale : G, the per-tensor multiplier (`<p>.weight_scale_2`)
//   y[e] = E2M1(code[e]) · fp32(E4M3(scale[e/16])) · G
// Reference quantizer = ModelOpt NVFP4QTensor (non-TRT path), fp32 throughout:
//   G = amax(|W|) / (6·448)                            (nvfp4_ckpt_tensor_scale)
//   s = block_amax / (6·G);  s == 0 → 1;  s = max(s, 2^-9);  S = E4M3 RNE cast of s
//   v = x / (fp32(S)·G)   (product first, then the division)
//   code = E2M1 RNE with saturation at 6, sign bit = (x < 0)
// The 2^-9 floor is current ModelOpt (NVIDIA/Model-Optimizer: "clamp at fp8_e4m3fn
// subnormal min so tiny-amax blocks don't underflow to 0"); older releases, which §6.2
// transcribes, let such blocks get a zero scale. It only changes blocks whose amax is below
// 2^-9·6·G ≈ 2.2e-6 × the tensor's amax.
#pragma once

#include <cstdint>

#include "formats/row_planes.h"

namespace imp {

inline constexpr int kNvfp4CkptBlock = 16;

// G = amax / (6·448). An all-zero (or underflowing) tensor gets G = 1, where ModelOpt would
// divide 0 by 0 and write NaN scales.
float nvfp4_ckpt_tensor_scale(float amax);

void quantize_row_nvfp4_ckpt(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_nvfp4_ckpt(const ConstRowPlanes& src, float* dst, int64_t n);
// Activations in Q8_0 (32 elements), so n must be a multiple of 32 here (the activation
// row's own size check enforces it). Per 16-element half of a Q8_0 block:
//   sumi = Σ (2·E2M1 as int8) · q8   (exact integers)
//   sum += sumi · (0.5 · fp32(S) · G · d_a), factors multiplied left to right.
float vec_dot_nvfp4_ckpt(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
