// Activation quantizers for the integer-dot GEMV kernels (gemv_dp4a.cu): F32 x → int8
// blocks, producing exactly the codes and scales of the CPU reference quantizers
// quantize_row_q8_0 (src/formats/q8_0.cc) and quantize_row_q8_k (src/formats/q8_k.cc);
// contract in gemv.h. Exactness rests on IEEE fp32 division and reciprocal (nvcc's default
// -prec-div=true; this project never builds with --use_fast_math), products written as
// __fmul_rn so nothing contracts, and rounding functions with the CPU's tie rules:
// roundf (ties away from zero) for Q8_0, __float2int_rn (ties to even, = ggml nearest_int
// for |v| < 2^22) for Q8_K.
//
// Q8_0: one warp per 32-element block, one element per lane; amax and Σq by shuffles.
// Q8_K: one warp per 256-element block, 8 consecutive elements per lane; the signed max
//       with the CPU's first-wins rule is a shuffle reduction over (|x|, index) ordered by
//       |x| descending, then index ascending; bsums by pairing lanes 2k and 2k+1.
#include <cuda_fp16.h>

#include "backends/cuda/check.h"
#include "backends/cuda/gemv.h"
#include "common/error.h"

namespace imp::cuda {
namespace {

constexpr int kThreads = 256;  // 8 warps = 8 blocks of x per thread block

__global__ void __launch_bounds__(kThreads) quantize_q8_0_kernel(const float* x, int64_t blocks, int8_t* qs,
                                                                  float* d_out, int32_t* sums) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = int64_t(gridDim.x) * (kThreads / 32);
  for (int64_t b = (int64_t(blockIdx.x) * kThreads + threadIdx.x) / 32; b < blocks; b += warps) {
    const float v = x[32 * b + lane];
    float amax = fabsf(v);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, o));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const int q = int(roundf(__fmul_rn(v, id)));
    qs[32 * b + lane] = int8_t(q);
    int s = q;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xFFFFFFFFu, s, o);
    if (lane == 0) {
      d_out[b] = __half2float(__float2half_rn(d));  // the f16 the CPU block stores, as f32
      sums[b] = s;
    }
  }
}

__global__ void __launch_bounds__(kThreads) quantize_q8_k_kernel(const float* x, int64_t blocks, int8_t* qs,
                                                                  float* d_out, int16_t* bsums) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = int64_t(gridDim.x) * (kThreads / 32);
  for (int64_t b = (int64_t(blockIdx.x) * kThreads + threadIdx.x) / 32; b < blocks; b += warps) {
    const float* xb = x + 256 * b + 8 * lane;
    float v[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = xb[i];
    // First-wins signed max of this lane's 8 elements (strict >, as the CPU loop).
    float amax = 0.0f, mx = 0.0f;
    int idx = 256;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const float ax = fabsf(v[i]);
      if (ax > amax) {
        amax = ax;
        mx = v[i];
        idx = 8 * lane + i;
      }
    }
    // Across lanes: larger |x| wins, equal |x| → lower index (the CPU saw it first).
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float oa = __shfl_xor_sync(0xFFFFFFFFu, amax, o);
      const float om = __shfl_xor_sync(0xFFFFFFFFu, mx, o);
      const int oi = __shfl_xor_sync(0xFFFFFFFFu, idx, o);
      if (oa > amax || (oa == amax && oi < idx)) {
        amax = oa;
        mx = om;
        idx = oi;
      }
    }
    int8_t q[8];
    int s = 0;
    float d = 0.0f;
    if (amax != 0.0f) {
      const float iscale = -127.0f / mx;
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        q[i] = int8_t(min(127, __float2int_rn(__fmul_rn(iscale, v[i]))));
        s += q[i];
      }
      d = 1.0f / iscale;
    } else {
#pragma unroll
      for (int i = 0; i < 8; ++i) q[i] = 0;
    }
    int8_t* qb = qs + 256 * b + 8 * lane;
#pragma unroll
    for (int i = 0; i < 8; ++i) qb[i] = q[i];
    s += __shfl_xor_sync(0xFFFFFFFFu, s, 1);  // lanes 2k, 2k+1 = elements 16k .. 16k+15
    if ((lane & 1) == 0) bsums[16 * b + lane / 2] = int16_t(s);
    if (lane == 0) d_out[b] = d;
  }
}

unsigned grid_for(int64_t blocks) {
  const int64_t g = (blocks + kThreads / 32 - 1) / (kThreads / 32);
  return unsigned(g < 65535 ? g : 65535);
}

void check_x_args(const char* what, const float* x, int64_t cols, int64_t block, const void* qs, const void* d,
                  const void* extra) {
  if (cols <= 0 || cols % block != 0) fail("{}: cols {} is not a positive multiple of {}", what, cols, block);
  if (!x || !qs || !d || !extra) fail("{}: null device pointer", what);
}

}  // namespace

void quantize_x_q8_0(const float* x, int64_t cols, int8_t* qs, float* d_out, int32_t* sums, cudaStream_t stream) {
  check_x_args("quantize_x_q8_0", x, cols, 32, qs, d_out, sums);
  const int64_t blocks = cols / 32;
  quantize_q8_0_kernel<<<grid_for(blocks), kThreads, 0, stream>>>(x, blocks, qs, d_out, sums);
  IMP_CUDA_CHECK_LAUNCH();
}

void quantize_x_q8_k(const float* x, int64_t cols, int8_t* qs, float* d_out, int16_t* bsums, cudaStream_t stream) {
  check_x_args("quantize_x_q8_k", x, cols, 256, qs, d_out, bsums);
  const int64_t blocks = cols / 256;
  quantize_q8_k_kernel<<<grid_for(blocks), kThreads, 0, stream>>>(x, blocks, qs, d_out, bsums);
  IMP_CUDA_CHECK_LAUNCH();
}

}  // namespace imp::cuda
