// AVX2 kernels of the 16-bit activation path (act_i16.h): the activation quantizer and
// the weight-row dots for Q4_0, Q4_1, Q8_0. Block layouts: formats/q4_0.h, q4_1.h, q8_0.h.
//
// Per 32-block: the weight codes are widened to 16 int16 lanes twice (elements 0..15 and
// 16..31 — the nibble order of Q4_x: low nibbles first), vpmaddwd against the activation
// codes gives 8 exact int32 partial sums, converted once and FMA'd into an FP32
// accumulator with the scale dw·dx. Results
// agree with the double-precision reference within FP32 summation error (~1e-6 relative).
#include "backends/cpu/act_i16.h"
#include "backends/cpu/avx2_util.h"

namespace imp::avx2 {
namespace {

constexpr int kQK = kI16Block;

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// 8 floats → 8 int32 codes: round half to even (MXCSR default), clamped to ±32767.
inline __m256i round_clamp(__m256 x, __m256 id) {
  const __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(x, id));
  return _mm256_max_epi32(_mm256_min_epi32(v, _mm256_set1_epi32(32767)), _mm256_set1_epi32(-32767));
}

// One block of one row: acc += (dw·dx)·float(Σ c·q per lane); mins += mw·s.
template <bool kHasMin, class Decode>
inline void block_dot(const uint8_t* p, __m256i xlo, __m256i xhi, float dx, float sx, __m256& acc, float& mins,
                      Decode decode) {
  __m256i lo, hi;
  float dw, mw;
  decode(p, lo, hi, dw, mw);
  const __m256i sum = _mm256_add_epi32(_mm256_madd_epi16(lo, xlo), _mm256_madd_epi16(hi, xhi));
  acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(dw * dx), acc);
  if constexpr (kHasMin) mins += mw * sx;
}

// dw and mw (F16 at block offsets 0 and 2) of 8 consecutive blocks as two float vectors:
// one gather of the 8 leading 32-bit words replaces 16 scalar F16 loads and conversions.
template <size_t kBlockBytes>
inline void scales_x8(const uint8_t* p, __m256& dw, __m256& mw) {
  const __m256i idx = _mm256_setr_epi32(0, kBlockBytes, 2 * kBlockBytes, 3 * kBlockBytes, 4 * kBlockBytes,
                                        5 * kBlockBytes, 6 * kBlockBytes, 7 * kBlockBytes);
  // Per 128-bit lane: the low halves (d) to bytes 0..7, the high halves (m) to 8..15.
  const __m256i pick = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0, 1, 4, 5, 8, 9, 12,
                                        13, 2, 3, 6, 7, 10, 11, 14, 15);
  const __m256i words = _mm256_i32gather_epi32(reinterpret_cast<const int*>(p), idx, 1);
  const __m256i dm = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(words, pick), 0xD8);
  dw = _mm256_cvtph_ps(_mm256_castsi256_si128(dm));
  mw = _mm256_cvtph_ps(_mm256_extracti128_si256(dm, 1));
}

// One row at a time: pairing rows to share activation loads gained nothing in cache and
// cost 2.5× from DRAM on Q8_0 (612-byte rows: two interleaved streams defeat the
// prefetcher). Blocks go 8 at a time: their scales as vectors (scales_x8), dw·dx for the 8
// blocks in one multiply, the mw·s offsets in one FMA; the rest block by block.
template <size_t kBlockBytes, bool kHasMin, class Decode>
inline void dot_rows(const uint8_t* w, size_t row_bytes, int64_t rows, const I16ActRow& act, int64_t n, float* y,
                     Decode decode) {
  const int64_t nb = n / kQK;
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* p = w + size_t(r) * row_bytes;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), macc = _mm256_setzero_ps();
    float mins = 0.0f;
    int64_t b = 0;
    for (; b + 8 <= nb; b += 8, p += 8 * kBlockBytes) {
      __m256 dw, mw;
      scales_x8<kBlockBytes>(p, dw, mw);
      const __m256 scale = _mm256_mul_ps(dw, _mm256_loadu_ps(act.d + b));
      if constexpr (kHasMin) macc = _mm256_fmadd_ps(mw, _mm256_loadu_ps(act.s + b), macc);
      const int16_t* q = act.q + b * kQK;
      for (int i = 0; i < 8; i += 2) {
        __m256i lo, hi;
        float unused_d, unused_m;
        decode(p + i * kBlockBytes, lo, hi, unused_d, unused_m);
        __m256i sum = _mm256_add_epi32(_mm256_madd_epi16(lo, loadu256(q + i * kQK)),
                                       _mm256_madd_epi16(hi, loadu256(q + i * kQK + 16)));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_permutevar8x32_ps(scale, _mm256_set1_epi32(i)), acc0);
        decode(p + (i + 1) * kBlockBytes, lo, hi, unused_d, unused_m);
        sum = _mm256_add_epi32(_mm256_madd_epi16(lo, loadu256(q + (i + 1) * kQK)),
                               _mm256_madd_epi16(hi, loadu256(q + (i + 1) * kQK + 16)));
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_permutevar8x32_ps(scale, _mm256_set1_epi32(i + 1)),
                               acc1);
      }
    }
    for (; b < nb; ++b, p += kBlockBytes) {
      const int16_t* q = act.q + b * kQK;
      block_dot<kHasMin>(p, loadu256(q), loadu256(q + 16), act.d[b], act.s[b], acc0, mins, decode);
    }
    y[r] = hsum(_mm256_add_ps(acc0, acc1)) + (hsum(macc) + mins);
  }
}

