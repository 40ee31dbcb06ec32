// Tensor-core decode GEMV for the 4- and 8-bit block formats on the kMma layout
// (gemv_mma_layout.h): y[rows] = W · x with x rounded to f16 and every weight decoded by a
// few bit operations into an exact f16 A fragment of mma.sync.m16n8k16 (f32 accumulate).
// The N dimension of the MMA is unused: B holds x in all 8 columns, so C's columns are 8
// copies of the same dot products.
//
// Why: the FP32-activation kernels (gemv_gguf.cu, gemv_fp4.cu) spend ~5 FP32 instructions
// per 4-bit weight (decode, convert, FMA) and are bound by instruction issue at 0.3–0.6 of
// HBM bandwidth; here one MMA does 256 multiply-adds and the decode is ~1 instruction per
// weight.
//
// Numerics: the only rounding beyond FP32 accumulation is x → f16 (round to nearest,
// relative 2^-11 per element, saturating at ±65504 so an outlier cannot become Inf).
// Weights are exact: Q4_0 / Q8_0 codes enter as the integers q − 8 / q, NVFP4 / MXFP4
// codes as E2M1·2^-6, and the block scale multiplies the MMA's block sum in FP32 (the MMA
// over one scale block starts from a zero accumulator). Against the FP64 dot of the
// reference dequantization with the f16-rounded x, y differs only by FP32 summation order.
//
// Work split: a CTA of 8 warps owns 16·kTiles rows; the warps take the row's 64-byte units
// round-robin (split-K inside the CTA) and add their partial sums in shared memory at the
// end. Each thread loads its 16 payload bytes per row and unit with one streaming load and
// requests the next step's units before decoding the current ones. x is read per unit as
// one float4 per chunk (L1-resident after the first warp) and converted in registers,
// shared by the unit's rows.
// (Measured on an H200, 2026-12-02: this beat a persistent-CTA variant with a cp.async
// ring in shared memory by 1.3–1.6×; the ring's per-tile barriers and shared-memory
// traffic cost more than the latency it hid.)
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <string>

#include "backends/cuda/decode_fp4.cuh"
#include "backends/cuda/decode_gguf.cuh"
#include "backends/cuda/decode_gguf_legacy.cuh"
#include "backends/cuda/gemv_kernel.cuh"
#include "backends/cuda/gemv_mma_layout.h"
#include "backends/cuda/kv_codec.cuh"
#include "formats/traits.h"

