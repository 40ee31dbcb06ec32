// GEMV kernels for NVFP4_CKPT (decode_fp4.cuh has the layout): E2M1 pairs, one E4M3 scale
// per 16 weights, per-tensor multiplier G.
//   nvfp4_ckpt_vec16 : 16-byte units = 32 weights = 2 scale bytes, two rows per warp.
//                      An E2M1 code s|e e|m is rewritten as the E4M3 byte s|0 0 e e|m 0 0,
//                      whose value is exactly E2M1·2^-6 (normal and subnormal alike), so
//                      the hardware cvt e4m3x2 → f16x2 decodes two weights per
//                      instruction; the 2^6 is folded into the block scale:
//                      y = G · Σ_blocks (64·S_b) · Σ_{16} (E2M1·2^-6)·x   (all exact but the sums).
//                      Needs cols % 32 == 0, 16-byte aligned data and x, 2-byte aligned scales.
//   nvfp4_ckpt_elem  : any valid shape (cols % 16 == 0).
//   mxfp4_ckpt_vec16 : the same E2M1 decode; a 16-byte unit = 32 weights = one E8M0 scale
//                      byte, y = Σ_units (64·2^(E−127)) · Σ_{32} (E2M1·2^-6)·x.
//                      Needs cols % 32 == 0 (always), 16-byte aligned data and x.
//   mxfp4_ckpt_elem  : any valid shape.
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include "backends/cuda/decode_fp4.cuh"
#include "backends/cuda/gemv_kernel.cuh"

