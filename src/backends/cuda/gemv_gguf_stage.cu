// GEMV kernels for the ggml block formats Q4_1, Q5_0, Q5_1, IQ4_NL, MXFP4, NVFP4 (ggml) and
// the K-quants Q2_K, Q3_K, Q5_K, IQ4_XS (layouts: decode_gguf_legacy.cuh, decode_kquant.cuh).
//   <fmt>_vec16 : the staged kernel (gemv_stage_kernel.cuh): 16-byte coalesced copies of a
//                 stage of 32·kChunks blocks into shared memory, one block per lane decoded
//                 from there. 32/64-element formats: 2 rows per warp, 2 chunks per stage;
//                 K-quants: 1 row, 1 chunk (a chunk is 2.7–5.6 KB). Needs 16-byte aligned
//                 weights and x and rows of a 16-byte multiple of bytes.
//   <fmt>_elem  : any shape/alignment, per-element bit-exact decode.
// dot_block: per sub-block Σ code·x in FP32 (FMA), times the sub-block's scale, minus
// min·Σx where the format has mins — the reference dequantization's algebra, rounded once
// per sub-block instead of once per weight (FP32 summation error only).
#include <string>

#include "backends/cuda/decode_gguf_legacy.cuh"
#include "backends/cuda/decode_kquant.cuh"
#include "backends/cuda/gemv_stage_kernel.cuh"

namespace imp::cuda::detail {
namespace {

// Σ_{j<16} lo(qs[j])·x[j] + hi(qs[j])·x[j+16] with a per-nibble map f.
template <class F>
__device__ __forceinline__ float dot_nibbles32(const uint8_t* qs, const float* x, F f) {
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float4 lo = x4(x, 4 * i), hi = x4(x, 16 + 4 * i);
    const float l[4] = {lo.x, lo.y, lo.z, lo.w}, h[4] = {hi.x, hi.y, hi.z, hi.w};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int j = 4 * i + k;
      s = fmaf(f(qs[j] & 0xF, j), l[k], s);
      s = fmaf(f(qs[j] >> 4, j + 16), h[k], s);
    }
  }
  return s;
}
__device__ __forceinline__ float sum32(const float* x) {
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const float4 v = x4(x, 4 * i);
    s += (v.x + v.y) + (v.z + v.w);
  }
  return s;
}
__device__ __forceinline__ float f16at(const uint8_t* p) { return f16_bits_to_f32(load_le16(p)); }

struct Q4_1Op {
  static constexpr int kBlockBytes = kQ4_1Bytes, kBlockElems = 32;
  __device__ static float dot_block(const uint8_t* b, const float* x) {
    const float qx = dot_nibbles32(b + 4, x, [](int q, int) { return float(q); });
    return f16at(b) * qx + f16at(b + 2) * sum32(x);
  }
};
struct Q5_0Op {
  static constexpr int kBlockBytes = kQ5_0Bytes, kBlockElems = 32;
  __device__ static float dot_block(const uint8_t* b, const float* x) {
    const uint32_t qh = load_le32(b + 2);
    return f16at(b) * dot_nibbles32(b + 6, x, [qh](int q, int j) { return float((q | int((qh >> j) & 1) << 4) - 16); });
  }
};
struct Q5_1Op {
  static constexpr int kBlockBytes = kQ5_1Bytes, kBlockElems = 32;
  __device__ static float dot_block(const uint8_t* b, const float* x) {
    const uint32_t qh = load_le32(b + 4);
    const float qx = dot_nibbles32(b + 8, x, [qh](int q, int j) { return float(q | int((qh >> j) & 1) << 4); });
    return f16at(b) * qx + f16at(b + 2) * sum32(x);
  }
};
struct IQ4_NLOp {
  static constexpr int kBlockBytes = kIQ4_NLBytes, kBlockElems = 32;
  __device__ static float dot_block(const uint8_t* b, const float* x) {
    return f16at(b) * dot_nibbles32(b + 2, x, [](int q, int) { return float(iq4nl_value(q)); });
  }
};
struct MXFP4Op {
  static constexpr int kBlockBytes = kMXFP4Bytes, kBlockElems = 32;
  __device__ static float dot_block(const uint8_t* b, const float* x) {
    return e8m0_half_ggml(b[0]) * dot_nibbles32(b + 1, x, [](int q, int) { return float(e2m1_times_two(uint32_t(q))); });
  }
};
struct NVFP4Op {
  static constexpr int kBlockBytes = kNVFP4Bytes, kBlockElems = 64;
  __device__ static float dot_block(const uint8_t* b, const float* x) {
    float r = 0.0f;
#pragma unroll
    for (int s = 0; s < 4; ++s) {
      const uint8_t* qs = b + 4 + 8 * s;
      const float* xs = x + 16 * s;
      float acc = 0.0f;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float4 lo = x4(xs, 4 * h), hi = x4(xs, 8 + 4 * h);
        const float l[4] = {lo.x, lo.y, lo.z, lo.w}, g[4] = {hi.x, hi.y, hi.z, hi.w};
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          const uint8_t q = qs[4 * h + k];
          acc = fmaf(float(e2m1_times_two(q & 0xF)), l[k], acc);
          acc = fmaf(float(e2m1_times_two(q >> 4)), g[k], acc);
        }
      }
      r = fmaf(ue4m3_half_ggml(b[s]), acc, r);
    }
    return r;
  }
};