namespace imp::cuda::detail {
namespace {

constexpr int kMmaWarps = 8;
constexpr int kMmaThreads = kMmaWarps * 32;

__device__ __forceinline__ uint32_t h2_bits(__half2 h) { return *reinterpret_cast<uint32_t*>(&h); }
__device__ __forceinline__ __half2 bits_h2(uint32_t u) { return *reinterpret_cast<__half2*>(&u); }

// f16 pair (lo, hi), round to nearest even, saturating to ±65504.
__device__ __forceinline__ uint32_t f16x2_sat(float lo, float hi) {
  uint32_t r;
  asm("cvt.rn.satfinite.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

// D = A·B + C for one m16n8k16 tile (A row-major 16×16 f16, B column-major 16×8 f16).
__device__ __forceinline__ void mma_16816(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                          uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Four E2M1 codes in the low nibbles of a word's bytes → four E4M3 bytes of E2M1·2^-6
// (s e e m → s 0 0 e e m 0 0; exact for normal and subnormal codes alike).
__device__ __forceinline__ uint32_t e2m1_lo_to_e4m3(uint32_t v) {
  return ((v << 4) & 0x80808080u) | ((v << 2) & 0x1C1C1C1Cu);
}
__device__ __forceinline__ uint32_t e4m3x2_to_h2(uint32_t two) {
  const __half2_raw r = __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(two & 0xFFFF), __NV_E4M3);
  return uint32_t(r.x) | (uint32_t(r.y) << 16);
}
__device__ __forceinline__ float2 h2_to_f2(uint32_t h) { return __half22float2(bits_h2(h)); }

// ---- per-format decode: one 16-byte thread slice → f16 A registers a[chunk][half] -------
// a[j][0] = columns (4c, 4c+1), a[j][1] = columns (4c+2, 4c+3) of chunk j; scales(s, out)
// gives the FP32 scale of each group of kGroupChunks chunks from the unit's scale bytes.

struct Q4_0Mma {
  static constexpr int kChunks = 8, kGroupChunks = 2;  // 4 blocks of 32 per unit
  static constexpr int kScaleBytes = 8;                // 4 f16 d per row and unit
  using ScaleSlot = uint2;
  static constexpr bool kMins = false;
  __device__ static int scale_offset(int u) { return u * kScaleBytes; }
  __device__ static void decode(const uint4& raw, uint32_t (&a)[kChunks][2]) {
    const __half2 k1032 = __float2half2_rn(1032.0f), k16th = __float2half2_rn(0.0625f), km72 = __float2half2_rn(-72.0f);
    const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const uint32_t v = words[w], v8 = v >> 8;
      // 0x6400 | q is the f16 1024 + q; 0x6400 | (q << 4) is 1024 + 16q: exact, then − 1032
      // or ·1/16 − 72 (exact too) leaves q − 8.
      a[2 * w][0] = h2_bits(__hsub2(bits_h2((v & 0x000F000Fu) | 0x64006400u), k1032));
      a[2 * w][1] = h2_bits(__hsub2(bits_h2((v8 & 0x000F000Fu) | 0x64006400u), k1032));
      a[2 * w + 1][0] = h2_bits(__hfma2(bits_h2((v & 0x00F000F0u) | 0x64006400u), k16th, km72));
      a[2 * w + 1][1] = h2_bits(__hfma2(bits_h2((v8 & 0x00F000F0u) | 0x64006400u), k16th, km72));
    }
  }
  __device__ static void scales(const uint2& s, float (&out)[4]) {
    const float2 a = h2_to_f2(s.x), b = h2_to_f2(s.y);
    out[0] = a.x, out[1] = a.y, out[2] = b.x, out[3] = b.y;
  }
  __device__ static float finish(const KernelArgs&, float acc) { return acc; }
};

struct Q8_0Mma {
  static constexpr int kChunks = 4, kGroupChunks = 2;  // 2 blocks of 32 per unit
  static constexpr int kScaleBytes = 4;
  using ScaleSlot = uint2;
  static constexpr bool kMins = false;
  __device__ static int scale_offset(int u) { return u * kScaleBytes; }
  __device__ static void decode(const uint4& raw, uint32_t (&a)[kChunks][2]) {
    const __half2 k1152 = __float2half2_rn(1152.0f);
    const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const uint32_t v = words[w] ^ 0x80808080u;  // int8 q → q + 128
      // bytes (b, 0x64) per half: the f16 1024 + (q + 128), exact; − 1152 leaves q.
      a[w][0] = h2_bits(__hsub2(bits_h2(__byte_perm(v, 0x64646464u, 0x4140)), k1152));
      a[w][1] = h2_bits(__hsub2(bits_h2(__byte_perm(v, 0x64646464u, 0x4342)), k1152));
    }
  }
  __device__ static void scales(const uint2& s, float (&out)[2]) {
    const float2 a = h2_to_f2(s.x);
    out[0] = a.x, out[1] = a.y;
  }
  __device__ static float finish(const KernelArgs&, float acc) { return acc; }
};

// NVFP4 and MXFP4 share the E2M1 decode; the MMA sees E2M1·2^-6 and finish() restores 64.
__device__ __forceinline__ void decode_e2m1(const uint4& raw, uint32_t (&a)[8][2]) {
  const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int w = 0; w < 4; ++w) {
    const uint32_t ev = e2m1_lo_to_e4m3(words[w]), od = e2m1_lo_to_e4m3(words[w] >> 4);
    a[2 * w][0] = e4m3x2_to_h2(ev);
    a[2 * w][1] = e4m3x2_to_h2(ev >> 16);
    a[2 * w + 1][0] = e4m3x2_to_h2(od);
    a[2 * w + 1][1] = e4m3x2_to_h2(od >> 16);
  }
}

struct Nvfp4CkptMma {
  static constexpr int kChunks = 8, kGroupChunks = 1;  // 8 blocks of 16 per unit
  static constexpr int kScaleBytes = 8;                // 8 E4M3 bytes
  using ScaleSlot = uint2;
  static constexpr bool kMins = false;
  __device__ static int scale_offset(int u) { return u * kScaleBytes; }
  __device__ static void decode(const uint4& raw, uint32_t (&a)[kChunks][2]) { decode_e2m1(raw, a); }
  __device__ static void scales(const uint2& s, float (&out)[8]) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = h2_to_f2(e4m3x2_to_h2((i < 2 ? s.x : s.y) >> (16 * (i & 1))));
      out[2 * i] = f.x, out[2 * i + 1] = f.y;
    }
  }
  __device__ static float finish(const KernelArgs& a, float acc) { return acc * 64.0f * a.tensor_scale; }
};

struct Mxfp4CkptMma {
  static constexpr int kChunks = 8, kGroupChunks = 2;  // 4 blocks of 32 per unit
  static constexpr int kScaleBytes = 4;                // 4 E8M0 bytes
  using ScaleSlot = uint2;
  static constexpr bool kMins = false;
  __device__ static int scale_offset(int u) { return u * kScaleBytes; }
  __device__ static void decode(const uint4& raw, uint32_t (&a)[kChunks][2]) { decode_e2m1(raw, a); }
  __device__ static void scales(const uint2& s, float (&out)[4]) {
#pragma unroll
    for (int i = 0; i < 4; ++i) out[i] = e8m0_value(uint8_t(s.x >> (8 * i)));
  }
  __device__ static float finish(const KernelArgs&, float acc) { return acc * 64.0f; }
};

