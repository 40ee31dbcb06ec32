// Exact element access on the kMma layout (gemv_mma_layout.h): the reference value of any
// weight, as the CPU dequantizer computes it — the per-element GEMV fallback, device
// dequantization and the direct BF16 dequantization use it. Internal header.
#pragma once

#include "backends/cuda/decode_fp4.cuh"
#include "backends/cuda/decode_gguf.cuh"
#include "backends/cuda/decode_gguf_legacy.cuh"
#include "backends/cuda/gemv_mma_layout.h"
#include "backends/cuda/gemv_registry.h"

namespace imp::cuda::detail {

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
    } else if constexpr (F == FormatId::Q4_K || F == FormatId::Q5_K) {  // the same header; Q5_K's q < 32
      const uint8_t* hdr = srow + 16 * (e / 256);
      int sc = 0, m = 0;
      q4_k_scale_min(hdr + 4, int(e % 256) / 32, sc, m);
      const float d = f16_bits_to_f32(load_le16(hdr)), dmin = f16_bits_to_f32(load_le16(hdr + 2));
      return imp_fsub_rn(imp_fmul_rn(imp_fmul_rn(d, float(sc)), float(code)), imp_fmul_rn(dmin, float(m)));
    } else if constexpr (F == FormatId::Q6_K) {
      // Slot of unit e / 128: the chunk's int8 scale, then d; dequantize_row_q6_k's (d·sc)·q.
      const uint8_t* slot = srow + 16 * (e / 128);
      const float d = f16_bits_to_f32(load_le16(slot + 8));
      return imp_fmul_rn(imp_fmul_rn(d, float(int8_t(slot[(e % 128) / 16]))), float(int(code) - 32));
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
    uint32_t code = (word >> mma_layout::bit_offset(F, p)) & (F == FormatId::Q8_0 ? 0xFFu : 0xFu);
    if constexpr (mma_layout::hi_bits(F) > 0) {  // Q5_K, Q6_K: the high bits from the second plane
      const uint8_t* hi =
          a.data + r * a.data_row_bytes + mma_layout::hi_plane(a.cols) + (e / U) * mma_layout::hi_unit_bytes(F);
      const uint32_t mask = (1u << mma_layout::hi_bits(F)) - 1;
      code |= ((load_le32(hi + mma_layout::hi_word_offset(F, c, w)) >> mma_layout::hi_bit(F, w, p)) & mask) << 4;
    }
    return value(a, r, e, code);
  }
};

// ---- one payload word's exact values, from the unit's scale bytes ----------------------
// The scale bytes of unit u of a row start at unit_scale_offset(F, u) in the row's scale
// plane and span unit_scale_bytes(F): Q4_0 four f16 d (one per 32-block), Q8_0 two, Q4_K
// the superblock's 16-byte header (a unit is half a superblock), Q6_K its 16-byte slot
// (gemv_mma_layout.h), NVFP4 eight E4M3 (one per 16-block; × the tensor scale), MXFP4 four
// E8M0.
IMP_MMA_HD int unit_scale_bytes(FormatId f) {
  switch (f) {
    case FormatId::Q4_0: return 8;
    case FormatId::Q8_0: return 4;
    case FormatId::Q4_K:
    case FormatId::Q5_K:
    case FormatId::Q6_K: return 16;
    case FormatId::NVFP4_CKPT: return 8;
    case FormatId::MXFP4_CKPT: return 4;
    default: return 0;
  }
}
IMP_MMA_HD int64_t unit_scale_offset(FormatId f, int64_t u) {
  return f == FormatId::Q4_K || f == FormatId::Q5_K ? (u / 2) * 16 : u * unit_scale_bytes(f);
}

// v[h][t] = the value at chunk column 4c + t of chunk h of word w (thread c's slice) of
// unit u: two chunks for 4-bit, Q5_K and Q6_K codes (2w, 2w+1), one for Q8_0 (w). us = the
// unit's scale bytes (global or shared memory); hh = Q5_K's / Q6_K's hi word of w shifted
// right by hi_word_shift (gemv_mma_layout.h), unused by the others. A word never spans two Q4_0 / Q8_0 / MXFP4 blocks or two
// Q4_K sub-blocks (NVFP4's two chunks are two 16-blocks), so each scale is read once per
// word; the products are MmaElem::value's, in the same order, so the values are
// bit-identical to the CPU dequantizer's.
// The float of a small unsigned integer b < 2^23 without an I2F (a quarter-rate conversion on
// sm_90; the fused prefill GEMM decodes 64 values per thread per unit): the float 2^23 + b has
// b in its mantissa, and subtracting 2^23 + bias is exact, so the result is b − bias exactly.
__device__ __forceinline__ float small_uint_minus(uint32_t b, float two23_plus_bias) {
  return __uint_as_float(0x4B000000u | b) - two23_plus_bias;
}