namespace imp::cuda::detail {
namespace {

__device__ __forceinline__ float2 e4m3x2_to_float2(uint32_t two_codes) {
  const __half2_raw hr = __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(two_codes & 0xFFFF), __NV_E4M3);
  return __half22float2(__half2(hr));
}

// Four E2M1 codes, one in the low nibble of each byte → four E4M3 bytes of E2M1·2^-6.
__device__ __forceinline__ uint32_t e2m1x4_to_e4m3x4(uint32_t nibbles) {
  return ((nibbles & 0x08080808u) << 4) | ((nibbles & 0x07070707u) << 2);
}

struct Nvfp4CkptVec {
  static constexpr int kElemsPerUnit = 32;
  struct Row {
    const uint8_t* data;
    const uint8_t* scales;
  };
  struct Raw {
    uint4 q;
    uint32_t s2;  // the unit's two E4M3 block scales
  };
  struct XFrag {
    float4 v[8];
  };
  __device__ static Row row(const KernelArgs& a, int64_t r) {
    return {a.data + r * a.data_row_bytes, a.scales + r * a.scale_row_bytes};
  }
  __device__ static Raw load(const Row& r, int u) {
    return {load_stream16(r.data + 16 * int64_t(u)), __ldcs(reinterpret_cast<const unsigned short*>(r.scales) + u)};
  }
  __device__ static XFrag load_x(const float* x, int u) {
    XFrag f;
#pragma unroll
    for (int i = 0; i < 8; ++i) f.v[i] = load_x4(x, 32 * int64_t(u) + 4 * i);
    return f;
  }
  // 8 weights of one word: bytes k = 0..3 hold elements 2k (low nibble) and 2k+1 (high).
  __device__ static float dot8(uint32_t w, const float4& xa, const float4& xb, float s) {
    const uint32_t ev = e2m1x4_to_e4m3x4(w);       // elements 0, 2, 4, 6
    const uint32_t od = e2m1x4_to_e4m3x4(w >> 4);  // elements 1, 3, 5, 7
    const float2 e01 = e4m3x2_to_float2(ev), e23 = e4m3x2_to_float2(ev >> 16);
    const float2 o01 = e4m3x2_to_float2(od), o23 = e4m3x2_to_float2(od >> 16);
    s = fmaf(e01.x, xa.x, s);
    s = fmaf(o01.x, xa.y, s);
    s = fmaf(e01.y, xa.z, s);
    s = fmaf(o01.y, xa.w, s);
    s = fmaf(e23.x, xb.x, s);
    s = fmaf(o23.x, xb.y, s);
    s = fmaf(e23.y, xb.z, s);
    return fmaf(o23.y, xb.w, s);
  }
  __device__ static float dot(const Row&, int, const Raw& w, const XFrag& x) {
    const float2 sc = e4m3x2_to_float2(w.s2);
    const float b0 = dot8(w.q.y, x.v[2], x.v[3], dot8(w.q.x, x.v[0], x.v[1], 0.0f));
    const float b1 = dot8(w.q.w, x.v[6], x.v[7], dot8(w.q.z, x.v[4], x.v[5], 0.0f));
    return fmaf(b0, sc.x * 64.0f, b1 * (sc.y * 64.0f));
  }
  __device__ static float finish(const KernelArgs& a, const Row&, float acc) { return acc * a.tensor_scale; }
};

struct Mxfp4CkptVec {
  static constexpr int kElemsPerUnit = 32;
  using Row = Nvfp4CkptVec::Row;
  struct Raw {
    uint4 q;
    uint32_t e;  // the unit's E8M0 scale byte
  };
  using XFrag = Nvfp4CkptVec::XFrag;
  __device__ static Row row(const KernelArgs& a, int64_t r) { return Nvfp4CkptVec::row(a, r); }
  __device__ static Raw load(const Row& r, int u) { return {load_stream16(r.data + 16 * int64_t(u)), __ldcs(r.scales + u)}; }
  __device__ static XFrag load_x(const float* x, int u) { return Nvfp4CkptVec::load_x(x, u); }
  __device__ static float dot(const Row&, int, const Raw& w, const XFrag& x) {
    float s = Nvfp4CkptVec::dot8(w.q.x, x.v[0], x.v[1], 0.0f);
    s = Nvfp4CkptVec::dot8(w.q.y, x.v[2], x.v[3], s);
    s = Nvfp4CkptVec::dot8(w.q.z, x.v[4], x.v[5], s);
    s = Nvfp4CkptVec::dot8(w.q.w, x.v[6], x.v[7], s);
    return s * (e8m0_value(uint8_t(w.e)) * 64.0f);
  }
  __device__ static float finish(const KernelArgs&, const Row&, float acc) { return acc; }
};

struct Mxfp4CkptElem {
  __device__ static float at(const KernelArgs& a, int64_t r, int64_t e) {
    return decode_mxfp4_ckpt(a.data + r * a.data_row_bytes, a.scales + r * a.scale_row_bytes, e);
  }
};

struct Nvfp4CkptElem {
  __device__ static float at(const KernelArgs& a, int64_t r, int64_t e) {
    return decode_nvfp4_ckpt(a.data + r * a.data_row_bytes, a.scales + r * a.scale_row_bytes, a.tensor_scale, e);
  }
};

KernelCheck check_vec16(const DeviceMatrix& w, const float* x, const float*) {
  return all_of({check_cols_multiple(w.cols, 32, "32 weights per 16-byte load"), check_aligned(w.data, 16, "weights"),
                 check_aligned(w.scales, 2, "block scales"), check_aligned(x, 16, "x")});
}
KernelCheck check_mx_vec16(const DeviceMatrix& w, const float* x, const float*) {
  return all_of({check_aligned(w.data, 16, "weights"), check_aligned(x, 16, "x")});
}
KernelCheck check_any(const DeviceMatrix&, const float* x, const float*) { return check_aligned(x, 4, "x"); }

constexpr WeightLayout N = WeightLayout::kNative;
const GemvKernel kKernels[] = {
    {"nvfp4_ckpt_vec16", FormatId::NVFP4_CKPT, N, check_vec16, launch_vec<Nvfp4CkptVec, 4, 2>},
    {"nvfp4_ckpt_elem", FormatId::NVFP4_CKPT, N, check_any, launch_elem<Nvfp4CkptElem>},
    {"mxfp4_ckpt_vec16", FormatId::MXFP4_CKPT, N, check_mx_vec16, launch_vec<Mxfp4CkptVec, 4, 2>},
    {"mxfp4_ckpt_elem", FormatId::MXFP4_CKPT, N, check_any, launch_elem<Mxfp4CkptElem>},
};

}  // namespace

std::vector<GemvKernel> fp4_gemv_kernels() { return {std::begin(kKernels), std::end(kKernels)}; }

bool fp4_dequantize(const DeviceMatrix& w, float* out, cudaStream_t stream) {
  if (w.layout != N) return false;
  if (w.format == FormatId::NVFP4_CKPT) {
    launch_dequant<Nvfp4CkptElem>(w, out, stream);
    return true;
  }
  if (w.format == FormatId::MXFP4_CKPT) {
    launch_dequant<Mxfp4CkptElem>(w, out, stream);
    return true;
  }
  return false;
}

}  // namespace imp::cuda::detail