// Q4_K: w = (d·sc_t)·q − dmin·m_t per 32-element sub-block t of a 256-superblock; a unit is
// half a superblock (4 sub-blocks). The MMA sees the unsigned q; the kernel adds
// d·Σ_t sc_t·(Σ q·x)_t − dmin·Σ_t m_t·(Σ x)_t, the x sums coming from an MMA with A = 1.
struct Q4_KMma {
  static constexpr int kChunks = 8, kGroupChunks = 2;
  static constexpr int kScaleBytes = 16;  // the superblock header: d, dmin, scales[12]
  using ScaleSlot = uint4;
  static constexpr bool kMins = true;
  __device__ static int scale_offset(int u) { return (u >> 1) * kScaleBytes; }
  __device__ static void decode(const uint4& raw, uint32_t (&a)[kChunks][2]) {
    const __half2 k1024 = __float2half2_rn(1024.0f), k16th = __float2half2_rn(0.0625f), km64 = __float2half2_rn(-64.0f);
    const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const uint32_t v = words[w], v8 = v >> 8;
      a[2 * w][0] = h2_bits(__hsub2(bits_h2((v & 0x000F000Fu) | 0x64006400u), k1024));
      a[2 * w][1] = h2_bits(__hsub2(bits_h2((v8 & 0x000F000Fu) | 0x64006400u), k1024));
      a[2 * w + 1][0] = h2_bits(__hfma2(bits_h2((v & 0x00F000F0u) | 0x64006400u), k16th, km64));
      a[2 * w + 1][1] = h2_bits(__hfma2(bits_h2((v8 & 0x00F000F0u) | 0x64006400u), k16th, km64));
    }
  }
  // The 6-bit scales and mins of the unit's sub-blocks (half h of the superblock), four
  // bytes at a time (get_scale_min_k4 word-parallel), as exact floats; d and dmin.
  __device__ static void scales_mins(const uint4& hdr, int h, float (&sc)[4], float (&m)[4], float& d, float& dmin) {
    uint32_t SC, M;
    if (h == 0) {
      SC = hdr.y & 0x3F3F3F3Fu;
      M = hdr.z & 0x3F3F3F3Fu;
    } else {
      SC = (hdr.w & 0x0F0F0F0Fu) | ((hdr.y >> 2) & 0x30303030u);
      M = ((hdr.w >> 4) & 0x0F0F0F0Fu) | ((hdr.z >> 2) & 0x30303030u);
    }
#pragma unroll
    for (int t = 0; t < 4; ++t) {
      // bytes (b, 0, 0, 0x4B): the float 2^23 + b.
      sc[t] = __uint_as_float(__byte_perm(SC, 0x4B000000u, 0x7540 | t)) - 8388608.0f;
      m[t] = __uint_as_float(__byte_perm(M, 0x4B000000u, 0x7540 | t)) - 8388608.0f;
    }
    const float2 dd = h2_to_f2(hdr.x);
    d = dd.x;
    dmin = dd.y;
  }
  __device__ static float finish(const KernelArgs&, float acc) { return acc; }
};

// ---- the kernel ---------------------------------------------------------------------------
// One item = one unit of the thread's 2·kTiles rows: a 16-byte payload load and a scale
// load per row.
template <class Op, int kRows>
struct Item {
  uint4 q[kRows];
  typename Op::ScaleSlot s[kRows];
};

template <class Op, int kRows>
__device__ __forceinline__ void load_item(Item<Op, kRows>& it, const uint8_t* const (&pq)[kRows],
                                          const uint8_t* const (&ps)[kRows], int u) {
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    it.q[r] = load_stream16(pq[r] + int64_t(u) * mma_layout::kUnitBytes);
    it.s[r] = __ldg(reinterpret_cast<const typename Op::ScaleSlot*>(ps[r] + Op::scale_offset(u)));
  }
}