// K-quants: a lane walks its 256-element block sub-block by sub-block.
struct Q2_KOp {
  static constexpr int kBlockBytes = kQ2_KBytes, kBlockElems = 256;
  __device__ static float dot_block(const uint8_t* b, const float* x) {
    const float d = f16at(b + 80), dmin = f16at(b + 82);
    float r = 0.0f;
#pragma unroll 2
    for (int t = 0; t < 16; ++t) {
      float qx = 0.0f, sx = 0.0f;
#pragma unroll
      for (int i = 0; i < 16; i += 4) {
        const float4 v = x4(x, 16 * t + i);
        const float xv[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          qx = fmaf(float(q2_k_code(b, 16 * t + i + k)), xv[k], qx);
          sx += xv[k];
        }
      }
      const uint8_t sc = b[t];
      r += (d * float(sc & 0xF)) * qx - (dmin * float(sc >> 4)) * sx;
    }
    return r;
  }
};
struct Q3_KOp {
  static constexpr int kBlockBytes = kQ3_KBytes, kBlockElems = 256;
  __device__ static float dot_block(const uint8_t* b, const float* x) {
    const float d = f16at(b + 108);
    float r = 0.0f;
#pragma unroll 2
    for (int t = 0; t < 16; ++t) {
      float qx = 0.0f;
#pragma unroll
      for (int i = 0; i < 16; i += 4) {
        const float4 v = x4(x, 16 * t + i);
        const float xv[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int k = 0; k < 4; ++k) qx = fmaf(float(q3_k_code(b, 16 * t + i + k)), xv[k], qx);
      }
      r = fmaf(d * float(q3_k_scale(b + 96, t) - 32), qx, r);
    }
    return r;
  }
};
struct Q5_KOp {
  static constexpr int kBlockBytes = kQ5_KBytes, kBlockElems = 256;
  __device__ static float dot_block(const uint8_t* b, const float* x) {
    const float d = f16at(b), dmin = f16at(b + 2);
    float r = 0.0f;
#pragma unroll 1
    for (int t = 0; t < 8; ++t) {
      float qx = 0.0f, sx = 0.0f;
#pragma unroll
      for (int i = 0; i < 32; i += 4) {
        const float4 v = x4(x, 32 * t + i);
        const float xv[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          qx = fmaf(float(q5_k_code(b, 32 * t + i + k)), xv[k], qx);
          sx += xv[k];
        }
      }
      int sc, m;
      q4_k_scale_min(b + 4, t, sc, m);
      r += (d * float(sc)) * qx - (dmin * float(m)) * sx;
    }
    return r;
  }
};
struct IQ4_XSOp {
  static constexpr int kBlockBytes = kIQ4_XSBytes, kBlockElems = 256;
  __device__ static float dot_block(const uint8_t* b, const float* x) {
    const float d = f16at(b);
    float r = 0.0f;
#pragma unroll 1
    for (int t = 0; t < 8; ++t) {
      const float qx = dot_nibbles32(b + 8 + 16 * t, x + 32 * t, [](int q, int) { return float(iq4nl_value(q)); });
      r = fmaf(d * float(iq4_xs_scale(b, t)), qx, r);
    }
    return r;
  }
};

template <float (*kDecode)(const uint8_t*, int64_t)>
struct NativeElem {
  __device__ static float at(const KernelArgs& a, int64_t r, int64_t e) { return kDecode(a.data + r * a.data_row_bytes, e); }
};

KernelCheck check_stage(const DeviceMatrix& w, const float* x, const float*) {
  const int64_t row_bytes = device_data_bytes(w.format, w.layout, 1, w.cols);
  KernelCheck rows{true, {}};
  if (row_bytes % 16 != 0) rows = {false, "a row of " + std::to_string(row_bytes) + " bytes is not a multiple of 16"};
  return all_of({rows, check_aligned(w.data, 16, "weights"), check_aligned(x, 16, "x")});
}
KernelCheck check_any(const DeviceMatrix&, const float* x, const float*) { return check_aligned(x, 4, "x"); }

