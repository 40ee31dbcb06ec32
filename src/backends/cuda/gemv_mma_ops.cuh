// Per-format decoders of the tensor-core GEMV (gemv_mma.cu) on the kMma layout
// (gemv_mma_layout.h): one thread's 16-byte payload slice → exact f16 A fragments of
// mma.sync.m16n8k16, plus each format's scales, and the f16/MMA helpers they share.
// Internal header of gemv_mma.cu.
#pragma once

#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <type_traits>

#include "backends/cuda/decode_scalar.cuh"
#include "backends/cuda/gemv_mma_layout.h"
#include "backends/cuda/gemv_registry.h"
#include "backends/cuda/mma_f16.cuh"

namespace imp::cuda::detail {
namespace {

using mma::bits_h2;
using mma::f16x2_sat;
using mma::h2_bits;
using mma::h2_to_f2;
using mma::mma_16816;

// Four E2M1 codes in the low nibbles of a word's bytes → four E4M3 bytes of E2M1·2^-6
// (s e e m → s 0 0 e e m 0 0; exact for normal and subnormal codes alike).
__device__ __forceinline__ uint32_t e2m1_lo_to_e4m3(uint32_t v) {
  return ((v << 4) & 0x80808080u) | ((v << 2) & 0x1C1C1C1Cu);
}
__device__ __forceinline__ uint32_t e4m3x2_to_h2(uint32_t two) {
  const __half2_raw r = __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(two & 0xFFFF), __NV_E4M3);
  return uint32_t(r.x) | (uint32_t(r.y) << 16);
}

// ---- per-format decode: one 16-byte thread slice → f16 A registers a[chunk][half] -------
// a[j][0] = columns (4c, 4c+1), a[j][1] = columns (4c+2, 4c+3) of chunk j; scales(s, out)
// gives the FP32 scale of each group of kGroupChunks chunks from the unit's scale bytes.

// Eight 4-bit codes per word in the Q4_0 / Q4_K nibble order (gemv_mma_layout.h) → the f16
// values q − kOffset: 0x6400 | q is the f16 1024 + q and 0x6400 | (q << 4) is 1024 + 16q,
// both exact; − (1024 + kOffset) or ·1/16 − (64 + kOffset) is exact too.
// Word i of a thread's 16-byte slice (i a compile-time constant after unrolling).
__device__ __forceinline__ uint32_t slice_word(const uint4& r, int i) { return i == 0 ? r.x : i == 1 ? r.y : i == 2 ? r.z : r.w; }

// (v & mask) | 0x64006400 in one LOP3: written as C++ the compiler emits an AND and an OR
// (one 32-bit immediate per LOP3); here the mask stays in a register across the loop.
__device__ __forceinline__ uint32_t and_or_6400(uint32_t v, uint32_t mask) {
  uint32_t r;
  asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(r) : "r"(v), "r"(mask), "n"(0x64006400));  // (a & b) | c
  return r;
}

template <int kOffset>
__device__ __forceinline__ void decode_nibble_word(uint32_t v, uint32_t (&a)[2][2]) {
  const __half2 lo_bias = __float2half2_rn(1024.0f + kOffset), k16th = __float2half2_rn(0.0625f),
                hi_bias = __float2half2_rn(-64.0f - kOffset);
  const uint32_t v8 = v >> 8;
  a[0][0] = h2_bits(__hsub2(bits_h2(and_or_6400(v, 0x000F000Fu)), lo_bias));
  a[0][1] = h2_bits(__hsub2(bits_h2(and_or_6400(v8, 0x000F000Fu)), lo_bias));
  a[1][0] = h2_bits(__hfma2(bits_h2(and_or_6400(v, 0x00F000F0u)), k16th, hi_bias));
  a[1][1] = h2_bits(__hfma2(bits_h2(and_or_6400(v8, 0x00F000F0u)), k16th, hi_bias));
}