// The MMAs of one unit: x fragments b (shared by the rows), the item's rows, into acc.
template <class Op, int kTiles>
__device__ __forceinline__ void mma_item(const Item<Op, 2 * kTiles>& it, const uint32_t (&b)[Op::kChunks][2], int half,
                                         float (&acc)[2 * kTiles]) {
  constexpr int kGroups = Op::kChunks / Op::kGroupChunks;
  if constexpr (Op::kMins) {
    // Σ x of each sub-block (identical for every row): an MMA with A = 1.0.
    constexpr uint32_t kOnes = 0x3C003C00u;
    float xs[kGroups];
#pragma unroll
    for (int grp = 0; grp < kGroups; ++grp) {
      float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
      for (int j2 = 0; j2 < Op::kGroupChunks; ++j2) {
        const int j = grp * Op::kGroupChunks + j2;
        mma_16816(d, kOnes, kOnes, kOnes, kOnes, b[j][0], b[j][1]);
      }
      xs[grp] = d[0];
    }
#pragma unroll
    for (int t = 0; t < kTiles; ++t) {
      const int r0 = 2 * t, r1 = 2 * t + 1;
      uint32_t lo[Op::kChunks][2], hi[Op::kChunks][2];
      Op::decode(it.q[r0], lo);
      Op::decode(it.q[r1], hi);
      float sc_lo[kGroups], m_lo[kGroups], sc_hi[kGroups], m_hi[kGroups], d_lo, dmin_lo, d_hi, dmin_hi;
      Op::scales_mins(it.s[r0], half, sc_lo, m_lo, d_lo, dmin_lo);
      Op::scales_mins(it.s[r1], half, sc_hi, m_hi, d_hi, dmin_hi);
      float q_lo = 0.0f, q_hi = 0.0f, mx_lo = 0.0f, mx_hi = 0.0f;
#pragma unroll
      for (int grp = 0; grp < kGroups; ++grp) {
        float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
        for (int j2 = 0; j2 < Op::kGroupChunks; ++j2) {
          const int j = grp * Op::kGroupChunks + j2;
          mma_16816(d, lo[j][0], hi[j][0], lo[j][1], hi[j][1], b[j][0], b[j][1]);
        }
        q_lo = fmaf(sc_lo[grp], d[0], q_lo);
        q_hi = fmaf(sc_hi[grp], d[2], q_hi);
        mx_lo = fmaf(m_lo[grp], xs[grp], mx_lo);
        mx_hi = fmaf(m_hi[grp], xs[grp], mx_hi);
      }
      acc[r0] += fmaf(d_lo, q_lo, -dmin_lo * mx_lo);
      acc[r1] += fmaf(d_hi, q_hi, -dmin_hi * mx_hi);
    }
  } else {
#pragma unroll
    for (int t = 0; t < kTiles; ++t) {
      const int r0 = 2 * t, r1 = 2 * t + 1;  // rows g + 16t and g + 16t + 8
      uint32_t lo[Op::kChunks][2], hi[Op::kChunks][2];
      Op::decode(it.q[r0], lo);
      Op::decode(it.q[r1], hi);
      float s_lo[kGroups], s_hi[kGroups];
      Op::scales(it.s[r0], s_lo);
      Op::scales(it.s[r1], s_hi);
#pragma unroll
      for (int grp = 0; grp < kGroups; ++grp) {
        float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
        for (int j2 = 0; j2 < Op::kGroupChunks; ++j2) {
          const int j = grp * Op::kGroupChunks + j2;
          mma_16816(d, lo[j][0], hi[j][0], lo[j][1], hi[j][1], b[j][0], b[j][1]);
        }
        acc[r0] = fmaf(s_lo[grp], d[0], acc[r0]);
        acc[r1] = fmaf(s_hi[grp], d[2], acc[r1]);
      }
    }
  }
}

// What one launch computes: up to 3 matrices sharing x and cols (QKV), each over its own
// range of CTAs; or, with kSwiglu, gate and up rows side by side in each CTA (tile 0 from
// part 0, tile 1 from part 1) and out = silu(gate·x) · (up·x).
struct MmaJob {
  KernelArgs part[3];
  int64_t first_block[3] = {0, 0, 0};
  int n_parts = 1;
  float* swiglu_out = nullptr;
};

// A CTA owns 16·kTiles rows; its 8 warps take the row's units round-robin (split-K inside
// the CTA), kU units per step, and request the next step's weights before decoding the
// current ones (double buffering in registers: 2·kU items in flight per warp).
template <class Op, int kTiles, int kU, bool kSwiglu>
__global__ void __launch_bounds__(kMmaThreads) gemv_mma_kernel(MmaJob job) {
  constexpr int kRows = 2 * kTiles, kTileRows = 16 * kTiles, U = Op::kChunks * 16;
  static_assert(!kSwiglu || kTiles == 2, "the SwiGLU form pairs a gate tile with an up tile");
  constexpr int kRowsPerCta = kSwiglu ? 16 : kTileRows;
  __shared__ float partial[kMmaWarps][kTileRows];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, c = lane & 3;
  int p = 0;
  while (p + 1 < job.n_parts && int64_t(blockIdx.x) >= job.first_block[p + 1]) ++p;
  // (selected, not indexed: a dynamic index into the parameter block would copy it to
  // local memory)
  const KernelArgs a = p == 0 ? job.part[0] : p == 1 ? job.part[1] : job.part[2];
  const int units = int(a.cols / U);
  const int64_t first = p == 0 ? job.first_block[0] : p == 1 ? job.first_block[1] : job.first_block[2];
  const int64_t row0 = (int64_t(blockIdx.x) - first) * kRowsPerCta;
  const uint8_t* pq[kRows];
  const uint8_t* ps[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const KernelArgs& ar = kSwiglu ? (r < 2 ? job.part[0] : job.part[1]) : a;
    const int64_t row = min(row0 + g + 8 * (kSwiglu ? r % 2 : r), ar.rows - 1);  // past the end: re-read, dropped
    pq[r] = ar.data + row * ar.data_row_bytes + 16 * c;
    ps[r] = ar.scales + row * ar.scale_row_bytes;
  }
  float acc[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) acc[r] = 0.0f;

  constexpr int kStep = kMmaWarps * kU;  // units per step of the CTA
  Item<Op, kRows> next[kU];
#pragma unroll
  for (int i = 0; i < kU; ++i) {
    if (warp + kMmaWarps * i < units) load_item(next[i], pq, ps, warp + kMmaWarps * i);
  }
  for (int u0 = warp; u0 < units; u0 += kStep) {
    Item<Op, kRows> cur[kU];
#pragma unroll
    for (int i = 0; i < kU; ++i) cur[i] = next[i];
#pragma unroll
    for (int i = 0; i < kU; ++i) {
      if (u0 + kStep + kMmaWarps * i < units) load_item(next[i], pq, ps, u0 + kStep + kMmaWarps * i);
    }
#pragma unroll
    for (int i = 0; i < kU; ++i) {
      const int u = u0 + kMmaWarps * i;
      if (u < units) {
        // x: one float4 per chunk (columns 4c … 4c+3), f16 with saturation.
        const float* xp = a.x + int64_t(u) * U + 4 * c;
        uint32_t b[Op::kChunks][2];
#pragma unroll
        for (int j = 0; j < Op::kChunks; ++j) {
          const float4 v = __ldg(reinterpret_cast<const float4*>(xp + 16 * j));
          b[j][0] = f16x2_sat(v.x, v.y);
          b[j][1] = f16x2_sat(v.z, v.w);
        }
        mma_item<Op, kTiles>(cur[i], b, u & 1, acc);
      }
    }
  }
  if (c == 0) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) partial[warp][g + 8 * r] = acc[r];
  }
  __syncthreads();
  if constexpr (kSwiglu) {
    if (tid < 16 && row0 + tid < a.rows) {
      float gs = 0.0f, us = 0.0f;
#pragma unroll
      for (int w = 0; w < kMmaWarps; ++w) gs += partial[w][tid], us += partial[w][16 + tid];
      const float gv = Op::finish(job.part[0], gs), uv = Op::finish(job.part[1], us);
      job.swiglu_out[row0 + tid] = gv / (1.0f + expf(-gv)) * uv;  // as swiglu_kernel
    }
  } else {
    if (tid < kTileRows && row0 + tid < a.rows) {
      float sum = 0.0f;
#pragma unroll
      for (int w = 0; w < kMmaWarps; ++w) sum += partial[w][tid];
      a.y[row0 + tid] = Op::finish(a, sum);
    }
  }
}

