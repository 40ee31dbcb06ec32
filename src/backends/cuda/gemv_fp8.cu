// GEMV kernels for FP8_E4M3_CHANNEL: E4M3 weights × one F32 scale per output row.
//   fp8_e4m3_channel_vec16 : 16-byte units of 16 weights, two rows per warp; decode with
//                            the sm_89+ cvt e4m3x2 → f16x2 instruction (exact, NaN kept),
//                            then f16x2 → f32x2; y = scale[r] · Σ fp8·x.
//                            Needs cols % 16 == 0, 16-byte aligned data and x.
//   fp8_e4m3_channel_elem  : any shape.
//   fp8_e4m3_tensor_vec16  : the same decode, y = tensor_scale · Σ fp8·x.
//   fp8_e4m3_block128_vec16: the same decode; a unit's 16 weights lie in one 128-column
//                            tile (16 | 128), so each unit's partial sum is multiplied by its
//                            tile's scale (read through L1: 8 units share it).
//                            Needs cols % 16 == 0, 16-byte aligned data and x.
//   fp8_e4m3_{tensor,block128}_elem : any shape.
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include "backends/cuda/decode_fp8.cuh"
#include "backends/cuda/gemv_kernel.cuh"

namespace imp::cuda::detail {
namespace {

__device__ __forceinline__ float2 e4m3x2_to_float2(uint32_t two_codes) {
  const __half2_raw hr = __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(two_codes & 0xFFFF), __NV_E4M3);
  return __half22float2(__half2(hr));
}

struct Fp8ChannelVec {
  static constexpr int kElemsPerUnit = 16;
  struct Row {
    const uint8_t* data;
    float scale;
  };
  using Raw = uint4;
  struct XFrag {
    float4 v[4];
  };
  __device__ static Row row(const KernelArgs& a, int64_t r) {
    return {a.data + r * a.data_row_bytes, __ldg(reinterpret_cast<const float*>(a.scales) + r)};
  }
  __device__ static Raw load(const Row& r, int u) { return load_stream16(r.data + 16 * int64_t(u)); }
  __device__ static XFrag load_x(const float* x, int u) {
    XFrag f;
#pragma unroll
    for (int i = 0; i < 4; ++i) f.v[i] = load_x4(x, 16 * int64_t(u) + 4 * i);
    return f;
  }
  __device__ static float dot(const Row&, int, const Raw& w, const XFrag& x) {
    const uint32_t words[4] = {w.x, w.y, w.z, w.w};
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 lo = e4m3x2_to_float2(words[i]);
      const float2 hi = e4m3x2_to_float2(words[i] >> 16);
      s = fmaf(lo.x, x.v[i].x, s);
      s = fmaf(lo.y, x.v[i].y, s);
      s = fmaf(hi.x, x.v[i].z, s);
      s = fmaf(hi.y, x.v[i].w, s);
    }
    return s;
  }
  __device__ static float finish(const KernelArgs&, const Row& r, float acc) { return acc * r.scale; }
};

struct Fp8TensorVec : Fp8ChannelVec {
  __device__ static Row row(const KernelArgs& a, int64_t r) { return {a.data + r * a.data_row_bytes, a.tensor_scale}; }
};

struct Fp8Block128Vec {
  static constexpr int kElemsPerUnit = 16;
  struct Row {
    const uint8_t* data;
    const float* tile_scales;  // the scales of this row's tile row
  };
  using Raw = uint4;
  using XFrag = Fp8ChannelVec::XFrag;
  __device__ static Row row(const KernelArgs& a, int64_t r) {
    return {a.data + r * a.data_row_bytes, reinterpret_cast<const float*>(a.scales + (r / 128) * a.scale_row_bytes)};
  }
  __device__ static Raw load(const Row& r, int u) { return load_stream16(r.data + 16 * int64_t(u)); }
  __device__ static XFrag load_x(const float* x, int u) { return Fp8ChannelVec::load_x(x, u); }
  __device__ static float dot(const Row& r, int u, const Raw& w, const XFrag& x) {
    return Fp8ChannelVec::dot(Fp8ChannelVec::Row{r.data, 1.0f}, u, w, x) * __ldg(r.tile_scales + u / 8);
  }
  __device__ static float finish(const KernelArgs&, const Row&, float acc) { return acc; }
};

