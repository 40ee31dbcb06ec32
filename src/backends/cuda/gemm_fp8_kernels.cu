// Kernels of the FP8 W8A8 prefill GEMM (gemm_fp8.h): activation quantization to E4M3 with
// dynamic per-token (or per-token-per-128-column) scales, and the scale plumbing around the
// cuBLASLt call.
#include <algorithm>

#include "backends/cuda/check.h"
#include "backends/cuda/gemm_fp8.h"
#include "backends/cuda/gemm_fp8_kernels.h"
#include "backends/cuda/fp8_act.cuh"
#include "backends/cuda/kv_codec.cuh"
#include "backends/cuda/pdl.cuh"

namespace imp::cuda {
namespace {

constexpr int kRowThreads = 256;  // quantize_x_fp8_row: one block per token

using fp8act::scale_of;
using fp8act::warp_max;

__device__ inline float amax4(float4 v) { return fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))); }

using fp8act::encode4;

// One block per token row t < n_pad: amax over the row (block max, exact and order-free),
// then every thread encodes its float4s. q row t is cols bytes; s[t].
__global__ void quantize_x_fp8_row(const float* x, int64_t n_tok, int64_t cols, uint8_t* q, float* s) {
  pdl_wait();  // x comes from the kernel before; q may still be read by the last GEMM
  pdl_trigger();
  const int64_t t = blockIdx.x;
  const int64_t n4 = cols / 4;
  auto* qrow = reinterpret_cast<uint32_t*>(q + t * cols);
  if (t >= n_tok) return fp8act::write_padding_row(q + t * cols, cols, s + t);
  const auto* xrow = reinterpret_cast<const float4*>(x + t * cols);
  float amax = 0.0f;
  for (int64_t i = threadIdx.x; i < n4; i += blockDim.x) amax = fmaxf(amax, amax4(xrow[i]));
  const float scale = scale_of(fp8act::block_max(amax));
  for (int64_t i = threadIdx.x; i < n4; i += blockDim.x) qrow[i] = encode4(xrow[i], scale);
  if (threadIdx.x == 0) s[t] = scale;
}

// One warp per (token t < n_pad, group g of 128 columns): lane l holds columns
// 128g + 4l … 128g + 4l + 3 (a partial last group leaves high lanes idle). s[g·n_pad + t].
__global__ void quantize_x_fp8_group128(const float* x, int64_t n_tok, int64_t n_pad, int64_t cols, uint8_t* q,
                                        float* s) {
  pdl_wait();
  pdl_trigger();
  const int64_t n_groups = (cols + kFp8ActGroup - 1) / kFp8ActGroup;
  const int64_t warp = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (warp >= n_pad * n_groups) return;
  const int lane = threadIdx.x & 31;
  const int64_t t = warp / n_groups, g = warp % n_groups;
  const int64_t c = g * kFp8ActGroup + 4 * lane;
  const bool in = c < cols;  // cols % 4 == 0: a float4 is wholly in or out
  float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  if (in && t < n_tok) v = *reinterpret_cast<const float4*>(x + t * cols + c);
  const float scale = t < n_tok ? scale_of(warp_max(amax4(v))) : 1.0f;
  if (in) *reinterpret_cast<uint32_t*>(q + t * cols + c) = t < n_tok ? encode4(v, scale) : 0u;
  if (lane == 0) s[g * n_pad + t] = scale;
}

__global__ void fill_kernel(float* p, int64_t n, float v) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) p[i] = v;
}

__global__ void pad_tile_scales_kernel(const float* src, int64_t tile_rows, int64_t kb, int64_t kb_pad, float* dst) {
  const int64_t n = tile_rows * kb_pad;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t tr = i / kb_pad, tc = i % kb_pad;
    dst[i] = tc < kb ? src[tr * kb + tc] : 1.0f;
  }
}

__global__ void epilogue_kernel(const void* d, bool d_bf16, float* y, int64_t n_tok, int64_t rows,
                                const float* row_scale, float tensor_scale, const float* tok_scale) {
  const int64_t n = n_tok * rows;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / rows, r = i % rows;
    const float acc = d_bf16 ? kvc::bf16_to_f32(static_cast<const uint16_t*>(d)[i]) : static_cast<const float*>(d)[i];
    const float ws = row_scale ? row_scale[r] : tensor_scale;
    const float ts = tok_scale ? tok_scale[t] : 1.0f;
    y[i] = acc * (ws * ts);
  }
}

int grid_for(int64_t n, int threads) { return int(std::clamp<int64_t>((n + threads - 1) / threads, 1, 65535)); }

}  // namespace

bool is_fp8_weight(FormatId f) {
  return f == FormatId::FP8_E4M3_TENSOR || f == FormatId::FP8_E4M3_CHANNEL || f == FormatId::FP8_E4M3_BLOCK128;
}

void quantize_x_fp8(const float* x, int64_t n_tok, int64_t n_pad, int64_t cols, int64_t group, uint8_t* q, float* s,
                    cudaStream_t stream) {
  if (n_tok < 1 || n_pad < n_tok || cols < 4 || cols % 4 != 0 || (group != cols && group != kFp8ActGroup)) {
    fail("quantize_x_fp8: bad shape ({} tokens padded to {}, {} columns, groups of {})", n_tok, n_pad, cols, group);
  }
  if (reinterpret_cast<uintptr_t>(x) % 16 != 0) fail("quantize_x_fp8: x is not 16-byte aligned");
  if (n_pad > 0x7FFFFFFF) fail("quantize_x_fp8: {} tokens out of range", n_pad);
  if (group == cols) {
    launch_pdl(quantize_x_fp8_row, dim3(unsigned(n_pad)), dim3(kRowThreads), 0, stream, x, n_tok, cols, q, s);
  } else {
    const int64_t warps = n_pad * ((cols + kFp8ActGroup - 1) / kFp8ActGroup);
    constexpr int kWarpsPerBlock = 8;
    const int64_t blocks = (warps + kWarpsPerBlock - 1) / kWarpsPerBlock;
    if (blocks > 0x7FFFFFFF) fail("quantize_x_fp8: {} × {} activations out of range", n_pad, cols);
    launch_pdl(quantize_x_fp8_group128, dim3(unsigned(blocks)), dim3(32 * kWarpsPerBlock), 0, stream, x, n_tok, n_pad,
               cols, q, s);
  }
  IMP_CUDA_CHECK_LAUNCH();
}

namespace detail {

void fp8_fill_f32(float* p, int64_t n, float v, cudaStream_t stream) {
  fill_kernel<<<grid_for(n, 256), 256, 0, stream>>>(p, n, v);
  IMP_CUDA_CHECK_LAUNCH();
}

void fp8_pad_tile_scales(const float* src, int64_t tile_rows, int64_t kb, int64_t kb_pad, float* dst,
                         cudaStream_t stream) {
  pad_tile_scales_kernel<<<grid_for(tile_rows * kb_pad, 256), 256, 0, stream>>>(src, tile_rows, kb, kb_pad, dst);
  IMP_CUDA_CHECK_LAUNCH();
}

void fp8_gemm_epilogue(const void* d, bool d_bf16, float* y, int64_t n_tok, int64_t rows, const float* row_scale,
                       float tensor_scale, const float* tok_scale, cudaStream_t stream) {
  epilogue_kernel<<<grid_for(n_tok * rows, 256), 256, 0, stream>>>(d, d_bf16, y, n_tok, rows, row_scale, tensor_scale,
                                                                   tok_scale);
  IMP_CUDA_CHECK_LAUNCH();
}

}  // namespace detail
}  // namespace imp::cuda
