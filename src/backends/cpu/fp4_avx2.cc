// AVX2 kernels for the E2M1 (FP4) weight formats, all dotted with Q8_0 activations:
//   MXFP4      ggml block: E8M0 byte e | qs[16]; low nibbles = elements 0..15 (formats/mxfp4.h)
//   NVFP4      ggml block: 4 UE4M3 scales | qs[32]; per 16-element sub-block, low nibbles
//              = elements 0..7, high = 8..15 (formats/nvfp4.h)
//   NVFP4_CKPT checkpoint: byte k = elements 2k (low) and 2k+1 (high); one E4M3 scale per 16
//              in the scales plane, × tensor_scale G (formats/nvfp4_ckpt.h)
//   MXFP4_CKPT checkpoint: same nibble pairs; one E8M0 scale per 32 (formats/mxfp4_ckpt.h)
// Spec §1.6–1.8, §2.3, §6. The dot products look up ggml's doubled table 2·E2M1 (int8) with
// vpshufb, so Σ code·q8 is an exact integer per block, and fold the ½ into the scale, as
// the references do. Dequantization reproduces each reference's product exactly:
// float(2·E2M1)·(half scale) for the ggml types, E2M1 (with its −0) · scale for the
// checkpoint types.
#include <array>

#include "backends/cpu/avx2_util.h"
#include "backends/cpu/row_kernels_avx2.h"
#include "formats/e2m1.h"
#include "formats/e8m0.h"
#include "formats/f16.h"
#include "formats/fp8_e4m3.h"
#include "formats/mxfp4.h"
#include "formats/mxfp4_ckpt.h"
#include "formats/nvfp4.h"
#include "formats/nvfp4_ckpt.h"
#include "formats/q8_0.h"
#include "formats/ue4m3.h"

namespace imp::avx2 {
namespace {

inline __m128i e2m1x2_table128() { return loadu128(kE2M1TimesTwo); }
inline __m256i e2m1x2_table256() { return _mm256_broadcastsi128_si256(e2m1x2_table128()); }

// fp32 value of every E4M3 byte, filled on first use (after the CPU check, never at load).
const float* e4m3_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int b = 0; b < 256; ++b) t[size_t(b)] = e4m3_to_f32(uint8_t(b));
    return t;
  }();
  return table.data();
}

// ggml's halved UE4M3 reading of every byte (ue4m3_to_f32_half_ggml), filled on first use.
const float* ue4m3_half_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int b = 0; b < 256; ++b) t[size_t(b)] = ue4m3_to_f32_half_ggml(uint8_t(b));
    return t;
  }();
  return table.data();
}

// 8 E2M1 codes (bytes 0..7 of c) → their exact fp32 values, −0 for code 8 included.
inline __m256 e2m1x8_to_f32(__m128i c) {
  const __m256i w = _mm256_cvtepu8_epi32(c);
  const __m256 mag = _mm256_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f);
  const __m256 v = _mm256_permutevar8x32_ps(mag, w);  // uses the low 3 bits of each lane
  const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(w, _mm256_set1_epi32(8)), 28);
  return _mm256_or_ps(v, _mm256_castsi256_ps(sign));
}

// 16 codes (bytes of c) × scale into y[0..15].
inline void store_e2m1x16(__m128i c, float scale, float* y) {
  const __m256 vs = _mm256_set1_ps(scale);
  _mm256_storeu_ps(y, _mm256_mul_ps(e2m1x8_to_f32(c), vs));
  _mm256_storeu_ps(y + 8, _mm256_mul_ps(e2m1x8_to_f32(_mm_unpackhi_epi64(c, c)), vs));
}

// The 8 bytes at p as 16 codes in element order (element 2k = low nibble of byte k).
inline __m128i pair_nibbles8(const uint8_t* p) {
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  const __m128i m = _mm_set1_epi8(0x0F);
  return _mm_unpacklo_epi8(_mm_and_si128(b, m), _mm_and_si128(_mm_srli_epi16(b, 4), m));
}

// NVFP4 ggml sub-block pair: 16 bytes → codes of sub-block 2k (first 16) and 2k+1 (next 16).
inline __m256i nvfp4_codes32(const uint8_t* qs) {
  const __m128i b = loadu128(qs);
  const __m128i m = _mm_set1_epi8(0x0F);
  const __m128i lo = _mm_and_si128(b, m), hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
  return _mm256_set_m128i(_mm_unpackhi_epi64(lo, hi), _mm_unpacklo_epi64(lo, hi));
}

}  // namespace

// ---- MXFP4 (ggml): y = float(2·E2M1[q]) · 2^(e−128) ---------------------------------------
void dequantize_row_mxfp4(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  const __m256i table = e2m1x2_table256();
  for (int64_t b = 0; b < n / kQK_MXFP4; ++b, in += sizeof(BlockMXFP4)) {
    const __m256i q = _mm256_shuffle_epi8(table, nibbles_lo_then_hi(in + 1));
    store_scaled_i8x32(q, e8m0_to_f32_half_ggml(in[0]), dst + b * kQK_MXFP4);
  }
}

float vec_dot_mxfp4(const ConstRowPlanes& w, const void* act, int64_t n) {
  const __m256i table = e2m1x2_table256();
  return dot_blocks<sizeof(BlockMXFP4), sizeof(BlockQ8_0)>(
      static_cast<const uint8_t*>(w.data), static_cast<const uint8_t*>(act), n / kQK_MXFP4,
      [table](const uint8_t* x, const uint8_t* y, __m256 acc) {
        const __m256i q = _mm256_shuffle_epi8(table, nibbles_lo_then_hi(x + 1));
        const __m256 scale = _mm256_set1_ps(f16_at(y) * e8m0_to_f32_half_ggml(x[0]));
        return _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(dot_i8_quads(q, loadu256(y + 2))), acc);
      });
}