template <class Op, int kTiles, int kU, bool kSwiglu>
void launch_job(MmaJob job, cudaStream_t stream) {
  const int64_t rows_per_cta = kSwiglu ? 16 : 16 * kTiles;
  int64_t blocks = 0;
  for (int i = 0; i < job.n_parts; ++i) {
    job.first_block[i] = blocks;
    blocks += kSwiglu ? 0 : (job.part[i].rows + rows_per_cta - 1) / rows_per_cta;
  }
  if (kSwiglu) blocks = (job.part[0].rows + rows_per_cta - 1) / rows_per_cta, job.first_block[1] = blocks;
  gemv_mma_kernel<Op, kTiles, kU, kSwiglu><<<unsigned(blocks), kMmaThreads, 0, stream>>>(job);
  IMP_CUDA_CHECK_LAUNCH();
}

// Two 16-row tiles per CTA halve the x loads and the loop overhead per weight, but below
// ~16k rows they leave too few CTAs to fill 132 SMs; there one tile, two units per step.
template <class Op>
void launch_job_sized(const MmaJob& job, int64_t total_rows, cudaStream_t stream) {
  if (total_rows >= 16384) {
    launch_job<Op, 2, 1, false>(job, stream);
  } else {
    launch_job<Op, 1, 2, false>(job, stream);
  }
}

template <class Op>
void launch_mma(const DeviceMatrix& w, const float* x, float* y, cudaStream_t stream) {
  MmaJob job;
  job.part[0] = make_args(w, x, y);
  launch_job_sized<Op>(job, w.rows, stream);
}

KernelCheck check_mma(const DeviceMatrix& w, const float* x, const float*) {
  const int U = mma_layout::unit_cols(w.format);
  return all_of({check_cols_multiple(w.cols, U, "the kMma layout's unit"), check_aligned(w.data, 16, "payload plane"),
                 check_aligned(w.scales, 8, "scale plane"), check_aligned(x, 16, "x")});
}

// ---- exact element access on the kMma layout (dequantization, the generic kernel) -------
template <FormatId F>
struct MmaElem {
  // The exact reference value of the code at (row r, column e), as the CPU dequantizer
  // computes it (same fp32 products, same order).
  __device__ static float value(const KernelArgs& a, int64_t r, int64_t e, uint32_t code) {
    const uint8_t* srow = a.scales + r * a.scale_row_bytes;
    if constexpr (F == FormatId::Q4_0) {
      return imp_fmul_rn(float(int(code) - 8), f16_bits_to_f32(load_le16(srow + 2 * (e / 32))));
    } else if constexpr (F == FormatId::Q8_0) {
      return imp_fmul_rn(float(int8_t(uint8_t(code))), f16_bits_to_f32(load_le16(srow + 2 * (e / 32))));
    } else if constexpr (F == FormatId::Q4_K) {
      const uint8_t* hdr = srow + 16 * (e / 256);
      int sc = 0, m = 0;
      q4_k_scale_min(hdr + 4, int(e % 256) / 32, sc, m);
      const float d = f16_bits_to_f32(load_le16(hdr)), dmin = f16_bits_to_f32(load_le16(hdr + 2));
      return imp_fsub_rn(imp_fmul_rn(imp_fmul_rn(d, float(sc)), float(code)), imp_fmul_rn(dmin, float(m)));
    } else if constexpr (F == FormatId::NVFP4_CKPT) {
      return imp_fmul_rn(e2m1_bits_to_f32(uint8_t(code)), imp_fmul_rn(e4m3_bits_to_f32(srow[e / 16]), a.tensor_scale));
    } else {
      return imp_fmul_rn(e2m1_bits_to_f32(uint8_t(code)), e8m0_value(srow[e / 32]));
    }
  }
  __device__ static float at(const KernelArgs& a, int64_t r, int64_t e) {
    constexpr int U = mma_layout::unit_cols(F);
    int c = 0, w = 0;
    const int p = mma_layout::code_position(F, int(e % U), c, w);
    const uint8_t* unit = a.data + r * a.data_row_bytes + (e / U) * mma_layout::kUnitBytes;
    const uint32_t word = load_le32(unit + mma_layout::word_offset(c, w));
    const uint32_t code = (word >> mma_layout::bit_offset(F, p)) & (F == FormatId::Q8_0 ? 0xFFu : 0xFu);
    return value(a, r, e, code);
  }
};

