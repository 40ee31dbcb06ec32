// GEMV kernels and the split repack for the GGUF block formats Q4_0, Q8_0, Q4_K, Q6_K
// (layouts: decode_gguf.cuh). Fast kernels need 16-byte aligned blocks: Q4_K blocks are
// 144 B and run natively; Q4_0 (18 B), Q8_0 (34 B) and Q6_K (210 B) blocks are not
// 16-byte multiples, so their fast kernels run on the kSplit layout made by
// repack_split() (the planner repacks once at load); the native layout runs the generic
// per-element kernel.
//   q4_0_split_vec16 : unit = one block's 16 qs bytes (32 weights) + its f16 d; 2 rows/warp.
//   q8_0_split_vec16 : unit = half a block (16 int8) + the block's d; 2 rows/warp.
//   q4_k_vec16       : unit = one 16-byte qs chunk (32 weights of two sub-blocks) + the
//                      block's 16-byte header (d, dmin, scales), read through L1; 2 rows/warp.
//   q6_k_split_vec16 : unit = one 16-byte ql chunk (32 weights of two sub-blocks) + its
//                      16-byte qh chunk + the 16 scales + d; 2 rows/warp.
//   <fmt>_elem, <fmt>_split_elem : any shape/alignment, per-element decode.
// Integer codes become floats with the 2^23 magic-number trick (gemv_kernel.cuh).
#include <cuda_fp16.h>

#include "backends/cuda/decode_gguf.cuh"
#include "backends/cuda/gemv_kernel.cuh"
#include "formats/traits.h"

namespace imp::cuda::detail {
namespace {

constexpr float k2p23 = 8388608.0f;

__device__ __forceinline__ float half_bits(uint32_t h) { return __half2float(__ushort_as_half((unsigned short)(h & 0xFFFF))); }

struct SplitRow {
  const uint8_t* payload;
  const uint8_t* d;
};
__device__ __forceinline__ SplitRow split_row(const KernelArgs& a, int64_t r) {
  return {a.data + r * a.data_row_bytes, a.scales + r * a.scale_row_bytes};
}
__device__ __forceinline__ float load_d(const uint8_t* d_plane, int64_t block) {
  return half_bits(__ldcs(reinterpret_cast<const unsigned short*>(d_plane) + block));
}

struct X16 {
  float4 v[4];
};
__device__ __forceinline__ X16 load_x16(const float* x, int64_t i) {
  return {{load_x4(x, i), load_x4(x, i + 4), load_x4(x, i + 8), load_x4(x, i + 12)}};
}
__device__ __forceinline__ float xat(const X16& x, int i) {
  const float4& v = x.v[i / 4];
  return (i & 3) == 0 ? v.x : (i & 3) == 1 ? v.y : (i & 3) == 2 ? v.z : v.w;
}
__device__ __forceinline__ uint32_t word(const uint4& v, int i) { return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w; }

// ---- Q4_0 split ---------------------------------------------------------------------------
struct Q4_0SplitVec {
  static constexpr int kElemsPerUnit = 32;
  using Row = SplitRow;
  struct Raw {
    uint4 qs;
    float d;
  };
  struct XFrag {
    X16 lo, hi;  // elements 0..15 (low nibbles), 16..31 (high nibbles)
  };
  __device__ static Row row(const KernelArgs& a, int64_t r) { return split_row(a, r); }
  __device__ static Raw load(const Row& r, int u) { return {load_stream16(r.payload + 16 * int64_t(u)), load_d(r.d, u)}; }
  __device__ static XFrag load_x(const float* x, int u) { return {load_x16(x, 32 * int64_t(u)), load_x16(x, 32 * int64_t(u) + 16)}; }
  __device__ static float dot(const Row&, int, const Raw& w, const XFrag& x) {
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const uint32_t b = word(w.qs, i / 4) >> (8 * (i % 4));
      s = fmaf(u23_minus(b & 0xF, k2p23 + 8.0f), xat(x.lo, i), s);
      s = fmaf(u23_minus((b >> 4) & 0xF, k2p23 + 8.0f), xat(x.hi, i), s);
    }
    return s * w.d;
  }
  __device__ static float finish(const KernelArgs&, const Row&, float acc) { return acc; }
};

// ---- Q8_0 split ---------------------------------------------------------------------------
struct Q8_0SplitVec {
  static constexpr int kElemsPerUnit = 16;
  using Row = SplitRow;
  struct Raw {
    uint4 qs;
    float d;
  };
  using XFrag = X16;
  __device__ static Row row(const KernelArgs& a, int64_t r) { return split_row(a, r); }
  __device__ static Raw load(const Row& r, int u) { return {load_stream16(r.payload + 16 * int64_t(u)), load_d(r.d, u / 2)}; }
  __device__ static XFrag load_x(const float* x, int u) { return load_x16(x, 16 * int64_t(u)); }
  __device__ static float dot(const Row&, int, const Raw& w, const XFrag& x) {
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const uint32_t b = (word(w.qs, i / 4) >> (8 * (i % 4))) & 0xFF;
      s = fmaf(u23_minus(b ^ 0x80, k2p23 + 128.0f), xat(x, i), s);  // int8 = (b ^ 0x80) − 128
    }
    return s * w.d;
  }
  __device__ static float finish(const KernelArgs&, const Row&, float acc) { return acc; }
};

