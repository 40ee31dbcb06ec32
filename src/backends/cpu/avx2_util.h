// Small AVX2 building blocks shared by the *_avx2.cc kernels. Include this header ONLY
// from files compiled with -mavx2 -mfma -mf16c: every function here is inline AVX2 code.
//
// Bit-exactness: imp_core is built with -ffp-contract=off, so the separate
// _mm256_mul_ps / _mm256_add_ps / _mm256_sub_ps below round exactly like the scalar
// references' `a * b + c`; an FMA is only written out (_mm256_fmadd_ps) in dot products,
// whose results are compared within a tolerance.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "common/bits.h"

namespace imp::avx2 {

// Sum of the 8 lanes.
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
  return _mm_cvtsi128_si32(s);
}

// 16 packed bytes → 32 bytes: the low nibbles first (bytes 0..15), then the high nibbles.
// The ggml block order of Q4_0/Q4_1/Q5_x/IQ4_NL/MXFP4 (element j low, j + 16 high).
inline __m256i nibbles_lo_then_hi(const uint8_t* p) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m256i lohi = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
  return _mm256_and_si256(lohi, _mm256_set1_epi8(0x0F));
}

// 16 packed bytes → 32 bytes in pair order: element 2k = low nibble of byte k, element
// 2k + 1 = its high nibble (the checkpoint layout of NVFP4/MXFP4 in safetensors).
inline __m256i nibbles_interleaved(const uint8_t* p) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i m = _mm_set1_epi8(0x0F);
  const __m128i lo = _mm_and_si128(b, m);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
  return _mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi));
}

// 32 bits → 32 bytes: byte i = 0xFF when bit i of `bits` is set, else 0.
inline __m256i bytes_from_bits(uint32_t bits) {
  const __m256i shuf = _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202,
                                          0x0303030303030303);
  __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(int(bits)), shuf);
  // Every bit except bit (i % 8) set in byte i: the OR is all-ones exactly when that bit was.
  v = _mm256_or_si256(v, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
  return _mm256_cmpeq_epi8(v, _mm256_set1_epi64x(-1));
}

// Σ x·y over pairs of adjacent signed bytes, as 8 int32 lanes (lane k: bytes 4k..4k+3).
// Uses |x| and y·sign(x) so vpmaddubsw (unsigned × signed) applies; exact whenever y
// avoids −128 (every activation quantizer here produces codes in [−127, 127]) — x may be
// −128, since |−128| = 128 read as unsigned.
inline __m256i dot_i8_quads(__m256i x, __m256i y) {
  const __m256i ax = _mm256_sign_epi8(x, x);
  const __m256i sy = _mm256_sign_epi8(y, x);
  return _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1));
}

// 8 consecutive signed bytes (from lane `k` of 4 in a 32-byte vector) → 8 floats.
template <int k>
inline __m256 i8x8_to_f32(__m256i bytes) {
  const __m128i half = _mm256_extracti128_si256(bytes, k / 2);
  const __m128i src = (k % 2) ? _mm_unpackhi_epi64(half, half) : half;
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(src));
}

// y[0..31] = float(q[i]) * d  (one rounding, like the references' float(q) * d).
inline void store_scaled_i8x32(__m256i q, float d, float* y) {
  const __m256 vd = _mm256_set1_ps(d);
  _mm256_storeu_ps(y + 0, _mm256_mul_ps(i8x8_to_f32<0>(q), vd));
  _mm256_storeu_ps(y + 8, _mm256_mul_ps(i8x8_to_f32<1>(q), vd));
  _mm256_storeu_ps(y + 16, _mm256_mul_ps(i8x8_to_f32<2>(q), vd));
  _mm256_storeu_ps(y + 24, _mm256_mul_ps(i8x8_to_f32<3>(q), vd));
}

// y[0..31] = float(q[i]) * d + m, two roundings (mul, then add).
inline void store_scaled_offset_i8x32(__m256i q, float d, float m, float* y) {
  const __m256 vd = _mm256_set1_ps(d), vm = _mm256_set1_ps(m);
  _mm256_storeu_ps(y + 0, _mm256_add_ps(_mm256_mul_ps(i8x8_to_f32<0>(q), vd), vm));
  _mm256_storeu_ps(y + 8, _mm256_add_ps(_mm256_mul_ps(i8x8_to_f32<1>(q), vd), vm));
  _mm256_storeu_ps(y + 16, _mm256_add_ps(_mm256_mul_ps(i8x8_to_f32<2>(q), vd), vm));
  _mm256_storeu_ps(y + 24, _mm256_add_ps(_mm256_mul_ps(i8x8_to_f32<3>(q), vd), vm));
}

// 16 bytes → 16 floats (two vectors): float(q) * d.
inline void store_scaled_i8x16(__m128i q, float d, float* y) {
  const __m256 vd = _mm256_set1_ps(d);
  _mm256_storeu_ps(y + 0, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), vd));
  _mm256_storeu_ps(y + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(q, q))), vd));
}

// 16 bytes → 16 floats: float(q) * d − m (the K-quant order: product, then subtract).
inline void store_scaled_minus_i8x16(__m128i q, float d, float m, float* y) {
  const __m256 vd = _mm256_set1_ps(d), vm = _mm256_set1_ps(m);
  const __m256 f0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
  const __m256 f1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(q, q)));
  _mm256_storeu_ps(y + 0, _mm256_sub_ps(_mm256_mul_ps(vd, f0), vm));
  _mm256_storeu_ps(y + 8, _mm256_sub_ps(_mm256_mul_ps(vd, f1), vm));
}

// The F16 at p (unaligned) as fp32 through F16C: equal to f16_to_f32 for every code but
// signalling NaNs, which come back quiet — and a NaN scale makes a NaN product either way.
inline float f16_at(const uint8_t* p) { return _cvtsh_ss(load_u16(p)); }

// Σ over nb blocks of a block kernel `acc = block(x_b, y_b, acc)` (x_b, y_b: the b-th weight
// and activation blocks), on two independent FMA chains so that the FMA latency does not
// bound a loop whose body is a handful of instructions.
template <int kXBytes, int kYBytes, class Block>
inline float dot_blocks(const uint8_t* x, const uint8_t* y, int64_t nb, Block block) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2, x += 2 * kXBytes, y += 2 * kYBytes) {
    acc0 = block(x, y, acc0);
    acc1 = block(x + kXBytes, y + kYBytes, acc1);
  }
  if (b < nb) acc0 = block(x, y, acc0);
  return hsum(_mm256_add_ps(acc0, acc1));
}

inline __m256i loadu256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m128i loadu128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

}  // namespace imp::avx2
