// AVX2 kernels for the plain float weights: F16 (F16C), BF16 and the F32 dot product.
// Layouts: formats/f16.h, formats/bf16.h (spec §1.2, §1.3); activations are F32 rows.
//   dequantize: exact conversions (bit-identical to f16_to_f32 / bf16_to_f32, NaN
//               payloads included);
//   vec_dot:    four 8-lane FMA accumulators; the reference sums in element order, so
//               the two differ by FP32 reassociation only.
// Rows are n elements at any alignment; tails shorter than a vector go through the
// references' scalar conversions.
#include "backends/cpu/avx2_util.h"
#include "backends/cpu/row_kernels_avx2.h"
#include "formats/bf16.h"
#include "formats/f16.h"

namespace imp::avx2 {
namespace {

// 8 F16 codes → 8 floats. vcvtph2ps is exact for every finite value and for ±Inf; for
// NaN it quiets a signalling payload, which f16_to_f32 keeps, so E = 31 lanes take the
// bit-level decode (sign | 0x7F800000 | m << 13) instead.
inline __m256 f16x8_to_f32(__m128i h) {
  const __m256 hw = _mm256_cvtph_ps(h);
  const __m256i w = _mm256_cvtepu16_epi32(h);
  const __m256i exp_mask = _mm256_set1_epi32(0x7C00);
  const __m256i special = _mm256_cmpeq_epi32(_mm256_and_si256(w, exp_mask), exp_mask);
  const __m256i bits = _mm256_or_si256(
      _mm256_or_si256(_mm256_slli_epi32(_mm256_and_si256(w, _mm256_set1_epi32(0x8000)), 16),
                      _mm256_set1_epi32(0x7F800000)),
      _mm256_slli_epi32(_mm256_and_si256(w, _mm256_set1_epi32(0x3FF)), 13));
  return _mm256_blendv_ps(hw, _mm256_castsi256_ps(bits), _mm256_castsi256_ps(special));
}

inline __m256 bf16x8_to_f32(__m128i h) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// Σ decode(w[i])·a[i] for 2-byte codes; `decode` maps 8 codes to 8 floats.
template <__m256 (*decode)(__m128i), float (*scalar)(uint16_t)>
float dot_u16(const uint8_t* p, const float* a, int64_t n) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) {
      const __m256 w = decode(loadu128(p + 2 * (i + 8 * k)));
      acc[k] = _mm256_fmadd_ps(w, _mm256_loadu_ps(a + i + 8 * k), acc[k]);
    }
  }
  for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(decode(loadu128(p + 2 * i)), _mm256_loadu_ps(a + i), acc[0]);
  float sum = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  for (; i < n; ++i) sum += scalar(load_u16(p + 2 * i)) * a[i];
  return sum;
}

template <__m256 (*decode)(__m128i), float (*scalar)(uint16_t)>
void dequant_u16(const uint8_t* p, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, decode(loadu128(p + 2 * i)));
  for (; i < n; ++i) y[i] = scalar(load_u16(p + 2 * i));
}

}  // namespace

void dequantize_row_f16(const ConstRowPlanes& src, float* dst, int64_t n) {
  dequant_u16<f16x8_to_f32, f16_to_f32>(static_cast<const uint8_t*>(src.data), dst, n);
}

float vec_dot_f16(const ConstRowPlanes& w, const void* act, int64_t n) {
  return dot_u16<f16x8_to_f32, f16_to_f32>(static_cast<const uint8_t*>(w.data), static_cast<const float*>(act), n);
}

void dequantize_row_bf16(const ConstRowPlanes& src, float* dst, int64_t n) {
  dequant_u16<bf16x8_to_f32, bf16_to_f32>(static_cast<const uint8_t*>(src.data), dst, n);
}

float vec_dot_bf16(const ConstRowPlanes& w, const void* act, int64_t n) {
  return dot_u16<bf16x8_to_f32, bf16_to_f32>(static_cast<const uint8_t*>(w.data), static_cast<const float*>(act),
                                             n);
}

float vec_dot_f32(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(w.data);
  const auto* a = static_cast<const float*>(act);
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) {
      const __m256 wv = _mm256_loadu_ps(reinterpret_cast<const float*>(p + 4 * (i + 8 * k)));
      acc[k] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(a + i + 8 * k), acc[k]);
    }
  }
  for (; i + 8 <= n; i += 8) {
    acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(reinterpret_cast<const float*>(p + 4 * i)), _mm256_loadu_ps(a + i), acc[0]);
  }
  float sum = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  for (; i < n; ++i) sum += load_f32(p + 4 * i) * a[i];
  return sum;
}

}  // namespace imp::avx2
