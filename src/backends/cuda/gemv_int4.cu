// GEMV kernels for INT4_GROUP (decode_int4.cuh has the layout): uint4 codes, an F16 scale
// and a uint8 zero point per group of `group` (a multiple of 32) elements of a row.
//   int4_group_vec16 : 16-byte units = 32 weights, all in one group (32 | group); two rows per
//                      warp. Codes become floats with the 2^23 magic-number trick;
//                      y = Σ_units s_g · (Σ q·x − z_g · Σ x)  (the reference's (q − z)·s, with
//                      the scale and zero applied once per unit). Needs 16-byte aligned data
//                      and x.
//   int4_group_elem  : any valid shape.
#include "backends/cuda/decode_int4.cuh"
#include "backends/cuda/gemv_kernel.cuh"

namespace imp::cuda::detail {
namespace {

constexpr float k2p23 = 8388608.0f;

struct Int4GroupVec {
  static constexpr int kElemsPerUnit = 32;
  struct Row {
    const uint8_t* data;
    const uint8_t* scales;
    const uint8_t* zeros;
    int units_per_group;
  };
  struct Raw {
    uint4 q;
    float s;
    float z;
  };
  struct XFrag {
    float4 v[8];
  };
  __device__ static Row row(const KernelArgs& a, int64_t r) {
    return {a.data + r * a.data_row_bytes, a.scales + r * a.scale_row_bytes, a.zeros + r * a.zero_row_bytes, a.group / 32};
  }
  __device__ static Raw load(const Row& r, int u) {
    const int g = u / r.units_per_group;
    return {load_stream16(r.data + 16 * int64_t(u)), f16_bits_to_f32(load_le16(r.scales + 2 * g)), float(r.zeros[g])};
  }
  __device__ static XFrag load_x(const float* x, int u) {
    XFrag f;
#pragma unroll
    for (int i = 0; i < 8; ++i) f.v[i] = load_x4(x, 32 * int64_t(u) + 4 * i);
    return f;
  }
  __device__ static float dot(const Row&, int, const Raw& w, const XFrag& x) {
    const uint32_t words[4] = {w.q.x, w.q.y, w.q.z, w.q.w};
    float qx = 0.0f, sx = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      // Word i holds elements 8i..8i+7: byte k = elements 8i+2k (low), 8i+2k+1 (high).
      const float4 a = x.v[2 * i], b = x.v[2 * i + 1];
      const float xv[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        qx = fmaf(u23_minus((words[i] >> (4 * k)) & 0xF, k2p23), xv[k], qx);
        sx += xv[k];
      }
    }
    return w.s * fmaf(-w.z, sx, qx);
  }
  __device__ static float finish(const KernelArgs&, const Row&, float acc) { return acc; }
};

struct Int4GroupElem {
  __device__ static float at(const KernelArgs& a, int64_t r, int64_t e) {
    return decode_int4_group(a.data + r * a.data_row_bytes, a.scales + r * a.scale_row_bytes,
                             a.zeros + r * a.zero_row_bytes, a.group, e);
  }
};

KernelCheck check_vec16(const DeviceMatrix& w, const float* x, const float*) {
  return all_of({check_cols_multiple(w.group, 32, "one group per 32-weight unit"), check_aligned(w.data, 16, "weights"),
                 check_aligned(x, 16, "x")});
}
KernelCheck check_any(const DeviceMatrix&, const float* x, const float*) { return check_aligned(x, 4, "x"); }

constexpr WeightLayout N = WeightLayout::kNative;
const GemvKernel kKernels[] = {
    {"int4_group_vec16", FormatId::INT4_GROUP, N, check_vec16, launch_vec<Int4GroupVec, 4, 2>},
    {"int4_group_elem", FormatId::INT4_GROUP, N, check_any, launch_elem<Int4GroupElem>},
};

}  // namespace

std::vector<GemvKernel> int4_gemv_kernels() { return {std::begin(kKernels), std::end(kKernels)}; }

bool int4_dequantize(const DeviceMatrix& w, float* out, cudaStream_t stream) {
  if (w.layout != N || w.format != FormatId::INT4_GROUP) return false;
  launch_dequant<Int4GroupElem>(w, out, stream);
  return true;
}

}  // namespace imp::cuda::detail
