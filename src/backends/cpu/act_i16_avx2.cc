// AVX2 kernels of the 16-bit activation path (act_i16.h): the activation quantizer and
// the weight-row dots for Q4_0, Q4_1, Q8_0. Block layouts: formats/q4_0.h, q4_1.h, q8_0.h.
//
// Per 32-block: the weight codes are widened to 2 × 16 int16 lanes with shifts and masks
// (the activations come in the matching kernel order, act_i16.h), vpmaddwd against the
// activation codes gives 8 exact int32 partial sums, converted once and FMA'd into an FP32
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

// 8 exact int32 partial sums of one block: codes (c0, c1) against q (kernel order).
inline __m256 block_sums(__m256i c0, __m256i c1, const int16_t* q) {
  return _mm256_cvtepi32_ps(
      _mm256_add_epi32(_mm256_madd_epi16(c0, loadu256(q)), _mm256_madd_epi16(c1, loadu256(q + 16))));
}

// Rows one after the other (pairing rows to share activation loads gained nothing in
// cache and cost 2.5× from DRAM on Q8_0: two interleaved 612-byte-row streams defeat the
// prefetcher). Blocks 8 at a time: their scales as vectors (scales_x8), dw·dx for the 8
// blocks in one multiply, the mw·s offsets in one FMA (kGatherScales); the remaining
// blocks one by one. `codes(p, c0, c1)` widens a block's
// codes to int16 in the kernel order; lanes 4..7 of the sums may carry a constant factor
// (Q4: 256), undone once per row by `lane_scale`.
template <size_t kBlockBytes, bool kHasMin, bool kGatherScales, class Codes, class Weight>
inline void dot_rows(const uint8_t* w, size_t row_bytes, int64_t rows, const I16ActRow& act, int64_t n, float* y,
                     __m256 lane_scale, Codes codes, Weight weight) {
  const int64_t nb = n / kQK;
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* p = w + size_t(r) * row_bytes;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), macc = _mm256_setzero_ps();
    float mins = 0.0f;
    int64_t b = 0;
    for (; kGatherScales && b + 8 <= nb; b += 8, p += 8 * kBlockBytes) {
      __m256 dw, mw;
      scales_x8<kBlockBytes>(p, dw, mw);
      const __m256 scv = _mm256_mul_ps(dw, _mm256_loadu_ps(act.d + b));
      if constexpr (kHasMin) macc = _mm256_fmadd_ps(mw, _mm256_loadu_ps(act.s + b), macc);
      const int16_t* q = act.q + b * kQK;
      for (int i = 0; i < 8; i += 2) {
        __m256i c0, c1;
        codes(p + i * kBlockBytes, c0, c1);
        acc0 = _mm256_fmadd_ps(block_sums(c0, c1, q + i * kQK), _mm256_permutevar8x32_ps(scv, _mm256_set1_epi32(i)), acc0);
        codes(p + (i + 1) * kBlockBytes, c0, c1);
        acc1 = _mm256_fmadd_ps(block_sums(c0, c1, q + (i + 1) * kQK), _mm256_permutevar8x32_ps(scv, _mm256_set1_epi32(i + 1)), acc1);
      }
    }
    for (; b < nb; ++b, p += kBlockBytes) {
      __m256i c0, c1;
      codes(p, c0, c1);
      acc0 = _mm256_fmadd_ps(block_sums(c0, c1, act.q + b * kQK), _mm256_set1_ps(f16_at(p) * act.d[b]), acc0);
      if constexpr (kHasMin) mins += f16_at(p + 2) * act.s[b];
    }
    const uint8_t* row = w + size_t(r) * row_bytes;
    for (int32_t o = 0; o < act.n_out; ++o) {  // outliers: w_j·x_j, w_j decoded alone
      const int32_t idx = act.out_idx[o];
      mins += weight(row + size_t(idx / kQK) * kBlockBytes, idx % kQK) * act.out_x[o];
    }
    y[r] = hsum(_mm256_mul_ps(_mm256_add_ps(acc0, acc1), lane_scale)) + (hsum(macc) + mins);
  }
}

// A Q4 block's 16 code bytes (at qs) as int16 in the kQ4Pairs order: both 128-bit halves
// hold the 16 bytes; as int16, lane k of the low half masks byte 2k's low nibble (element
// 2k), lane k of the high half byte 2k+1's (element 2k+1, ×256); shifted right by 4, the
// high nibbles (elements 16 + …) the same way.
inline void q4_codes(const uint8_t* qs, __m256i& c0, __m256i& c1) {
  const __m256i v = _mm256_broadcastsi128_si256(loadu128(qs));
  const __m256i m = _mm256_setr_epi16(0x0F, 0x0F, 0x0F, 0x0F, 0x0F, 0x0F, 0x0F, 0x0F, 0x0F00, 0x0F00, 0x0F00, 0x0F00,
                                      0x0F00, 0x0F00, 0x0F00, 0x0F00);
  c0 = _mm256_and_si256(v, m);
  c1 = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);
}

