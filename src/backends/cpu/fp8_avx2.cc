// AVX2 kernels for FP8 weights: plain F8_E4M3 / F8_E5M2 and the scaled E4M3 checkpoint
// formats (FP8_E4M3_TENSOR / _CHANNEL / _BLOCK128). Layouts: formats/fp8_e4m3.h,
// formats/fp8_e5m2.h, formats/fp8_scaled.h (spec §1.4, §1.5, §7). Activations are F32.
//
// Decoding goes through F16C, exactly:
//   E5M2 byte b is the F16 code b << 8 (same exponent width and bias);
//   E4M3 byte S.EEEE.MMM becomes the F16 code S.0EEEE.MMM0000000, worth 2^-8 of the E4M3
//   value for normals and subnormals alike, so one exact × 256 finishes it.
// NaN codes (E4M3 S.1111.111, E5M2 E = 31 with M ≠ 0) get the references' ±NAN bits.
//   dequantize: bit-identical (scaled formats: one fp32 product fp8 · scale, as the reference);
//   vec_dot:    8-lane FMA accumulators, the scale applied once per row / per 128-tile.
#include <algorithm>

#include "backends/cpu/avx2_util.h"
#include "backends/cpu/row_kernels_avx2.h"
#include "formats/fp8_e4m3.h"
#include "formats/fp8_e5m2.h"
#include "formats/fp8_scaled.h"

namespace imp::avx2 {
namespace {

// ±NaN (the references' ±NAN bits, 0x7FC00000 | sign) in the lanes where `nan16` is set;
// v already carries the code's sign there (the NaN codes decode to ±480 / ±Inf or NaN).
inline __m256 blend_nan(__m256 v, __m128i nan16) {
  const __m256 qnan = _mm256_or_ps(_mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(int(0x80000000u)))),
                                   _mm256_castsi256_ps(_mm256_set1_epi32(0x7FC00000)));
  return _mm256_blendv_ps(v, qnan, _mm256_castsi256_ps(_mm256_cvtepi16_epi32(nan16)));
}

// 8 E4M3 bytes (low half of b) → 8 floats.
inline __m256 e4m3x8_to_f32(__m128i b) {
  const __m128i w = _mm_cvtepu8_epi16(b);
  const __m128i mag = _mm_and_si128(w, _mm_set1_epi16(0x7F));
  const __m128i h = _mm_or_si128(_mm_slli_epi16(mag, 7), _mm_slli_epi16(_mm_and_si128(w, _mm_set1_epi16(0x80)), 8));
  const __m256 v = _mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_set1_ps(256.0f));
  return blend_nan(v, _mm_cmpeq_epi16(mag, _mm_set1_epi16(0x7F)));
}

// 8 E5M2 bytes → 8 floats (Inf stays Inf through vcvtph2ps).
inline __m256 e5m2x8_to_f32(__m128i b) {
  const __m128i h = _mm_slli_epi16(_mm_cvtepu8_epi16(b), 8);
  const __m128i exp = _mm_set1_epi16(0x7C00);
  const __m128i is_nan = _mm_andnot_si128(_mm_cmpeq_epi16(_mm_and_si128(h, _mm_set1_epi16(0x0300)), _mm_setzero_si128()),
                                          _mm_cmpeq_epi16(_mm_and_si128(h, exp), exp));
  return blend_nan(_mm256_cvtph_ps(h), is_nan);
}

inline __m128i load8(const uint8_t* p) { return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)); }

// y[i] = decode(p[i]) · scale for i in [0, n).
template <__m256 (*decode)(__m128i), float (*scalar)(uint8_t)>
void dequant_scaled(const uint8_t* p, float* y, int64_t n, float scale) {
  const __m256 vs = _mm256_set1_ps(scale);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(decode(load8(p + i)), vs));
  for (; i < n; ++i) y[i] = scalar(p[i]) * scale;
}

template <__m256 (*decode)(__m128i), float (*scalar)(uint8_t)>
void dequant_plain(const uint8_t* p, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, decode(load8(p + i)));
  for (; i < n; ++i) y[i] = scalar(p[i]);
}