// ---- Q4_K native --------------------------------------------------------------------------
// Unit u: block b = u/8, chunk q = u%8 of qs: run c = q/2 (sub-blocks 2c low nibbles,
// 2c+1 high nibbles), byte offset l0 = 16·(q%2) inside the 32-byte run.
struct Q4_KVec {
  static constexpr int kElemsPerUnit = 32;
  struct Row {
    const uint8_t* data;
  };
  struct Raw {
    uint4 hdr;  // d, dmin, scales[12]
    uint4 qs;
  };
  struct XFrag {
    X16 lo, hi;
  };
  __device__ static Row row(const KernelArgs& a, int64_t r) { return {a.data + r * a.data_row_bytes}; }
  __device__ static Raw load(const Row& r, int u) {
    const uint8_t* blk = r.data + int64_t(u / 8) * kQ4_KBytes;
    // The header is shared by the 8 lanes of a block: one L1 line, read from HBM once.
    return {__ldg(reinterpret_cast<const uint4*>(blk)), load_stream16(blk + 16 + 16 * (u % 8))};
  }
  __device__ static XFrag load_x(const float* x, int u) {
    const int64_t base = 256 * int64_t(u / 8) + 64 * ((u % 8) / 2) + 16 * (u % 2);
    return {load_x16(x, base), load_x16(x, base + 32)};
  }
  __device__ static float dot(const Row&, int u, const Raw& w, const XFrag& x) {
    // 12 scale bytes s[0..11] = header bytes 4..15.
    uint8_t s[12];
#pragma unroll
    for (int i = 0; i < 12; ++i) s[i] = uint8_t(word(w.hdr, 1 + i / 4) >> (8 * (i % 4)));
    const int c = (u % 8) / 2;
    int sc_lo, m_lo, sc_hi, m_hi;
    // Sub-blocks 2c and 2c+1 with c a run-time value: expand all four cases so s[] stays
    // in registers (no local-memory indexing).
    switch (c) {
      case 0: q4_k_scale_min(s, 0, sc_lo, m_lo); q4_k_scale_min(s, 1, sc_hi, m_hi); break;
      case 1: q4_k_scale_min(s, 2, sc_lo, m_lo); q4_k_scale_min(s, 3, sc_hi, m_hi); break;
      case 2: q4_k_scale_min(s, 4, sc_lo, m_lo); q4_k_scale_min(s, 5, sc_hi, m_hi); break;
      default: q4_k_scale_min(s, 6, sc_lo, m_lo); q4_k_scale_min(s, 7, sc_hi, m_hi); break;
    }
    float qx_lo = 0.0f, qx_hi = 0.0f, x_lo = 0.0f, x_hi = 0.0f;
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const uint32_t b = word(w.qs, i / 4) >> (8 * (i % 4));
      const float xl = xat(x.lo, i), xh = xat(x.hi, i);
      qx_lo = fmaf(u23_minus(b & 0xF, k2p23), xl, qx_lo);
      qx_hi = fmaf(u23_minus((b >> 4) & 0xF, k2p23), xh, qx_hi);
      x_lo += xl;
      x_hi += xh;
    }
    const float d = half_bits(w.hdr.x), dmin = half_bits(w.hdr.x >> 16);
    const float r = (d * float(sc_lo)) * qx_lo - (dmin * float(m_lo)) * x_lo;
    return r + ((d * float(sc_hi)) * qx_hi - (dmin * float(m_hi)) * x_hi);
  }
  __device__ static float finish(const KernelArgs&, const Row&, float acc) { return acc; }
};