// 16 packed bytes → (low nibbles, high nibbles) as 16 int16 lanes each.
inline void nibbles_i16(const uint8_t* qs, __m256i& lo, __m256i& hi) {
  const __m128i b = loadu128(qs), m = _mm_set1_epi8(0x0F);
  lo = _mm256_cvtepu8_epi16(_mm_and_si128(b, m));
  hi = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(b, 4), m));
}

}  // namespace

void quantize_act_i16(const float* x, int64_t n, int16_t* q, float* d, float* s) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    const __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8), v2 = _mm256_loadu_ps(xb + 16),
                 v3 = _mm256_loadu_ps(xb + 24);
    const __m256 a = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, abs_mask), _mm256_and_ps(v1, abs_mask)),
                                   _mm256_max_ps(_mm256_and_ps(v2, abs_mask), _mm256_and_ps(v3, abs_mask)));
    const float amax = hmax(a);
    const float idf = amax > 0.0f ? kI16Max / amax : 0.0f;
    d[b] = amax / kI16Max;
    s[b] = hsum(_mm256_add_ps(_mm256_add_ps(v0, v1), _mm256_add_ps(v2, v3)));
    const __m256 id = _mm256_set1_ps(idf);
    // packs interleaves 128-bit lanes: (0..3, 8..11, 4..7, 12..15); permute restores order.
    const __m256i p01 = _mm256_permute4x64_epi64(_mm256_packs_epi32(round_clamp(v0, id), round_clamp(v1, id)), 0xD8);
    const __m256i p23 = _mm256_permute4x64_epi64(_mm256_packs_epi32(round_clamp(v2, id), round_clamp(v3, id)), 0xD8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * kQK), p01);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * kQK + 16), p23);
  }
}

// Q4_0: d f16 | qs[16]; c = nibble − 8.
void dot_rows_i16_q4_0(const uint8_t* w, size_t row_bytes, int64_t rows, const I16ActRow& act, int64_t n, float* y) {
  dot_rows<18, false>(w, row_bytes, rows, act, n, y, [](const uint8_t* p, __m256i& lo, __m256i& hi, float& dw, float& mw) {
    nibbles_i16(p + 2, lo, hi);
    lo = _mm256_sub_epi16(lo, _mm256_set1_epi16(8));
    hi = _mm256_sub_epi16(hi, _mm256_set1_epi16(8));
    dw = f16_at(p);
    mw = 0.0f;
  });
}

// Q4_1: d f16 | m f16 | qs[16]; c = nibble, w = c·d + m.
void dot_rows_i16_q4_1(const uint8_t* w, size_t row_bytes, int64_t rows, const I16ActRow& act, int64_t n, float* y) {
  dot_rows<20, true>(w, row_bytes, rows, act, n, y, [](const uint8_t* p, __m256i& lo, __m256i& hi, float& dw, float& mw) {
    nibbles_i16(p + 4, lo, hi);
    dw = f16_at(p);
    mw = f16_at(p + 2);
  });
}

// Q8_0: d f16 | qs int8[32].
void dot_rows_i16_q8_0(const uint8_t* w, size_t row_bytes, int64_t rows, const I16ActRow& act, int64_t n, float* y) {
  dot_rows<34, false>(w, row_bytes, rows, act, n, y, [](const uint8_t* p, __m256i& lo, __m256i& hi, float& dw, float& mw) {
    lo = _mm256_cvtepi8_epi16(loadu128(p + 2));
    hi = _mm256_cvtepi8_epi16(loadu128(p + 18));
    dw = f16_at(p);
    mw = 0.0f;
  });
}

}  // namespace imp::avx2
