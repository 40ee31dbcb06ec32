// Device pieces of the decode attention kernels (attention_decode_kernel.cu: a block per
// split, its warps sharing each 32-key tile; attention_decode_wide.cu: each warp its own
// tiles): a K/V row's elements decoded four at a time, the row scale, the L2 prologue.
// Internal header of those two files.
#pragma once

#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "backends/cuda/kv_codec.cuh"

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

// Keys whose rows a block prefetches into L2 before pdl_wait (the rest load from HBM).
constexpr int kPrefetchKeys = 256;

__device__ __forceinline__ void prefetch_l2(const void* p) {
  asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}

}  // namespace
}  // namespace imp::cuda