// Dequantization straight to BF16 for the prefill GEMM: one thread per 32-bit word of the
// payload (8 or 4 codes), each value the exact reference f32 rounded to nearest even —
// what dequantize() followed by f32_to_bf16() gives, without the f32 round trip.
template <FormatId F>
__global__ void dequant_bf16_kernel(KernelArgs a, uint16_t* out) {
  constexpr int U = mma_layout::unit_cols(F), bits = mma_layout::code_bits(F);
  const int64_t words_per_row = a.cols / U * 16;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < a.rows * words_per_row;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / words_per_row, k = i % words_per_row;
    const int u = int(k / 16), c = int(k % 16) / 4, w = int(k % 4);
    const uint32_t word = __ldg(reinterpret_cast<const unsigned int*>(
        a.data + r * a.data_row_bytes + int64_t(u) * mma_layout::kUnitBytes + mma_layout::word_offset(c, w)));
#pragma unroll
    for (int p = 0; p < 32 / bits; ++p) {
      const int64_t e = int64_t(u) * U + mma_layout::unit_column(F, c, w, p);
      const float v = MmaElem<F>::value(a, r, e, (word >> (bits * p)) & ((1u << bits) - 1));
      out[r * a.cols + e] = kvc::f32_to_bf16(v);
    }
  }
}

KernelCheck check_any_mma(const DeviceMatrix&, const float* x, const float*) { return check_aligned(x, 4, "x"); }

// ---- repack: native planes → kMma payload (and the Q4_0 / Q8_0 d plane, the Q4_K headers)
// One thread per output word (4 bytes): gathers its 8 nibbles or 4 bytes from the native
// row through unit_column().
template <FormatId F>
__device__ uint32_t native_code(const uint8_t* row, int64_t col) {
  if constexpr (F == FormatId::Q4_0) {
    const uint8_t* blk = row + (col / 32) * kQ4_0Bytes + 2;
    const int j = int(col % 32);
    return j < 16 ? (blk[j] & 0xFu) : (blk[j - 16] >> 4);
  } else if constexpr (F == FormatId::Q8_0) {
    return row[(col / 32) * kQ8_0Bytes + 2 + col % 32];
  } else if constexpr (F == FormatId::Q4_K) {
    const uint8_t* qs = row + (col / 256) * kQ4_KBytes + 16;
    const int e = int(col % 256);
    const uint8_t b = qs[32 * (e / 64) + e % 32];
    return (e % 64) < 32 ? (b & 0xFu) : (b >> 4);
  } else {
    return (row[col / 2] >> (4 * (col & 1))) & 0xFu;
  }
}

template <FormatId F>
__global__ void repack_mma_kernel(const uint8_t* native, int64_t rows, int64_t cols, uint8_t* payload, uint8_t* d) {
  constexpr int U = mma_layout::unit_cols(F), bits = mma_layout::code_bits(F);
  const int64_t words_per_row = cols / U * 16;
  const int64_t row_bytes_native = F == FormatId::Q4_0   ? cols / 32 * kQ4_0Bytes
                                   : F == FormatId::Q8_0 ? cols / 32 * kQ8_0Bytes
                                   : F == FormatId::Q4_K ? cols / 256 * kQ4_KBytes
                                                         : cols / 2;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < rows * words_per_row;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / words_per_row, k = i % words_per_row;
    const int u = int(k / 16), c = int(k % 16) / 4, w = int(k % 4);
    const uint8_t* src = native + r * row_bytes_native;
    uint32_t word = 0;
    for (int p = 0; p < 32 / bits; ++p) {
      word |= native_code<F>(src, int64_t(u) * U + mma_layout::unit_column(F, c, w, p)) << (bits * p);
    }
    uint8_t* out = payload + r * (cols * bits / 8) + int64_t(u) * mma_layout::kUnitBytes + mma_layout::word_offset(c, w);
    out[0] = uint8_t(word), out[1] = uint8_t(word >> 8), out[2] = uint8_t(word >> 16), out[3] = uint8_t(word >> 24);
    if constexpr (F == FormatId::Q4_0 || F == FormatId::Q8_0) {
      // The thread of word 0 of each 32-column block copies that block's d.
      constexpr int kBlockBytes = F == FormatId::Q4_0 ? kQ4_0Bytes : kQ8_0Bytes;
      const int64_t col0 = int64_t(u) * U + 32 * (c + 4 * w);
      if (col0 < int64_t(u + 1) * U && col0 < cols) {
        const int64_t b = col0 / 32;
        d[2 * (r * (cols / 32) + b)] = src[b * kBlockBytes];
        d[2 * (r * (cols / 32) + b) + 1] = src[b * kBlockBytes + 1];
      }
    } else if constexpr (F == FormatId::Q4_K) {
      // The thread of word 0 / thread 0 of a superblock's first unit copies its header.
      if (c == 0 && w == 0 && (u & 1) == 0) {
        const int64_t b = int64_t(u) / 2;
        for (int i = 0; i < 16; ++i) d[(r * (cols / 256) + b) * 16 + i] = src[b * kQ4_KBytes + i];
      }
    }
  }
}