// ---- Q6_K split ---------------------------------------------------------------------------
// Unit u: block b = u/8, ql chunk k = u%8: h = k/4, g_lo = (k%4)/2 (low nibbles), g_hi =
// g_lo + 2 (high nibbles), l0 = 16·(k%2); qh chunk at 128 + 32h + l0, bits 2g.
struct Q6_KSplitVec {
  static constexpr int kElemsPerUnit = 32;
  using Row = SplitRow;
  struct Raw {
    uint4 ql, qh, sc;
    float d;
  };
  struct XFrag {
    X16 lo, hi;
  };
  __device__ static Row row(const KernelArgs& a, int64_t r) { return split_row(a, r); }
  __device__ static Raw load(const Row& r, int u) {
    const uint8_t* p = r.payload + int64_t(u / 8) * kQ6_KPayload;
    const int k = u % 8;
    return {load_stream16(p + 16 * k), __ldg(reinterpret_cast<const uint4*>(p + 128 + 32 * (k / 4) + 16 * (k % 2))),
            __ldg(reinterpret_cast<const uint4*>(p + 192)), load_d(r.d, u / 8)};
  }
  __device__ static XFrag load_x(const float* x, int u) {
    const int k = u % 8;
    const int64_t base = 256 * int64_t(u / 8) + 128 * (k / 4) + 32 * ((k % 4) / 2) + 16 * (k % 2);
    return {load_x16(x, base), load_x16(x, base + 64)};
  }
  __device__ static float dot(const Row&, int u, const Raw& w, const XFrag& x) {
    const int k = u % 8, h = k / 4, g_lo = (k % 4) / 2, l0 = 16 * (k % 2);
    const int sub_lo = 8 * h + 2 * g_lo + l0 / 16;  // scale index e/16
    const int sub_hi = sub_lo + 4;
    const float sc_lo = float(int8_t(word(w.sc, sub_lo / 4) >> (8 * (sub_lo % 4))));
    const float sc_hi = float(int8_t(word(w.sc, sub_hi / 4) >> (8 * (sub_hi % 4))));
    float s_lo = 0.0f, s_hi = 0.0f;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const uint32_t ql = word(w.ql, j), qh = word(w.qh, j);
      const uint32_t q_lo = (ql & 0x0F0F0F0Fu) | (((qh >> (2 * g_lo)) & 0x03030303u) << 4);
      const uint32_t q_hi = ((ql >> 4) & 0x0F0F0F0Fu) | (((qh >> (2 * g_lo + 4)) & 0x03030303u) << 4);
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        s_lo = fmaf(u23_minus((q_lo >> (8 * b)) & 0xFF, k2p23 + 32.0f), xat(x.lo, 4 * j + b), s_lo);
        s_hi = fmaf(u23_minus((q_hi >> (8 * b)) & 0xFF, k2p23 + 32.0f), xat(x.hi, 4 * j + b), s_hi);
      }
    }
    return (w.d * sc_lo) * s_lo + (w.d * sc_hi) * s_hi;
  }
  __device__ static float finish(const KernelArgs&, const Row&, float acc) { return acc; }
};

// ---- per-element decoders (bit-exact; generic kernels and dequantization) -----------------
template <float (*kDecode)(const uint8_t*, int64_t)>
struct NativeElem {
  __device__ static float at(const KernelArgs& a, int64_t r, int64_t e) { return kDecode(a.data + r * a.data_row_bytes, e); }
};
struct Q4_0SplitElem {
  __device__ static float at(const KernelArgs& a, int64_t r, int64_t e) {
    const SplitRow s = split_row(a, r);
    return q4_0_value(s.payload + (e / 32) * kQ4_0Payload, f16_bits_to_f32(load_le16(s.d + 2 * (e / 32))), int(e % 32));
  }
};
struct Q8_0SplitElem {
  __device__ static float at(const KernelArgs& a, int64_t r, int64_t e) {
    const SplitRow s = split_row(a, r);
    return q8_0_value(s.payload + (e / 32) * kQ8_0Payload, f16_bits_to_f32(load_le16(s.d + 2 * (e / 32))), int(e % 32));
  }
};
struct Q6_KSplitElem {
  __device__ static float at(const KernelArgs& a, int64_t r, int64_t e) {
    const SplitRow s = split_row(a, r);
    return q6_k_value(s.payload + (e / 256) * kQ6_KPayload, f16_bits_to_f32(load_le16(s.d + 2 * (e / 256))),
                      int(e % 256));
  }
};
using Q4_0Elem = NativeElem<decode_q4_0>;
using Q8_0Elem = NativeElem<decode_q8_0>;
using Q4_KElem = NativeElem<decode_q4_k>;
using Q6_KElem = NativeElem<decode_q6_k>;

// ---- repack -------------------------------------------------------------------------------
struct SplitGeometry {
  int block_bytes, payload_bytes, d_offset;
};
SplitGeometry split_geometry(FormatId f) {
  switch (f) {
    case FormatId::Q4_0: return {kQ4_0Bytes, kQ4_0Payload, 0};
    case FormatId::Q8_0: return {kQ8_0Bytes, kQ8_0Payload, 0};
    case FormatId::Q6_K: return {kQ6_KBytes, kQ6_KPayload, kQ6_KPayload};
    default: fail("repack_split: {} has no split layout (only q4_0, q8_0, q6_k)", format_name(f));
  }
}

