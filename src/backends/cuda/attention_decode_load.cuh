// Device pieces of the decode attention kernels (attention_decode_kernel.cu: a block per
// split, its warps sharing each 32-key tile; attention_decode_wide.cu: each warp its own
// tiles): a K/V row's elements decoded four at a time, the row scale, the L2 prologue.
// Internal header of those two files.
#pragma once

#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>
#include <type_traits>

#include "backends/cuda/attention_decode_kernel.h"
#include "backends/cuda/check.h"
#include "backends/cuda/forward_kernels.h"
#include "backends/cuda/kv_codec.cuh"
#include "backends/cuda/pdl.cuh"
#include "common/error.h"

namespace imp::cuda {
namespace {

// The hardware conversions: exact for every finite f16 / E4M3 value (both widen), so the
// same values as kvc::f16_to_f32 / kvc::e4m3_to_f32 in a few instructions instead of their
// branches. Two elements each, the lower bits first.
__device__ __forceinline__ float2 f16x2_to_f32x2(uint32_t v) {
  __half2_raw r;
  r.x = uint16_t(v);
  r.y = uint16_t(v >> 16);
  return __half22float2(__half2(r));
}
__device__ __forceinline__ float2 e4m3x2_to_f32x2(uint32_t v) {
  return __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(v & 0xFFFFu), __NV_E4M3)));
}

template <int D>
__device__ __forceinline__ float row_scale_of(const uint8_t* row) {
  return (D == kvc::kFP8 || D == kvc::kINT8 || D == kvc::kNVFP4) ? kvc::load_f32(row) : 1.0f;
}

// Elements e .. e+3 (e % 4 == 0) of a row, decode_elem's values bit for bit; zeros past hd.
// vec: hd % 4 == 0, so the vector loads are aligned.
template <int D>
__device__ __forceinline__ float4 load_quad(const uint8_t* row, int e, int hd, float scale, bool vec) {
  float o[4];
  if (D == kvc::kINT4) {  // hd even, groups of 32: a quad lies in one group
    const uint8_t* codes = row + 2 * kvc::int4_groups(hd) + e / 2;
    float d = f16x2_to_f32x2(kvc::load_u16(row + 2 * (e / kvc::kInt4Group))).x;
    if (!(d > 0.0f)) d = 1.0f;
    const uint32_t c = uint32_t(__ldg(codes)) | (e + 2 < hd ? uint32_t(__ldg(codes + 1)) << 8 : 0u);
#pragma unroll
    for (int i = 0; i < 4; ++i) o[i] = e + i < hd ? __fmul_rn(float(int((c >> (4 * i)) & 0xF) - 8), d) : 0.0f;
  } else if (D == kvc::kNVFP4) {  // hd % 16 == 0
    const uint8_t* codes = row + 4 + hd / kvc::kNvfp4Block + e / 2;
    const float d = __fmul_rn(e4m3x2_to_f32x2(__ldg(row + 4 + e / kvc::kNvfp4Block)).x, scale);
    const uint32_t c = uint32_t(__ldg(codes)) | (uint32_t(__ldg(codes + 1)) << 8);
#pragma unroll
    for (int i = 0; i < 4; ++i) o[i] = __fmul_rn(kvc::e2m1_to_f32((c >> (4 * i)) & 0xF), d);
  } else if (vec && D == kvc::kF32) {
    return __ldg(reinterpret_cast<const float4*>(row + 4 * e));
  } else if (vec && D == kvc::kF16) {
    const uint2 v = __ldg(reinterpret_cast<const uint2*>(row + 2 * e));
    const float2 a = f16x2_to_f32x2(v.x), b = f16x2_to_f32x2(v.y);
    return make_float4(a.x, a.y, b.x, b.y);
  } else if (vec && D == kvc::kBF16) {
    const uint2 v = __ldg(reinterpret_cast<const uint2*>(row + 2 * e));
    return make_float4(__uint_as_float(v.x << 16), __uint_as_float(v.x & 0xFFFF0000u), __uint_as_float(v.y << 16),
                       __uint_as_float(v.y & 0xFFFF0000u));
  } else if (vec && D == kvc::kFP8) {
    const uint32_t v = __ldg(reinterpret_cast<const unsigned*>(row + 4 + e));
    const float2 a = e4m3x2_to_f32x2(v), b = e4m3x2_to_f32x2(v >> 16);
    return make_float4(__fmul_rn(a.x, scale), __fmul_rn(a.y, scale), __fmul_rn(b.x, scale), __fmul_rn(b.y, scale));
  } else if (vec && D == kvc::kINT8) {
    const uint32_t v = __ldg(reinterpret_cast<const unsigned*>(row + 4 + e));
#pragma unroll
    for (int i = 0; i < 4; ++i) o[i] = __fmul_rn(float(int8_t(uint8_t(v >> (8 * i)))), scale);
  } else {  // a head_dim that is not a multiple of 4: element by element
#pragma unroll
    for (int i = 0; i < 4; ++i) o[i] = e + i < hd ? kvc::decode_elem(D, row, e + i, hd, scale) : 0.0f;
  }
  return make_float4(o[0], o[1], o[2], o[3]);
}

