// GEMV kernels for the 16-bit float weight formats BF16 and F16 (row = cols codes).
//   bf16_vec16 / f16_vec16 : 16-byte units of 8 weights; needs cols % 8 == 0 and 16-byte
//                            aligned data and x. BF16 decodes with a shift/mask (exact),
//                            F16 with the hardware half2 → float2 conversion (exact).
//   bf16_elem / f16_elem   : any shape (generic per-element path).
#include <cuda_fp16.h>

#include "backends/cuda/decode_float.cuh"
#include "backends/cuda/gemv_kernel.cuh"

namespace imp::cuda::detail {
namespace {

struct RowPtr {
  const uint8_t* data;
};

template <bool kBf16>
struct Half16Vec {
  static constexpr int kElemsPerUnit = 8;
  using Row = RowPtr;
  using Raw = uint4;
  struct XFrag {
    float4 a, b;
  };
  __device__ static Row row(const KernelArgs& a, int64_t r) { return {a.data + r * a.data_row_bytes}; }
  __device__ static Raw load(const Row& r, int u) { return load_stream16(r.data + 16 * int64_t(u)); }
  __device__ static XFrag load_x(const float* x, int u) { return {load_x4(x, 8 * int64_t(u)), load_x4(x, 8 * int64_t(u) + 4)}; }
  __device__ static float2 pair(uint32_t w) {
    if constexpr (kBf16) {
      return make_float2(__uint_as_float(w << 16), __uint_as_float(w & 0xFFFF0000u));
    } else {
      __half2 h;
      memcpy(&h, &w, sizeof h);
      return __half22float2(h);
    }
  }
  __device__ static float dot(const Row&, int, const Raw& w, const XFrag& x) {
    const float2 p0 = pair(w.x), p1 = pair(w.y), p2 = pair(w.z), p3 = pair(w.w);
    float s = p0.x * x.a.x;
    s = fmaf(p0.y, x.a.y, s);
    s = fmaf(p1.x, x.a.z, s);
    s = fmaf(p1.y, x.a.w, s);
    s = fmaf(p2.x, x.b.x, s);
    s = fmaf(p2.y, x.b.y, s);
    s = fmaf(p3.x, x.b.z, s);
    return fmaf(p3.y, x.b.w, s);
  }
  __device__ static float finish(const KernelArgs&, const Row&, float acc) { return acc; }
};

struct Bf16Elem {
  __device__ static float at(const KernelArgs& a, int64_t r, int64_t e) { return decode_bf16(a.data + r * a.data_row_bytes, e); }
};
struct F16Elem {
  __device__ static float at(const KernelArgs& a, int64_t r, int64_t e) { return decode_f16(a.data + r * a.data_row_bytes, e); }
};

KernelCheck check_vec16(const DeviceMatrix& w, const float* x, const float*) {
  return all_of({check_cols_multiple(w.cols, 8, "8 weights per 16-byte load"), check_aligned(w.data, 16, "weights"),
                 check_aligned(x, 16, "x")});
}
KernelCheck check_any(const DeviceMatrix& w, const float* x, const float*) {
  return all_of({check_aligned(w.data, 2, "weights"), check_aligned(x, 4, "x")});
}

constexpr WeightLayout N = WeightLayout::kNative;
const GemvKernel kKernels[] = {
    {"bf16_vec16", FormatId::BF16, N, check_vec16, launch_vec<Half16Vec<true>, 1, 4>},
    {"bf16_elem", FormatId::BF16, N, check_any, launch_elem<Bf16Elem>},
    {"f16_vec16", FormatId::F16, N, check_vec16, launch_vec<Half16Vec<false>, 1, 4>},
    {"f16_elem", FormatId::F16, N, check_any, launch_elem<F16Elem>},
};

}  // namespace

std::vector<GemvKernel> float_gemv_kernels() { return {std::begin(kKernels), std::end(kKernels)}; }

bool float_dequantize(const DeviceMatrix& w, float* out, cudaStream_t stream) {
  if (w.layout != N) return false;
  if (w.format == FormatId::BF16) {
    launch_dequant<Bf16Elem>(w, out, stream);
    return true;
  }
  if (w.format == FormatId::F16) {
    launch_dequant<F16Elem>(w, out, stream);
    return true;
  }
  return false;
}

}  // namespace imp::cuda::detail