__global__ void repack_kernel(const uint8_t* src, int64_t blocks, SplitGeometry g, uint8_t* payload, uint8_t* d) {
  for (int64_t b = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; b < blocks; b += int64_t(gridDim.x) * blockDim.x) {
    const uint8_t* s = src + b * g.block_bytes;
    const int p0 = g.d_offset == 0 ? 2 : 0;  // payload follows d (Q4_0, Q8_0) or precedes it (Q6_K)
    uint8_t* out = payload + b * g.payload_bytes;
    for (int i = 0; i < g.payload_bytes; ++i) out[i] = s[p0 + i];
    d[2 * b] = s[g.d_offset];
    d[2 * b + 1] = s[g.d_offset + 1];
  }
}

KernelCheck check_split_vec(const DeviceMatrix& w, const float* x, const float*) {
  return all_of({check_aligned(w.data, 16, "payload plane"), check_aligned(w.scales, 2, "d plane"),
                 check_aligned(x, 16, "x")});
}
KernelCheck check_q4_k_vec(const DeviceMatrix& w, const float* x, const float*) {
  return all_of({check_aligned(w.data, 16, "weights"), check_aligned(x, 16, "x")});
}
KernelCheck check_any(const DeviceMatrix&, const float* x, const float*) { return check_aligned(x, 4, "x"); }

constexpr WeightLayout N = WeightLayout::kNative, S = WeightLayout::kSplit;
const GemvKernel kKernels[] = {
    {"q4_0_split_vec16", FormatId::Q4_0, S, check_split_vec, launch_vec<Q4_0SplitVec, 4, 2>},
    {"q4_0_split_elem", FormatId::Q4_0, S, check_any, launch_elem<Q4_0SplitElem>},
    {"q4_0_elem", FormatId::Q4_0, N, check_any, launch_elem<Q4_0Elem>},
    {"q8_0_split_vec16", FormatId::Q8_0, S, check_split_vec, launch_vec<Q8_0SplitVec, 4, 2>},
    {"q8_0_split_elem", FormatId::Q8_0, S, check_any, launch_elem<Q8_0SplitElem>},
    {"q8_0_elem", FormatId::Q8_0, N, check_any, launch_elem<Q8_0Elem>},
    {"q4_k_vec16", FormatId::Q4_K, N, check_q4_k_vec, launch_vec<Q4_KVec, 4, 2>},
    {"q4_k_elem", FormatId::Q4_K, N, check_any, launch_elem<Q4_KElem>},
    {"q6_k_split_vec16", FormatId::Q6_K, S, check_split_vec, launch_vec<Q6_KSplitVec, 4, 2>},
    {"q6_k_split_elem", FormatId::Q6_K, S, check_any, launch_elem<Q6_KSplitElem>},
    {"q6_k_elem", FormatId::Q6_K, N, check_any, launch_elem<Q6_KElem>},
};

}  // namespace

std::vector<GemvKernel> gguf_gemv_kernels() { return {std::begin(kKernels), std::end(kKernels)}; }

bool gguf_dequantize(const DeviceMatrix& w, float* out, cudaStream_t stream) {
  const bool split = w.layout == S;
  switch (w.format) {
    case FormatId::Q4_0: split ? launch_dequant<Q4_0SplitElem>(w, out, stream) : launch_dequant<Q4_0Elem>(w, out, stream); return true;
    case FormatId::Q8_0: split ? launch_dequant<Q8_0SplitElem>(w, out, stream) : launch_dequant<Q8_0Elem>(w, out, stream); return true;
    case FormatId::Q6_K: split ? launch_dequant<Q6_KSplitElem>(w, out, stream) : launch_dequant<Q6_KElem>(w, out, stream); return true;
    case FormatId::Q4_K:
      if (split) return false;
      launch_dequant<Q4_KElem>(w, out, stream);
      return true;
    default: return false;
  }
}

}  // namespace imp::cuda::detail

namespace imp::cuda {

void repack_split(FormatId format, const void* native, int64_t rows, int64_t cols, void* payload, void* d,
                  cudaStream_t stream) {
  const detail::SplitGeometry g = detail::split_geometry(format);
  if (!native || !payload || !d) fail("repack_split({}): null device pointer", format_name(format));
  (void)device_data_bytes(format, WeightLayout::kSplit, rows, cols);  // validates the shape
  const int64_t blocks = rows * (cols / format_traits(format).block_elems);
  const int64_t grid = blocks / 256 + 1 < 65536 ? blocks / 256 + 1 : 65536;
  detail::repack_kernel<<<unsigned(grid), 256, 0, stream>>>(static_cast<const uint8_t*>(native), blocks, g,
                                                            static_cast<uint8_t*>(payload), static_cast<uint8_t*>(d));
  IMP_CUDA_CHECK_LAUNCH();
}

}  // namespace imp::cuda