struct Fp8TensorElem {
  __device__ static float at(const KernelArgs& a, int64_t r, int64_t e) {
    return decode_fp8_e4m3_tensor(a.data + r * a.data_row_bytes, a.tensor_scale, e);
  }
};
struct Fp8Block128Elem {
  __device__ static float at(const KernelArgs& a, int64_t r, int64_t e) {
    return decode_fp8_e4m3_block128(a.data + r * a.data_row_bytes, a.scales + (r / 128) * a.scale_row_bytes, e);
  }
};

struct Fp8ChannelElem {
  __device__ static float at(const KernelArgs& a, int64_t r, int64_t e) {
    return decode_fp8_e4m3_channel(a.data + r * a.data_row_bytes, load_le_f32(a.scales + 4 * r), e);
  }
};

KernelCheck check_vec16(const DeviceMatrix& w, const float* x, const float*) {
  return all_of({check_cols_multiple(w.cols, 16, "16 weights per 16-byte load"), check_aligned(w.data, 16, "weights"),
                 check_aligned(w.scales, 4, "row scales"), check_aligned(x, 16, "x")});
}
KernelCheck check_tensor_vec16(const DeviceMatrix& w, const float* x, const float*) {
  return all_of({check_cols_multiple(w.cols, 16, "16 weights per 16-byte load"), check_aligned(w.data, 16, "weights"),
                 check_aligned(x, 16, "x")});
}
KernelCheck check_block128_vec16(const DeviceMatrix& w, const float* x, const float*) {
  return all_of({check_cols_multiple(w.cols, 16, "16 weights per 16-byte load"), check_aligned(w.data, 16, "weights"),
                 check_aligned(w.scales, 4, "tile scales"), check_aligned(x, 16, "x")});
}
KernelCheck check_any(const DeviceMatrix&, const float* x, const float*) { return check_aligned(x, 4, "x"); }

constexpr WeightLayout N = WeightLayout::kNative;
const GemvKernel kKernels[] = {
    {"fp8_e4m3_channel_vec16", FormatId::FP8_E4M3_CHANNEL, N, check_vec16, launch_vec<Fp8ChannelVec, 4, 2>},
    {"fp8_e4m3_channel_elem", FormatId::FP8_E4M3_CHANNEL, N, check_any, launch_elem<Fp8ChannelElem>},
    {"fp8_e4m3_tensor_vec16", FormatId::FP8_E4M3_TENSOR, N, check_tensor_vec16, launch_vec<Fp8TensorVec, 4, 2>},
    {"fp8_e4m3_tensor_elem", FormatId::FP8_E4M3_TENSOR, N, check_any, launch_elem<Fp8TensorElem>},
    {"fp8_e4m3_block128_vec16", FormatId::FP8_E4M3_BLOCK128, N, check_block128_vec16, launch_vec<Fp8Block128Vec, 4, 2>},
    {"fp8_e4m3_block128_elem", FormatId::FP8_E4M3_BLOCK128, N, check_any, launch_elem<Fp8Block128Elem>},
};

}  // namespace

std::vector<GemvKernel> fp8_gemv_kernels() { return {std::begin(kKernels), std::end(kKernels)}; }

bool fp8_dequantize(const DeviceMatrix& w, float* out, cudaStream_t stream) {
  if (w.layout != N) return false;
  switch (w.format) {
    case FormatId::FP8_E4M3_CHANNEL: launch_dequant<Fp8ChannelElem>(w, out, stream); return true;
    case FormatId::FP8_E4M3_TENSOR: launch_dequant<Fp8TensorElem>(w, out, stream); return true;
    case FormatId::FP8_E4M3_BLOCK128: launch_dequant<Fp8Block128Elem>(w, out, stream); return true;
    default: return false;
  }
}

}  // namespace imp::cuda::detail