// Σ decode(p[i])·a[i] over [0, n).
template <__m256 (*decode)(__m128i), float (*scalar)(uint8_t)>
float dot(const uint8_t* p, const float* a, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m128i b = loadu128(p + i);
    acc0 = _mm256_fmadd_ps(decode(b), _mm256_loadu_ps(a + i), acc0);
    acc1 = _mm256_fmadd_ps(decode(_mm_unpackhi_epi64(b, b)), _mm256_loadu_ps(a + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(decode(load8(p + i)), _mm256_loadu_ps(a + i), acc0);
  float sum = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) sum += scalar(p[i]) * a[i];
  return sum;
}

constexpr auto kE4M3Dot = dot<e4m3x8_to_f32, e4m3_to_f32>;

}  // namespace

void dequantize_row_f8_e4m3(const ConstRowPlanes& src, float* dst, int64_t n) {
  dequant_plain<e4m3x8_to_f32, e4m3_to_f32>(static_cast<const uint8_t*>(src.data), dst, n);
}

float vec_dot_f8_e4m3(const ConstRowPlanes& w, const void* act, int64_t n) {
  return kE4M3Dot(static_cast<const uint8_t*>(w.data), static_cast<const float*>(act), n);
}

void dequantize_row_f8_e5m2(const ConstRowPlanes& src, float* dst, int64_t n) {
  dequant_plain<e5m2x8_to_f32, e5m2_to_f32>(static_cast<const uint8_t*>(src.data), dst, n);
}

float vec_dot_f8_e5m2(const ConstRowPlanes& w, const void* act, int64_t n) {
  return dot<e5m2x8_to_f32, e5m2_to_f32>(static_cast<const uint8_t*>(w.data), static_cast<const float*>(act), n);
}

void dequantize_row_fp8_e4m3_tensor(const ConstRowPlanes& src, float* dst, int64_t n) {
  dequant_scaled<e4m3x8_to_f32, e4m3_to_f32>(static_cast<const uint8_t*>(src.data), dst, n, src.tensor_scale);
}

float vec_dot_fp8_e4m3_tensor(const ConstRowPlanes& w, const void* act, int64_t n) {
  return kE4M3Dot(static_cast<const uint8_t*>(w.data), static_cast<const float*>(act), n) * w.tensor_scale;
}

void dequantize_row_fp8_e4m3_channel(const ConstRowPlanes& src, float* dst, int64_t n) {
  dequant_scaled<e4m3x8_to_f32, e4m3_to_f32>(static_cast<const uint8_t*>(src.data), dst, n, load_f32(src.scales));
}

float vec_dot_fp8_e4m3_channel(const ConstRowPlanes& w, const void* act, int64_t n) {
  return kE4M3Dot(static_cast<const uint8_t*>(w.data), static_cast<const float*>(act), n) * load_f32(w.scales);
}

// scales: this row's tile-row, one F32 per 128 columns (the last tile may be partial).
void dequantize_row_fp8_e4m3_block128(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src.data);
  const auto* scales = static_cast<const uint8_t*>(src.scales);
  for (int64_t t = 0; t * kFp8Tile < n; ++t) {
    const int64_t begin = t * kFp8Tile, len = std::min<int64_t>(kFp8Tile, n - begin);
    dequant_scaled<e4m3x8_to_f32, e4m3_to_f32>(p + begin, dst + begin, len, load_f32(scales + 4 * t));
  }
}

float vec_dot_fp8_e4m3_block128(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(w.data);
  const auto* a = static_cast<const float*>(act);
  const auto* scales = static_cast<const uint8_t*>(w.scales);
  float sum = 0.0f;
  for (int64_t t = 0; t * kFp8Tile < n; ++t) {
    const int64_t begin = t * kFp8Tile, len = std::min<int64_t>(kFp8Tile, n - begin);
    sum += kE4M3Dot(p + begin, a + begin, len) * load_f32(scales + 4 * t);
  }
  return sum;
}

}  // namespace imp::avx2