template <int kOffset>
__device__ __forceinline__ void decode_nibbles(const uint4& raw, uint32_t (&a)[8][2]) {
#pragma unroll
  for (int w = 0; w < 4; ++w) {
    uint32_t g[2][2];
    decode_nibble_word<kOffset>(slice_word(raw, w), g);
    a[2 * w][0] = g[0][0], a[2 * w][1] = g[0][1], a[2 * w + 1][0] = g[1][0], a[2 * w + 1][1] = g[1][1];
  }
}

struct Q4_0Mma {
  static constexpr int kChunks = 8, kGroupChunks = 2;  // 4 blocks of 32 per unit
  static constexpr int kScaleBytes = 8;                // 4 f16 d per row and unit
  using ScaleSlot = uint2;
  static constexpr bool kMins = false;
  static constexpr int kRingStages = 0;  // registers (gemv_mma.cu: Ring)
  __device__ static int x_col(int c, int j) { return 16 * j + 4 * c; }  // gemv_mma_layout.h
  __device__ static int scale_offset(int u) { return u * kScaleBytes; }
  __device__ static void decode(const uint4& raw, uint32_t (&a)[kChunks][2]) { decode_nibbles<8>(raw, a); }
  // The chunks of scale group grp only (word grp).
  __device__ static void decode_group(const uint4& raw, int grp, uint32_t (&a)[kGroupChunks][2]) {
    decode_nibble_word<8>(slice_word(raw, grp), a);
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
  static constexpr int kRingStages = 0;  // registers (gemv_mma.cu: Ring)
  __device__ static int x_col(int c, int j) { return 16 * j + 4 * c; }  // gemv_mma_layout.h
  __device__ static int scale_offset(int u) { return u * kScaleBytes; }
  // One word = one chunk: bytes (b, 0x64) per half are the f16 1024 + (q + 128), exact;
  // − 1152 leaves q.
  __device__ static void decode_word(uint32_t word, uint32_t (&a)[2]) {
    const __half2 k1152 = __float2half2_rn(1152.0f);
    const uint32_t v = word ^ 0x80808080u;  // int8 q → q + 128
    a[0] = h2_bits(__hsub2(bits_h2(__byte_perm(v, 0x64646464u, 0x4140)), k1152));
    a[1] = h2_bits(__hsub2(bits_h2(__byte_perm(v, 0x64646464u, 0x4342)), k1152));
  }
  __device__ static void decode(const uint4& raw, uint32_t (&a)[kChunks][2]) {
#pragma unroll
    for (int w = 0; w < 4; ++w) decode_word(slice_word(raw, w), a[w]);
  }
  __device__ static void decode_group(const uint4& raw, int grp, uint32_t (&a)[kGroupChunks][2]) {
    decode_word(slice_word(raw, 2 * grp), a[0]);
    decode_word(slice_word(raw, 2 * grp + 1), a[1]);
  }
  __device__ static void scales(const uint2& s, float (&out)[2]) {
    const float2 a = h2_to_f2(s.x);
    out[0] = a.x, out[1] = a.y;
  }
  __device__ static float finish(const KernelArgs&, float acc) { return acc; }
};

// NVFP4 and MXFP4 share the E2M1 decode; the MMA sees E2M1·2^-6 and finish() restores 64.
// Word w of the slice → chunk 2w (its low nibbles) and chunk 2w + 1 (its high nibbles).
__device__ __forceinline__ void decode_e2m1_word(uint32_t v, uint32_t (&ev)[2], uint32_t (&od)[2]) {
  const uint32_t e = e2m1_lo_to_e4m3(v), o = e2m1_lo_to_e4m3(v >> 4);
  ev[0] = e4m3x2_to_h2(e);
  ev[1] = e4m3x2_to_h2(e >> 16);
  od[0] = e4m3x2_to_h2(o);
  od[1] = e4m3x2_to_h2(o >> 16);
}
__device__ __forceinline__ void decode_e2m1(const uint4& raw, uint32_t (&a)[8][2]) {
#pragma unroll
  for (int w = 0; w < 4; ++w) decode_e2m1_word(slice_word(raw, w), a[2 * w], a[2 * w + 1]);
}
// One chunk only (NVFP4's group): the low or high nibbles of word j / 2.
__device__ __forceinline__ void decode_e2m1_chunk(const uint4& raw, int j, uint32_t (&a)[2]) {
  const uint32_t v = slice_word(raw, j >> 1) >> (4 * (j & 1));
  const uint32_t e = e2m1_lo_to_e4m3(v);
  a[0] = e4m3x2_to_h2(e);
  a[1] = e4m3x2_to_h2(e >> 16);
}

struct Nvfp4CkptMma {
  static constexpr int kChunks = 8, kGroupChunks = 1;  // 8 blocks of 16 per unit
  static constexpr int kScaleBytes = 8;                // 8 E4M3 bytes
  using ScaleSlot = uint2;
  static constexpr bool kMins = false;
  static constexpr int kRingStages = 0;  // registers (gemv_mma.cu: Ring)
  __device__ static int x_col(int c, int j) { return 16 * j + 4 * c; }  // gemv_mma_layout.h
  __device__ static int scale_offset(int u) { return u * kScaleBytes; }
  __device__ static void decode(const uint4& raw, uint32_t (&a)[kChunks][2]) { decode_e2m1(raw, a); }
  __device__ static void decode_group(const uint4& raw, int grp, uint32_t (&a)[kGroupChunks][2]) {
    decode_e2m1_chunk(raw, grp, a[0]);
  }
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
  static constexpr int kRingStages = 0;  // registers (gemv_mma.cu: Ring)
  __device__ static int x_col(int c, int j) { return 16 * j + 4 * c; }  // gemv_mma_layout.h
  __device__ static int scale_offset(int u) { return u * kScaleBytes; }
  __device__ static void decode(const uint4& raw, uint32_t (&a)[kChunks][2]) { decode_e2m1(raw, a); }
  __device__ static void decode_group(const uint4& raw, int grp, uint32_t (&a)[kGroupChunks][2]) {
    decode_e2m1_word(slice_word(raw, grp), a[0], a[1]);
  }
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
  static constexpr int kRingStages = 0;  // registers (gemv_mma.cu: Ring)
  __device__ static int x_col(int c, int j) { return 16 * j + 4 * c; }
  __device__ static int scale_offset(int u) { return (u >> 1) * kScaleBytes; }
  __device__ static void decode(const uint4& raw, uint32_t (&a)[kChunks][2]) { decode_nibbles<0>(raw, a); }
  __device__ static void decode_group(const uint4& raw, int grp, uint32_t (&a)[kGroupChunks][2]) {
    decode_nibble_word<0>(slice_word(raw, grp), a);
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

// ---- the formats with a high-bit plane (gemv_mma_layout.h): Q5_K (1 bit), Q6_K (2 bits) ----
// A thread's slice is its 16 low-nibble bytes and its 4·kHiBits bytes of high bits.
template <int kHiBits>
struct HiSlice {
  uint4 lo;
  uint32_t hi[kHiBits];
};
// Lo word w's high bits, shifted to the positions hi_f16_biased reads.
template <int kHiBits>
__device__ __forceinline__ uint32_t hi_of(const HiSlice<kHiBits>& s, int w) {
  if constexpr (kHiBits == 2) {
    return s.hi[w >> 1] >> (2 * (w & 1));
  } else {
    return s.hi[0] >> w;
  }
}
// Lo word v's codes q (hh: hi_of) as the exact f16 q − kOffset: chunk 2w → a[0], 2w + 1 → a[1].
template <int kHiBits, int kOffset>
__device__ __forceinline__ void decode_hi_word(uint32_t v, uint32_t hh, uint32_t (&a)[2][2]) {
  const __half2 lo_bias = __float2half2_rn(1024.0f + kOffset), k16th = __float2half2_rn(0.0625f),
                hi_bias = __float2half2_rn(-64.0f - kOffset);
  a[0][0] = h2_bits(__hsub2(bits_h2(mma_layout::hi_f16_biased<kHiBits>(v, hh, 0)), lo_bias));  // 1024 + q − …
  a[0][1] = h2_bits(__hsub2(bits_h2(mma_layout::hi_f16_biased<kHiBits>(v, hh, 1)), lo_bias));
  a[1][0] = h2_bits(__hfma2(bits_h2(mma_layout::hi_f16_biased<kHiBits>(v, hh, 2)), k16th, hi_bias));  // 64 + q − …
  a[1][1] = h2_bits(__hfma2(bits_h2(mma_layout::hi_f16_biased<kHiBits>(v, hh, 3)), k16th, hi_bias));
}
template <int kHiBits, int kOffset>
__device__ __forceinline__ void decode_hi(const HiSlice<kHiBits>& s, uint32_t (&a)[8][2]) {
#pragma unroll
  for (int w = 0; w < 4; ++w) {
    uint32_t g[2][2];
    decode_hi_word<kHiBits, kOffset>(slice_word(s.lo, w), hi_of(s, w), g);
    a[2 * w][0] = g[0][0], a[2 * w][1] = g[0][1], a[2 * w + 1][0] = g[1][0], a[2 * w + 1][1] = g[1][1];
  }
}

// Q6_K: w = (d·sc_j)·(q − 32) per 16-element chunk j; a unit is half a superblock. The MMA
// sees the exact q − 32 and each chunk's sum is scaled by the exact FP32 d·sc_j (11 × 8
// significant bits) afterwards, like NVFP4's 16-blocks.
struct Q6_KMma {
  static constexpr int kChunks = 8, kGroupChunks = 1;  // 8 sub-blocks of 16 per unit
  static constexpr int kScaleBytes = 16;               // the unit's slot: sc[8], d, padding
  using ScaleSlot = uint4;
  static constexpr bool kMins = false;
  static constexpr int kRingStages = 0;  // registers (gemv_mma.cu: Ring)
  __device__ static int x_col(int c, int j) { return 16 * j + 4 * c; }
  __device__ static int scale_offset(int u) { return u * kScaleBytes; }
  __device__ static void decode_word(uint32_t v, uint32_t hh, uint32_t (&a)[2][2]) { decode_hi_word<2, 32>(v, hh, a); }
  __device__ static void decode(const HiSlice<2>& s, uint32_t (&a)[kChunks][2]) { decode_hi<2, 32>(s, a); }
  // Chunk grp only: word grp / 2, its low (even grp) or high (odd) nibbles.
  __device__ static void decode_group(const HiSlice<2>& s, int grp, uint32_t (&a)[kGroupChunks][2]) {
    const int w = grp >> 1;
    const uint32_t v = slice_word(s.lo, w), hh = hi_of(s, w);
    if (grp & 1) {
      a[0][0] = h2_bits(__hfma2(bits_h2(mma_layout::hi_f16_biased<2>(v, hh, 2)), __float2half2_rn(0.0625f),
                                __float2half2_rn(-96.0f)));
      a[0][1] = h2_bits(__hfma2(bits_h2(mma_layout::hi_f16_biased<2>(v, hh, 3)), __float2half2_rn(0.0625f),
                                __float2half2_rn(-96.0f)));
    } else {
      a[0][0] = h2_bits(__hsub2(bits_h2(mma_layout::hi_f16_biased<2>(v, hh, 0)), __float2half2_rn(1056.0f)));
      a[0][1] = h2_bits(__hsub2(bits_h2(mma_layout::hi_f16_biased<2>(v, hh, 1)), __float2half2_rn(1056.0f)));
    }
  }
  // out[j] = d·sc_j, exact in FP32: int8 b → bytes (b ^ 0x80, 0, 0, 0x4B) = the float 2^23 +
  // b + 128, less 2^23 + 128.
  __device__ static void scales(const uint4& s, float (&out)[8]) {
    const float d = h2_to_f2(s.z).x;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const uint32_t four = (j < 4 ? s.x : s.y) ^ 0x80808080u;
      out[j] = d * (__uint_as_float(__byte_perm(four, 0x4B000000u, 0x7540 | (j & 3))) - 8388736.0f);
    }
  }
  __device__ static float finish(const KernelArgs&, float acc) { return acc; }
};

// Q5_K: Q4_K with a fifth bit (q = 0 … 31, the same header, scales and mins): the MMA sees
// the unsigned q, as for Q4_K.
struct Q5_KMma : Q4_KMma {
  __device__ static void decode(const HiSlice<1>& s, uint32_t (&a)[kChunks][2]) { decode_hi<1, 0>(s, a); }
  __device__ static void decode_group(const HiSlice<1>& s, int grp, uint32_t (&a)[kGroupChunks][2]) {
    decode_hi_word<1, 0>(slice_word(s.lo, grp), hi_of(s, grp), a);
  }
};

// The payload slice type of an op (one 16-byte load; Q5_K / Q6_K: and one of 4 / 8 bytes),
// and its high bits per code.
template <class Op>
struct SliceOf {
  using type = uint4;
  static constexpr int kHiBits = 0;
};
template <>
struct SliceOf<Q6_KMma> {
  using type = HiSlice<2>;
  static constexpr int kHiBits = 2;
};
template <>
struct SliceOf<Q5_KMma> {
  using type = HiSlice<1>;
  static constexpr int kHiBits = 1;
};
template <class Op>
constexpr int kHiBits = SliceOf<Op>::kHiBits;
template <class Op>
constexpr bool kHasHiPlane = kHiBits<Op> > 0;

// FP8 E4M3 (per tensor, or per channel: one F32 scale per row) read in its native
// row-major layout — no repack, so the W8A8 prefill (gemm_fp8.cc) reads the same bytes. A
// unit is 64 columns; thread c's 16 contiguous bytes (columns 16c … 16c+15) feed all four
// chunks: chunk j gives the thread's k-slots {2c, 2c+1, 2c+8, 2c+9} the columns
// 16c + 4j … 16c + 4j + 3 (any column↔slot map works when x follows it: x_col). E4M3 → f16
// is exact (the hardware pair conversion), so the MMA sees the weights unrounded.
template <bool kChannel>
struct Fp8Mma {
  static constexpr int kChunks = 4, kGroupChunks = 4;  // no block scales: one group per unit
  static constexpr int kScaleBytes = kChannel ? 4 : 0;  // the row's F32 scale (re-read per unit, L1)
  using ScaleSlot = float;
  static constexpr bool kMins = false;
  static constexpr int kRingStages = 4;  // a shared-memory ring (gemv_mma.cu: Ring)
  __device__ static int x_col(int c, int j) { return 16 * c + 4 * j; }
  __device__ static int scale_offset(int) { return 0; }
  __device__ static void decode(const uint4& raw, uint32_t (&a)[kChunks][2]) {
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const uint32_t v = slice_word(raw, w);
      a[w][0] = e4m3x2_to_h2(v);
      a[w][1] = e4m3x2_to_h2(v >> 16);
    }
  }
  __device__ static void decode_group(const uint4& raw, int, uint32_t (&a)[kGroupChunks][2]) { decode(raw, a); }
  __device__ static void scales(float s, float (&out)[1]) { out[0] = kChannel ? s : 1.0f; }
  __device__ static float finish(const KernelArgs& a, float acc) { return kChannel ? acc : acc * a.tensor_scale; }
};

}  // namespace
}  // namespace imp::cuda::detail