// A block's work in either kernel, from its grid position (n_kv_head · subgroups, n_split,
// n_tok): kv head g, query heads h0 … h0 + n_g − 1 (a subgroup of ≤ group of the GQA group),
// split s of n_split, query t, and that split's keys j0 … j1 − 1 of the causal (windowed)
// range of position pos0 + t. StepParams is written before the step's first kernel.
struct DecodeBlock {
  int g, h0, n_g, s, n_split, t, j0, j1;
  __device__ DecodeBlock(int n_head, const KvView& kv, int window, const StepParams* step, int group) {
    const int G = n_head / kv.n_kv_head, n_sub = (G + group - 1) / group;
    const int sub = int(blockIdx.x) % n_sub;
    g = int(blockIdx.x) / n_sub;
    h0 = g * G + sub * group;
    n_g = min(group, G - sub * group);
    s = int(blockIdx.y), n_split = int(gridDim.y), t = int(blockIdx.z);
    const int pos = step->pos0 + t;
    const int lo = window > 0 ? max(0, pos + 1 - window) : 0;
    const int chunk = (pos - lo + 1 + n_split - 1) / n_split;
    j0 = lo + s * chunk;
    j1 = min(pos + 1, j0 + chunk);
  }
};

__device__ __forceinline__ void prefetch_l2(const void* p) {
  asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}

// The L2 prologue: rows 2i (K) and 2i + 1 (V) of keys j0 … j0 + n_keys − 1 of kv head g, one
// 128-byte line at a time, threads tid, tid + n_threads, … of the block. The block tables are
// written before the step and constant during it, so this may run before pdl_wait.
__device__ __forceinline__ void prefetch_rows_l2(const KvView& kv, int g, int j0, int n_keys, int tid, int n_threads) {
  for (int i = tid; i < 2 * n_keys; i += n_threads) {
    const int j = j0 + (i >> 1);
    const uint8_t* row = (i & 1) ? kvc::kv_row_ptr(kv.v_pool, kv.v_table, kv.block_tokens, kv.n_kv_head, kv.row_bytes, j, g)
                                 : kvc::kv_row_ptr(kv.k_pool, kv.k_table, kv.block_tokens, kv.n_kv_head, kv.row_bytes, j, g);
    for (int b = 0; b < kv.row_bytes; b += 128) prefetch_l2(row + b);
    prefetch_l2(row + kv.row_bytes - 1);
  }
}

// f(std::integral_constant<int, D>{}) for the run-time KV type: one kernel instantiation per
// type (attention_decode_kernel.h says why).
template <class F>
void dispatch_kv_type(int32_t dtype, F&& f) {
  switch (dtype) {
    case kvc::kF32: return f(std::integral_constant<int, kvc::kF32>{});
    case kvc::kF16: return f(std::integral_constant<int, kvc::kF16>{});
    case kvc::kBF16: return f(std::integral_constant<int, kvc::kBF16>{});
    case kvc::kFP8: return f(std::integral_constant<int, kvc::kFP8>{});
    case kvc::kINT8: return f(std::integral_constant<int, kvc::kINT8>{});
    case kvc::kINT4: return f(std::integral_constant<int, kvc::kINT4>{});
    case kvc::kNVFP4: return f(std::integral_constant<int, kvc::kNVFP4>{});
    default: ::imp::fail("CUDA attention: KV type {} has no decode kernel", dtype);
  }
}

// Launches Kernels::fn<D, kCols>() on grid (n_kv_head · subgroups of `group` query heads,
// n_split, n_tok) with `threads` threads and Smem{quads}.bytes() of shared memory — D the KV
// type, kCols 1 for head_dim ≤ 128 else 2 (the output columns a thread owns) — with
// programmatic dependent launch; each instantiation's shared-memory limit is raised to
// head_dim 256's on its first launch.
template <class Kernels, class Smem>
void launch_decode_attention(int threads, int group, const float* q, int64_t n_tok, int64_t n_head, const KvView& kv,
                             int window, float scale, int32_t n_split, float* partials, float* out,
                             const StepParams* step, cudaStream_t stream, const L2Ranges& next_weights) {
  const int G = int(n_head / kv.n_kv_head), n_sub = (G + group - 1) / group;
  const dim3 grid(unsigned(kv.n_kv_head * n_sub), unsigned(n_split), unsigned(n_tok));
  const size_t smem = Smem{(kv.head_dim + 3) / 4}.bytes();
  auto go = [&](auto d, auto cols) {
    auto* kernel = Kernels::template fn<decltype(d)::value, decltype(cols)::value>();
    static const bool attr = [&] {  // one per (type, columns)
      IMP_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(Smem{64}.bytes())));
      return true;
    }();
    (void)attr;
    launch_pdl(kernel, grid, dim3(unsigned(threads)), smem, stream, q, int(n_head), kv, window, scale, partials, out,
               step, attention_prefetch_enabled(), next_weights);
  };
  dispatch_kv_type(kv.dtype, [&](auto d) {
    if (kv.head_dim <= 128) {
      go(d, std::integral_constant<int, 1>{});
    } else {
      go(d, std::integral_constant<int, 2>{});
    }
  });
}

}  // namespace
}  // namespace imp::cuda