constexpr WeightLayout M = WeightLayout::kMma;
const GemvKernel kKernels[] = {
    {"q4_0_mma", FormatId::Q4_0, M, check_mma, launch_mma<Q4_0Mma>, false, true},
    {"q4_0_mma_elem", FormatId::Q4_0, M, check_any_mma, launch_elem<MmaElem<FormatId::Q4_0>>},
    {"q4_k_mma", FormatId::Q4_K, M, check_mma, launch_mma<Q4_KMma>, false, true},
    {"q4_k_mma_elem", FormatId::Q4_K, M, check_any_mma, launch_elem<MmaElem<FormatId::Q4_K>>},
    {"q8_0_mma", FormatId::Q8_0, M, check_mma, launch_mma<Q8_0Mma>, false, true},
    {"q8_0_mma_elem", FormatId::Q8_0, M, check_any_mma, launch_elem<MmaElem<FormatId::Q8_0>>},
    {"nvfp4_ckpt_mma", FormatId::NVFP4_CKPT, M, check_mma, launch_mma<Nvfp4CkptMma>, false, true},
    {"nvfp4_ckpt_mma_elem", FormatId::NVFP4_CKPT, M, check_any_mma, launch_elem<MmaElem<FormatId::NVFP4_CKPT>>},
    {"mxfp4_ckpt_mma", FormatId::MXFP4_CKPT, M, check_mma, launch_mma<Mxfp4CkptMma>, false, true},
    {"mxfp4_ckpt_mma_elem", FormatId::MXFP4_CKPT, M, check_any_mma, launch_elem<MmaElem<FormatId::MXFP4_CKPT>>},
};


// The fused forms, by format: false when the format has no tensor-core kernel.
template <class Fn>
bool with_op(FormatId f, Fn&& fn) {
  switch (f) {
    case FormatId::Q4_0: fn(Q4_0Mma{}); return true;
    case FormatId::Q4_K: fn(Q4_KMma{}); return true;
    case FormatId::Q8_0: fn(Q8_0Mma{}); return true;
    case FormatId::NVFP4_CKPT: fn(Nvfp4CkptMma{}); return true;
    case FormatId::MXFP4_CKPT: fn(Mxfp4CkptMma{}); return true;
    default: return false;
  }
}

// Every matrix is served by its format's tensor-core kernel (layout, shape, alignment, the
// kill list) and all share the format and the row length.
bool fusable(const DeviceMatrix* w, int n, const float* x, float* const* y) {
  for (int i = 0; i < n; ++i) {
    if (w[i].format != w[0].format || w[i].cols != w[0].cols) return false;
    bool ok = false;
    for (const GemvKernel& k : kKernels) {
      if (k.half_x && k.format == w[i].format) ok = can_implement(k, w[i], x, y[i]).ok;
    }
    if (!ok) return false;
  }
  return true;
}
}  // namespace

std::vector<GemvKernel> mma_gemv_kernels() { return {std::begin(kKernels), std::end(kKernels)}; }

bool mma_dequantize(const DeviceMatrix& w, float* out, cudaStream_t stream) {
  if (w.layout != M) return false;
  switch (w.format) {
    case FormatId::Q4_0: launch_dequant<MmaElem<FormatId::Q4_0>>(w, out, stream); return true;
    case FormatId::Q8_0: launch_dequant<MmaElem<FormatId::Q8_0>>(w, out, stream); return true;
    case FormatId::Q4_K: launch_dequant<MmaElem<FormatId::Q4_K>>(w, out, stream); return true;
    case FormatId::NVFP4_CKPT: launch_dequant<MmaElem<FormatId::NVFP4_CKPT>>(w, out, stream); return true;
    case FormatId::MXFP4_CKPT: launch_dequant<MmaElem<FormatId::MXFP4_CKPT>>(w, out, stream); return true;
    default: return false;
  }
}

}  // namespace imp::cuda::detail