// e2m1_bits_to_f32 (decode_scalar.cuh), the same values, through small_uint_minus.
__device__ __forceinline__ float e2m1_value(uint32_t code) {
  const float v = small_uint_minus((0xC8643210u >> (4 * (code & 7))) & 0xFu, 8388608.0f) * 0.5f;  // exact
  return (code & 8) ? -v : v;
}

template <FormatId F>
__device__ __forceinline__ void unit_word_values(const uint8_t* us, int u, int w, uint32_t word, float tensor_scale,
                                                 float (&v)[2][4], uint32_t hh = 0) {
  if constexpr (F == FormatId::Q6_K) {
    const float d = f16_bits_to_f32(load_le16(us + 8));
#pragma unroll
    for (int p = 0; p < 8; ++p) {
      const int h = p & 1, t = 2 * ((p >> 1) & 1) + (p >> 2);
      const uint32_t q = ((word >> (4 * p)) & 0xFu) | (((hh >> mma_layout::hi_bit(F, 0, p)) & 3u) << 4);
      const float dl = imp_fmul_rn(d, float(int8_t(us[2 * w + h])));  // chunk 2w + h's scale
      v[h][t] = imp_fmul_rn(dl, small_uint_minus(q, 8388640.0f));      // q − 32
    }
  } else if constexpr (F == FormatId::Q8_0) {
    const float d = f16_bits_to_f32(load_le16(us + 2 * (w / 2)));  // 64-column units: blocks of 2 words
#pragma unroll
    for (int t = 0; t < 4; ++t) {
      const float q = small_uint_minus(((word >> (8 * t)) & 0xFFu) ^ 0x80u, 8388736.0f);  // int8: (b ^ 0x80) − 128
      v[0][t] = imp_fmul_rn(q, d);
    }
  } else {
    float d = 0.0f, dmin = 0.0f;
    int sc = 0, m = 0;
    if constexpr (F == FormatId::Q4_0) {
      d = f16_bits_to_f32(load_le16(us + 2 * w));
    } else if constexpr (F == FormatId::Q4_K || F == FormatId::Q5_K) {
      q4_k_scale_min(us + 4, 4 * (u & 1) + w, sc, m);
      d = f16_bits_to_f32(load_le16(us)), dmin = f16_bits_to_f32(load_le16(us + 2));
    }
#pragma unroll
    for (int p = 0; p < 8; ++p) {
      uint32_t code = (word >> (4 * p)) & 0xFu;
      if constexpr (F == FormatId::Q5_K) code |= ((hh >> mma_layout::hi_bit(F, 0, p)) & 1u) << 4;
      const int h = p & 1;
      if constexpr (F == FormatId::Q4_0 || F == FormatId::Q4_K || F == FormatId::Q5_K) {
        const int t = 2 * ((p >> 1) & 1) + (p >> 2);
        if constexpr (F == FormatId::Q4_0) {
          v[h][t] = imp_fmul_rn(small_uint_minus(code, 8388616.0f), d);  // code − 8
        } else {
          v[h][t] = imp_fsub_rn(imp_fmul_rn(imp_fmul_rn(d, float(sc)), small_uint_minus(code, 8388608.0f)),
                                imp_fmul_rn(dmin, float(m)));
        }
      } else {
        const int t = ((p >> 1) & 1) + 2 * (p >> 2);
        if constexpr (F == FormatId::NVFP4_CKPT) {
          const float s = imp_fmul_rn(e4m3_bits_to_f32(us[2 * w + h]), tensor_scale);  // 16-block 2w + h of the unit
          v[h][t] = imp_fmul_rn(e2m1_value(code), s);
        } else {
          v[h][t] = imp_fmul_rn(e2m1_value(code), e8m0_value(us[w]));
        }
      }
    }
  }
}

}  // namespace imp::cuda::detail
