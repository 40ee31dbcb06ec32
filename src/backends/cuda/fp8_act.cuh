// The FP8 W8A8 GEMM's activation quantization rule (gemm_fp8.h), shared by quantize_x_fp8 and
// the kernels that produce activations already quantized (rmsnorm_fp8, swiglu_fp8): per token
// row, s = amax / 448 (IEEE division; 1 when amax is 0), code = E4M3(x / s) round to nearest
// even, saturated to ±448 — bit-identical to the CPU emulation's FP8 quantizer.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backends/cuda/fp8_encode.h"
#include "common/env_switch.h"

namespace imp::cuda {
// Whether the block-per-row FP8 producers (rmsnorm_fp8, swiglu_fp8) run two 1024-thread
// blocks per SM (IMP_CUDA_FP8_ROW_TWO_BLOCKS, default on; read once).
inline bool fp8_producers_two_blocks() {
  static const bool on = env_switch_on("IMP_CUDA_FP8_ROW_TWO_BLOCKS");
  return on;
}
}  // namespace imp::cuda

namespace imp::cuda::fp8act {

__device__ inline float scale_of(float amax) {
  const float s = __fdiv_rn(amax, 448.0f);
  return s > 0.0f ? s : 1.0f;
}

__device__ inline uint8_t encode(float v, float s) { return uint8_t(e4m3x2_saturate(__fdiv_rn(v, s), 0.0f)); }

// Four codes of v / s, little-endian in one word (element c at byte c).
__device__ inline uint32_t encode4(float4 v, float s) {
  return e4m3x2_saturate(__fdiv_rn(v.x, s), __fdiv_rn(v.y, s)) |
         e4m3x2_saturate(__fdiv_rn(v.z, s), __fdiv_rn(v.w, s)) << 16;
}

__device__ inline float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xFFFFFFFFu, v, o));
  return v;
}

// A padding token row (t ≥ n_tok) of a block-per-row quantizer: n zero codes, scale 1.
__device__ inline void write_padding_row(uint8_t* qr, int64_t n, float* s_t) {
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) qr[i] = 0;
  if (threadIdx.x == 0) *s_t = 1.0f;
}

// Max of v over the block (blockDim.x a multiple of 32, at most 1024); every thread gets it.
// Contains __syncthreads: call from all threads.
__device__ inline float block_max(float v) {
  __shared__ float warp_vals[32];
  __syncthreads();  // warp_vals may still be read from an earlier call
  v = warp_max(v);
  if ((threadIdx.x & 31) == 0) warp_vals[threadIdx.x >> 5] = v;
  __syncthreads();
  float m = 0.0f;
  for (int w = 0; w < int(blockDim.x >> 5); ++w) m = fmaxf(m, warp_vals[w]);
  return m;
}

}  // namespace imp::cuda::fp8act