// Element j (0..31) of a Q4 block's codes at qs: low nibbles first.
inline int q4_nibble(const uint8_t* qs, int j) { return j < 16 ? qs[j] & 0x0F : qs[j - 16] >> 4; }

inline __m256 q4_lane_scale() { return _mm256_setr_ps(1, 1, 1, 1, 0x1p-8f, 0x1p-8f, 0x1p-8f, 0x1p-8f); }

}  // namespace

int32_t quantize_act_i16(const float* x, int64_t n, int16_t* q, float* d, float* s, int32_t* out_idx, float* out_x) {
  int32_t n_out = 0;
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    const __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8), v2 = _mm256_loadu_ps(xb + 16),
                 v3 = _mm256_loadu_ps(xb + 24);
    float amax;
    const int j = i16_block_outlier(xb, &amax);
    const float idf = amax > 0.0f ? kI16Max / amax : 0.0f;
    d[b] = amax / kI16Max;
    const float sum = hsum(_mm256_add_ps(_mm256_add_ps(v0, v1), _mm256_add_ps(v2, v3)));
    s[b] = j >= 0 ? sum - xb[j] : sum;
    const __m256 id = _mm256_set1_ps(idf);
    // packs interleaves 128-bit lanes: (0..3, 8..11, 4..7, 12..15); permute restores order.
    const __m256i p01 = _mm256_permute4x64_epi64(_mm256_packs_epi32(round_clamp(v0, id), round_clamp(v1, id)), 0xD8);
    const __m256i p23 = _mm256_permute4x64_epi64(_mm256_packs_epi32(round_clamp(v2, id), round_clamp(v3, id)), 0xD8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * kQK), p01);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * kQK + 16), p23);
    if (j >= 0) {
      q[b * kQK + j] = 0;
      out_idx[n_out] = int32_t(b * kQK + j);
      out_x[n_out++] = xb[j];
    }
  }
  return n_out;
}

// Q4_0: d f16 | qs[16]; c = nibble − 8 (in the high half 256·nibble − 2048).
void dot_rows_i16_q4_0(const uint8_t* w, size_t row_bytes, int64_t rows, const I16ActRow& act, int64_t n, float* y) {
  dot_rows<18, false, true>(w, row_bytes, rows, act, n, y, q4_lane_scale(), [](const uint8_t* p, __m256i& c0, __m256i& c1) {
    const __m256i eight = _mm256_setr_epi16(8, 8, 8, 8, 8, 8, 8, 8, 0x800, 0x800, 0x800, 0x800, 0x800, 0x800, 0x800,
                                            0x800);
    q4_codes(p + 2, c0, c1);
    c0 = _mm256_sub_epi16(c0, eight);
    c1 = _mm256_sub_epi16(c1, eight);
  }, [](const uint8_t* p, int j) { return float(q4_nibble(p + 2, j) - 8) * f16_at(p); });
}

// Q4_1: d f16 | m f16 | qs[16]; c = nibble, w = c·d + m.
void dot_rows_i16_q4_1(const uint8_t* w, size_t row_bytes, int64_t rows, const I16ActRow& act, int64_t n, float* y) {
  dot_rows<20, true, true>(w, row_bytes, rows, act, n, y, q4_lane_scale(),
                     [](const uint8_t* p, __m256i& c0, __m256i& c1) { q4_codes(p + 4, c0, c1); },
                     [](const uint8_t* p, int j) { return float(q4_nibble(p + 4, j)) * f16_at(p) + f16_at(p + 2); });
}

// Q8_0: d f16 | qs int8[32], natural order: vpmovsxbw measured faster here than splitting
// even/odd bytes with shifts (kQ8Pairs: 3 shifts per 32 codes), and per-block scalar scales
// faster than the gather (34-byte stride: gathered words straddle cache lines) — 1.0 vs
// 1.8 ns per block on Zen 5.
void dot_rows_i16_q8_0(const uint8_t* w, size_t row_bytes, int64_t rows, const I16ActRow& act, int64_t n, float* y) {
  dot_rows<34, false, false>(w, row_bytes, rows, act, n, y, _mm256_set1_ps(1.0f), [](const uint8_t* p, __m256i& c0, __m256i& c1) {
    c0 = _mm256_cvtepi8_epi16(loadu128(p + 2));
    c1 = _mm256_cvtepi8_epi16(loadu128(p + 18));
  }, [](const uint8_t* p, int j) { return float(int8_t(p[2 + j])) * f16_at(p); });
}

}  // namespace imp::avx2