constexpr WeightLayout N = WeightLayout::kNative;
const GemvKernel kKernels[] = {
    {"q4_1_vec16", FormatId::Q4_1, N, check_stage, launch_stage<Q4_1Op, 4, 2>},
    {"q4_1_elem", FormatId::Q4_1, N, check_any, launch_elem<NativeElem<decode_q4_1>>},
    {"q5_0_vec16", FormatId::Q5_0, N, check_stage, launch_stage<Q5_0Op, 4, 2>},
    {"q5_0_elem", FormatId::Q5_0, N, check_any, launch_elem<NativeElem<decode_q5_0>>},
    {"q5_1_vec16", FormatId::Q5_1, N, check_stage, launch_stage<Q5_1Op, 4, 2>},
    {"q5_1_elem", FormatId::Q5_1, N, check_any, launch_elem<NativeElem<decode_q5_1>>},
    {"iq4_nl_vec16", FormatId::IQ4_NL, N, check_stage, launch_stage<IQ4_NLOp, 4, 2>},
    {"iq4_nl_elem", FormatId::IQ4_NL, N, check_any, launch_elem<NativeElem<decode_iq4_nl>>},
    {"mxfp4_vec16", FormatId::MXFP4, N, check_stage, launch_stage<MXFP4Op, 4, 2>},
    {"mxfp4_elem", FormatId::MXFP4, N, check_any, launch_elem<NativeElem<decode_mxfp4>>},
    {"nvfp4_vec16", FormatId::NVFP4, N, check_stage, launch_stage<NVFP4Op, 2, 1>},
    {"nvfp4_elem", FormatId::NVFP4, N, check_any, launch_elem<NativeElem<decode_nvfp4>>},
    {"q2_k_vec16", FormatId::Q2_K, N, check_stage, launch_stage<Q2_KOp, 1, 1>},
    {"q2_k_elem", FormatId::Q2_K, N, check_any, launch_elem<NativeElem<decode_q2_k>>},
    {"q3_k_vec16", FormatId::Q3_K, N, check_stage, launch_stage<Q3_KOp, 1, 1>},
    {"q3_k_elem", FormatId::Q3_K, N, check_any, launch_elem<NativeElem<decode_q3_k>>},
    {"q5_k_vec16", FormatId::Q5_K, N, check_stage, launch_stage<Q5_KOp, 1, 1>},
    {"q5_k_elem", FormatId::Q5_K, N, check_any, launch_elem<NativeElem<decode_q5_k>>},
    {"iq4_xs_vec16", FormatId::IQ4_XS, N, check_stage, launch_stage<IQ4_XSOp, 1, 1>},
    {"iq4_xs_elem", FormatId::IQ4_XS, N, check_any, launch_elem<NativeElem<decode_iq4_xs>>},
};

}  // namespace

std::vector<GemvKernel> gguf_stage_gemv_kernels() { return {std::begin(kKernels), std::end(kKernels)}; }

bool gguf_stage_dequantize(const DeviceMatrix& w, float* out, cudaStream_t stream) {
  if (w.layout != N) return false;
  switch (w.format) {
    case FormatId::Q4_1: launch_dequant<NativeElem<decode_q4_1>>(w, out, stream); return true;
    case FormatId::Q5_0: launch_dequant<NativeElem<decode_q5_0>>(w, out, stream); return true;
    case FormatId::Q5_1: launch_dequant<NativeElem<decode_q5_1>>(w, out, stream); return true;
    case FormatId::IQ4_NL: launch_dequant<NativeElem<decode_iq4_nl>>(w, out, stream); return true;
    case FormatId::MXFP4: launch_dequant<NativeElem<decode_mxfp4>>(w, out, stream); return true;
    case FormatId::NVFP4: launch_dequant<NativeElem<decode_nvfp4>>(w, out, stream); return true;
    case FormatId::Q2_K: launch_dequant<NativeElem<decode_q2_k>>(w, out, stream); return true;
    case FormatId::Q3_K: launch_dequant<NativeElem<decode_q3_k>>(w, out, stream); return true;
    case FormatId::Q5_K: launch_dequant<NativeElem<decode_q5_k>>(w, out, stream); return true;
    case FormatId::IQ4_XS: launch_dequant<NativeElem<decode_iq4_xs>>(w, out, stream); return true;
    default: return false;
  }
}

}  // namespace imp::cuda::detail