// ---- NVFP4 (ggml): y = float(2·E2M1[q]) · ue4m3_half(d[s]) per 16-element sub-block ------
void dequantize_row_nvfp4(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  const __m128i table = e2m1x2_table128();
  const float* ue4m3 = ue4m3_half_table();
  for (int64_t b = 0; b < n / kQK_NVFP4; ++b, in += sizeof(BlockNVFP4)) {
    float* y = dst + b * kQK_NVFP4;
    for (int half = 0; half < 2; ++half) {
      const __m256i c = nvfp4_codes32(in + 4 + 16 * half);
      for (int k = 0; k < 2; ++k) {
        const int s = 2 * half + k;
        const __m128i q = _mm_shuffle_epi8(table, k ? _mm256_extracti128_si256(c, 1) : _mm256_castsi256_si128(c));
        store_scaled_i8x16(q, ue4m3[in[s]], y + 16 * s);
      }
    }
  }
}

// Two Q8_0 blocks per NVFP4 block; each covers two sub-blocks (lanes 0..3 and 4..7).
float vec_dot_nvfp4(const ConstRowPlanes& w, const void* act, int64_t n) {
  const __m256i table = e2m1x2_table256();
  const float* ue4m3 = ue4m3_half_table();
  return dot_blocks<sizeof(BlockNVFP4), 2 * sizeof(BlockQ8_0)>(
      static_cast<const uint8_t*>(w.data), static_cast<const uint8_t*>(act), n / kQK_NVFP4,
      [table, ue4m3](const uint8_t* x, const uint8_t* y, __m256 acc) {
        for (int half = 0; half < 2; ++half, y += sizeof(BlockQ8_0)) {
          const __m256i q = _mm256_shuffle_epi8(table, nvfp4_codes32(x + 4 + 16 * half));
          const float da = f16_at(y);
          const __m256 scale = _mm256_set_m128(_mm_set1_ps(da * ue4m3[x[2 * half + 1]]), _mm_set1_ps(da * ue4m3[x[2 * half]]));
          acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(dot_i8_quads(q, loadu256(y + 2))), acc);
        }
        return acc;
      });
}

// ---- NVFP4_CKPT: y = E2M1(q) · (fp32(E4M3 scale) · G) per 16 elements ---------------------
void dequantize_row_nvfp4_ckpt(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* codes = static_cast<const uint8_t*>(src.data);
  const auto* scales = static_cast<const uint8_t*>(src.scales);
  const float* e4m3 = e4m3_table();
  for (int64_t b = 0; b < n / kNvfp4CkptBlock; ++b) {
    const float d = e4m3[scales[b]] * src.tensor_scale;
    store_e2m1x16(pair_nibbles8(codes + 8 * b), d, dst + b * kNvfp4CkptBlock);
  }
}

// Per Q8_0 block: two 16-element checkpoint blocks, scales 0.5 · S · G · d_a.
float vec_dot_nvfp4_ckpt(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* codes = static_cast<const uint8_t*>(w.data);
  const auto* scales = static_cast<const uint8_t*>(w.scales);
  const auto* y = static_cast<const uint8_t*>(act);
  const float* e4m3 = e4m3_table();
  const __m256i table = e2m1x2_table256();
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK8_0; ++b, y += sizeof(BlockQ8_0)) {
    const __m256i q = _mm256_shuffle_epi8(table, nibbles_interleaved(codes + 16 * b));
    const float gda = w.tensor_scale * f16_at(y);
    const __m256 scale = _mm256_set_m128(_mm_set1_ps(0.5f * e4m3[scales[2 * b + 1]] * gda),
                                         _mm_set1_ps(0.5f * e4m3[scales[2 * b]] * gda));
    acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(dot_i8_quads(q, loadu256(y + 2))), acc);
  }
  return hsum(acc);
}

// ---- MXFP4_CKPT: y = E2M1(q) · 2^(E−127) per 32 elements (E = 0xFF → NaN) ------------------
void dequantize_row_mxfp4_ckpt(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* codes = static_cast<const uint8_t*>(src.data);
  const auto* scales = static_cast<const uint8_t*>(src.scales);
  for (int64_t b = 0; b < n / kMxfp4CkptBlock; ++b) {
    const float s = e8m0_to_f32(scales[b]);
    float* y = dst + b * kMxfp4CkptBlock;
    store_e2m1x16(pair_nibbles8(codes + 16 * b), s, y);
    store_e2m1x16(pair_nibbles8(codes + 16 * b + 8), s, y + 16);
  }
}

float vec_dot_mxfp4_ckpt(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* codes = static_cast<const uint8_t*>(w.data);
  const auto* scales = static_cast<const uint8_t*>(w.scales);
  const auto* y = static_cast<const uint8_t*>(act);
  const __m256i table = e2m1x2_table256();
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kMxfp4CkptBlock; ++b, y += sizeof(BlockQ8_0)) {
    const __m256i q = _mm256_shuffle_epi8(table, nibbles_interleaved(codes + 16 * b));
    const __m256 scale = _mm256_set1_ps(0.5f * e8m0_to_f32(scales[b]) * f16_at(y));
    acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(dot_i8_quads(q, loadu256(y + 2))), acc);
  }
  return hsum(acc);
}

}  // namespace imp::avx2