namespace imp::cuda {

bool has_mma_layout(FormatId format, int64_t cols) {
  const int U = mma_layout::unit_cols(format);
  return U > 0 && cols > 0 && cols % U == 0;
}

void repack_mma(FormatId format, const void* native, int64_t rows, int64_t cols, void* payload, void* d,
                cudaStream_t stream) {
  if (!has_mma_layout(format, cols)) {
    fail("repack_mma: {} rows of {} columns have no kMma layout (q4_0, q4_k, nvfp4_ckpt, mxfp4_ckpt: cols % 128 == 0; "
         "q8_0: cols % 64 == 0)", format_name(format), cols);
  }
  const bool has_d = format == FormatId::Q4_0 || format == FormatId::Q8_0 || format == FormatId::Q4_K;
  if (!native || !payload || (has_d && !d)) fail("repack_mma({}): null device pointer", format_name(format));
  const int64_t words = rows * (device_data_bytes(format, WeightLayout::kMma, rows, cols) / rows / 4);
  const int64_t grid = words / 256 + 1 < 65536 ? words / 256 + 1 : 65536;
  const auto* src = static_cast<const uint8_t*>(native);
  auto* out = static_cast<uint8_t*>(payload);
  auto* dd = static_cast<uint8_t*>(d);
  switch (format) {
    case FormatId::Q4_0: detail::repack_mma_kernel<FormatId::Q4_0><<<unsigned(grid), 256, 0, stream>>>(src, rows, cols, out, dd); break;
    case FormatId::Q8_0: detail::repack_mma_kernel<FormatId::Q8_0><<<unsigned(grid), 256, 0, stream>>>(src, rows, cols, out, dd); break;
    case FormatId::Q4_K: detail::repack_mma_kernel<FormatId::Q4_K><<<unsigned(grid), 256, 0, stream>>>(src, rows, cols, out, dd); break;
    case FormatId::NVFP4_CKPT:
      detail::repack_mma_kernel<FormatId::NVFP4_CKPT><<<unsigned(grid), 256, 0, stream>>>(src, rows, cols, out, dd);
      break;
    default: detail::repack_mma_kernel<FormatId::MXFP4_CKPT><<<unsigned(grid), 256, 0, stream>>>(src, rows, cols, out, dd); break;
  }
  IMP_CUDA_CHECK_LAUNCH();
}

}  // namespace imp::cuda

namespace imp::cuda {

bool gemv_mma_fused(const DeviceMatrix* w, int n, const float* x, float* const* y, cudaStream_t stream) {
  if (n < 1 || n > 3 || !detail::fusable(w, n, x, y)) return false;
  detail::MmaJob job;
  job.n_parts = n;
  int64_t rows = 0;
  for (int i = 0; i < n; ++i) {
    job.part[i] = detail::make_args(w[i], x, y[i]);
    rows += w[i].rows;
  }
  return detail::with_op(w[0].format, [&](auto op) { detail::launch_job_sized<decltype(op)>(job, rows, stream); });
}

bool gemv_mma_swiglu(const DeviceMatrix& gate, const DeviceMatrix& up, const float* x, float* out, cudaStream_t stream) {
  const DeviceMatrix w[2] = {gate, up};
  float* const y[2] = {out, out};
  if (gate.rows != up.rows || !detail::fusable(w, 2, x, y)) return false;
  detail::MmaJob job;
  job.n_parts = 2;
  job.part[0] = detail::make_args(gate, x, out);
  job.part[1] = detail::make_args(up, x, out);
  job.swiglu_out = out;
  return detail::with_op(gate.format, [&](auto op) { detail::launch_job<decltype(op), 2, 1, true>(job, stream); });
}

bool dequantize_bf16(const DeviceMatrix& w, uint16_t* out, cudaStream_t stream) {
  if (w.layout != WeightLayout::kMma || !out) return false;
  const detail::KernelArgs a = detail::make_args(w, nullptr, nullptr);
  const int64_t words = w.rows * (w.cols / mma_layout::unit_cols(w.format)) * 16;
  const unsigned grid = unsigned(words / 256 + 1 < 65536 ? words / 256 + 1 : 65536);
  switch (w.format) {
    case FormatId::Q4_0: detail::dequant_bf16_kernel<FormatId::Q4_0><<<grid, 256, 0, stream>>>(a, out); break;
    case FormatId::Q4_K: detail::dequant_bf16_kernel<FormatId::Q4_K><<<grid, 256, 0, stream>>>(a, out); break;
    case FormatId::Q8_0: detail::dequant_bf16_kernel<FormatId::Q8_0><<<grid, 256, 0, stream>>>(a, out); break;
    case FormatId::NVFP4_CKPT: detail::dequant_bf16_kernel<FormatId::NVFP4_CKPT><<<grid, 256, 0, stream>>>(a, out); break;
    case FormatId::MXFP4_CKPT: detail::dequant_bf16_kernel<FormatId::MXFP4_CKPT><<<grid, 256, 0, stream>>>(a, out); break;
    default: return false;
  }
  IMP_CUDA_CHECK_LAUNCH();
  return true;
}

}  // namespace imp::cuda
