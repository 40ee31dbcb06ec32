// AVX2 quantizers for the activation formats Q8_0, Q8_1 (32 elements) and Q8_K (256).
// Layouts and reference rules: formats/q8_0.h, formats/q8_1.h, formats/q8_k.h (spec §3.2,
// §3.4). These must write the SAME BYTES as the scalar references, so they copy their
// rounding exactly:
//   Q8_0/Q8_1: amax, d = amax/127, id = 1/d in fp32 scalars; q = roundf(x·id) — halves
//              away from zero, which vroundps has no mode for (ggml's AVX2 path rounds
//              to even here and so differs from its own reference at ties);
//   Q8_K:      max = signed x of largest |x| (first wins), iscale = −127/max,
//              q = min(127, nearest_int(iscale·x)) — nearest-even, i.e. vcvtps2dq under
//              the default MXCSR rounding.
// NaN inputs are outside the contract (the references' casts of NaN are themselves
// platform behaviour); every finite input gives identical bytes.
#include <cmath>

#include "backends/cpu/avx2_util.h"
#include "backends/cpu/row_kernels_avx2.h"
#include "formats/f16.h"
#include "formats/q8_0.h"
#include "formats/q8_1.h"
#include "formats/q8_k.h"

namespace imp::avx2 {
namespace {

inline __m256 abs_ps(__m256 v) { return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF))); }

// C roundf on every lane: t = trunc(v); v − t is exact, and |v − t| ≥ 0.5 moves t one unit
// away from zero. (floor(|v| + 0.5) would be wrong for 0.49999997, whose sum rounds up.)
inline __m256 roundf_ps(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 frac = abs_ps(_mm256_sub_ps(v, t));
  const __m256 away = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  const __m256 sign = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(int(0x80000000u))));
  const __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), sign);
  return _mm256_add_ps(t, _mm256_and_ps(away, one));
}

// Four vectors of 8 int32 (all in [−128, 127]) → 32 int8 in element order.
inline __m256i pack_i32x32_to_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b);
  const __m256i cd = _mm256_packs_epi32(c, d);
  const __m256i abcd = _mm256_packs_epi16(ab, cd);
  // packs works per 128-bit lane: undo the interleave of the four sources.
  return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// max |x[0..31]| with fmax semantics (a NaN lane never wins, as in std::fmax).
inline float amax32(const float* x) {
  __m256 m = _mm256_setzero_ps();
  for (int k = 0; k < 32; k += 8) m = _mm256_max_ps(abs_ps(_mm256_loadu_ps(x + k)), m);
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Codes of one 32-element Q8_0/Q8_1 block: int8(roundf(x·id)), as 4×8 int32 and packed.
struct Codes32 {
  __m256i i32[4];
  __m256i packed;
};

inline Codes32 round_codes32(const float* x, float id) {
  Codes32 c;
  const __m256 vid = _mm256_set1_ps(id);
  for (int k = 0; k < 4; ++k) {
    c.i32[k] = _mm256_cvtps_epi32(roundf_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), vid)));
  }
  c.packed = pack_i32x32_to_i8(c.i32[0], c.i32[1], c.i32[2], c.i32[3]);
  return c;
}

}  // namespace

void quantize_row_q8_0(const float* src, const RowPlanes& dst, int64_t n) {
  auto* out = static_cast<uint8_t*>(dst.data);
  for (int64_t b = 0; b < n / kQK8_0; ++b, out += sizeof(BlockQ8_0)) {
    const float* x = src + b * kQK8_0;
    const float d = amax32(x) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_u16(out, f32_to_f16(d));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 2), round_codes32(x, id).packed);
  }
}

void quantize_row_q8_1(const float* src, const RowPlanes& dst, int64_t n) {
  auto* out = static_cast<uint8_t*>(dst.data);
  for (int64_t b = 0; b < n / kQK8_1; ++b, out += sizeof(BlockQ8_1)) {
    const float* x = src + b * kQK8_1;
    const float d = amax32(x) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const Codes32 c = round_codes32(x, id);
    const int sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(c.i32[0], c.i32[1]),
                                              _mm256_add_epi32(c.i32[2], c.i32[3])));
    store_u16(out, f32_to_f16(d));
    store_u16(out + 2, f32_to_f16(float(sum) * d));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 4), c.packed);
  }
}

void quantize_row_q8_k(const float* src, const RowPlanes& dst, int64_t n) {
  auto* out = static_cast<uint8_t*>(dst.data);
  for (int64_t b = 0; b < n / kQK_K; ++b, out += sizeof(BlockQ8_K)) {
    const float* x = src + b * kQK_K;
    __m256 m = _mm256_setzero_ps();
    for (int k = 0; k < kQK_K; k += 8) m = _mm256_max_ps(abs_ps(_mm256_loadu_ps(x + k)), m);
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    const float amax = _mm_cvtss_f32(s);
    BlockQ8_K blk{};
    if (amax != 0) {
      // The reference keeps the first x with |x| == amax (strict > while scanning).
      float max = 0;
      for (int j = 0; j < kQK_K; ++j) {
        if (std::fabs(x[j]) == amax) {
          max = x[j];
          break;
        }
      }
      const float iscale = -127.0f / max;
      const __m256 vis = _mm256_set1_ps(iscale);
      const __m256i cap = _mm256_set1_epi32(127);
      __m256i quads[kQK_K / 32];  // per 32 codes: 8 lanes of 4-element sums
      for (int k = 0; k < kQK_K / 32; ++k) {
        __m256i q[4];
        for (int v = 0; v < 4; ++v) {
          const __m256 p = _mm256_mul_ps(_mm256_loadu_ps(x + 32 * k + 8 * v), vis);
          q[v] = _mm256_min_epi32(_mm256_cvtps_epi32(p), cap);
        }
        const __m256i packed = pack_i32x32_to_i8(q[0], q[1], q[2], q[3]);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(blk.qs + 32 * k), packed);
        quads[k] = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), packed), _mm256_set1_epi16(1));
      }
      // bsums[2k] = lanes 0..3 of quads[k], bsums[2k+1] = lanes 4..7.
      for (int k = 0; k < kQK_K / 32; k += 4) {
        const __m256i lo = _mm256_hadd_epi32(quads[k], quads[k + 1]);
        const __m256i hi = _mm256_hadd_epi32(quads[k + 2], quads[k + 3]);
        // [k, k+1, k+2, k+3 first halves | the same four second halves]
        alignas(32) int32_t sums[8];
        _mm256_store_si256(reinterpret_cast<__m256i*>(sums), _mm256_hadd_epi32(lo, hi));
        for (int i = 0; i < 4; ++i) {
          blk.bsums[2 * (k + i)] = int16_t(sums[i]);
          blk.bsums[2 * (k + i) + 1] = int16_t(sums[4 + i]);
        }
      }
      blk.d = 1 / iscale;
    }
    std::memcpy(out, &blk, sizeof blk);
  }
}

}  // namespace imp::avx2
