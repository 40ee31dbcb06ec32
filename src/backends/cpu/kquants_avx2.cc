// AVX2 kernels for the 256-element super-block types Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS,
// dotted with Q8_K activations. Layouts: formats/q2_k.h … formats/iq4_xs.h (spec §2.4).
//
// Element e of a super-block: h = e/128, g = (e%128)/32, l = e%32. The 2-bit planes of
// Q2_K/Q3_K/Q6_K put elements 128h + 32g + l at bits 2g of byte l of the h-th 32-byte
// run, so one 32-byte load and a shift by 2g yield 32 consecutive codes (two 16-element
// sub-blocks: the low 128-bit lane is the first).
//   dequantize: per sub-block, dl = d·scale and ml = dmin·min in scalar fp32 exactly as
//               the references, then dl·float(q) (− ml) per element — bit-identical.
//   vec_dot:    codes kept unsigned (offsets such as Q6_K's −32 are taken out through
//               Q8_K's bsums), vpmaddubsw against the int8 activations, vpmaddwd with the
//               sub-block scales: an exact int32 sum per super-block, then
//               d·d_a·float(isum) − dmin·d_a·float(summs) as the references.
#include "backends/cpu/avx2_util.h"
#include "backends/cpu/row_kernels_avx2.h"
#include "formats/f16.h"
#include "formats/iq4_nl.h"
#include "formats/iq4_xs.h"
#include "formats/kquant_common.h"
#include "formats/q2_k.h"
#include "formats/q3_k.h"
#include "formats/q4_k.h"
#include "formats/q5_k.h"
#include "formats/q6_k.h"
#include "formats/q8_k.h"

namespace imp::avx2 {
namespace {

// Q8_K field offsets.
constexpr int kQ8KQs = 4;
constexpr int kQ8KBsums = 4 + kQK_K;

// int16 vector: the low 8 lanes s0, the high 8 lanes s1 (scales of two 16-element halves).
inline __m256i scale_pair16(int s0, int s1) {
  return _mm256_set_m128i(_mm_set1_epi16(int16_t(s1)), _mm_set1_epi16(int16_t(s0)));
}

// Σ q·a over 32 elements (q unsigned), each 16-element half weighted by its scale.
inline __m256i weighted_dot32(__m256i q, const uint8_t* a, __m256i scales16) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(q, loadu256(a)), scales16);
}

// 32 codes (bytes) → y[0..31] = dl·float(q) − ml, each 16-element half with its own dl, ml.
inline void store_halves_minus(__m256i q, const float* dl, const float* ml, float* y) {
  store_scaled_minus_i8x16(_mm256_castsi256_si128(q), dl[0], ml[0], y);
  store_scaled_minus_i8x16(_mm256_extracti128_si256(q, 1), dl[1], ml[1], y + 16);
}

inline void store_halves(__m256i q, float dl0, float dl1, float* y) {
  store_scaled_i8x16(_mm256_castsi256_si128(q), dl0, y);
  store_scaled_i8x16(_mm256_extracti128_si256(q, 1), dl1, y + 16);
}

inline __m256i two_bit_codes(__m256i bytes, int g) {
  return _mm256_and_si256(_mm256_srli_epi16(bytes, 2 * g), _mm256_set1_epi8(3));
}

// Q3_K 6-bit scale of sub-block t, minus 32 (spec §2.4).
inline int q3_scale(const uint8_t* s, int t) {
  const int low4 = t < 8 ? (s[t] & 0xF) : (s[t - 8] >> 4);
  const int high2 = (s[8 + t % 4] >> (2 * (t / 4))) & 3;
  return (low4 | (high2 << 4)) - 32;
}

inline int iq4_xs_scale(const uint8_t* blk, int t) {
  const int scales_h = load_u16(blk + 2);
  return (((blk[4 + t / 2] >> (4 * (t % 2))) & 0xF) | (((scales_h >> (2 * t)) & 3) << 4)) - 32;
}

}  // namespace

// ---- Q2_K: scales[16] | qs[64] | d | dmin;  y = (d·lo(sc))·q − dmin·hi(sc) ------------------
void dequantize_row_q2_k(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  for (int64_t b = 0; b < n / kQK_K; ++b, in += sizeof(BlockQ2_K)) {
    const float d = f16_at(in + 80), dmin = f16_at(in + 82);
    float* y = dst + b * kQK_K;
    for (int h = 0; h < 2; ++h) {
      const __m256i bytes = loadu256(in + 16 + 32 * h);
      for (int g = 0; g < 4; ++g) {
        const int t = 8 * h + 2 * g;
        const float dl[2] = {d * float(in[t] & 0xF), d * float(in[t + 1] & 0xF)};
        const float ml[2] = {dmin * float(in[t] >> 4), dmin * float(in[t + 1] >> 4)};
        store_halves_minus(two_bit_codes(bytes, g), dl, ml, y + 16 * t);
      }
    }
  }
}

float vec_dot_q2_k(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* x = static_cast<const uint8_t*>(w.data);
  const auto* y = static_cast<const uint8_t*>(act);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK_K; ++b, x += sizeof(BlockQ2_K), y += sizeof(BlockQ8_K)) {
    const __m128i sc = loadu128(x);
    const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc, 4), _mm_set1_epi8(0x0F)));
    const int summs = hsum_i32(_mm256_madd_epi16(mins, loadu256(y + kQ8KBsums)));
    __m256i isum = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i bytes = loadu256(x + 16 + 32 * h);
      for (int g = 0; g < 4; ++g) {
        const int t = 8 * h + 2 * g;
        const __m256i s = scale_pair16(x[t] & 0xF, x[t + 1] & 0xF);
        isum = _mm256_add_epi32(isum, weighted_dot32(two_bit_codes(bytes, g), y + kQ8KQs + 16 * t, s));
      }
    }
    const float da = load_f32(y);
    sum += (da * f16_at(x + 80)) * float(hsum_i32(isum)) - (da * f16_at(x + 82)) * float(summs);
  }
  return sum;
}

// ---- Q3_K: hmask[32] | qs[64] | scales[12] | d;  y = (d·S)·q, q = low2 + 4·hbit − 4 ---------
namespace {
// Unsigned codes (0..7) of elements 128h + 32g + 0..31.
inline __m256i q3_codes_u(__m256i qs_bytes, __m256i hmask, int h, int g) {
  const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hmask, 4 * h + g), _mm256_set1_epi8(1));
  return _mm256_or_si256(two_bit_codes(qs_bytes, g), _mm256_slli_epi16(hb, 2));
}
}  // namespace

void dequantize_row_q3_k(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  for (int64_t b = 0; b < n / kQK_K; ++b, in += sizeof(BlockQ3_K)) {
    const float d_all = f16_at(in + 108);
    const __m256i hmask = loadu256(in);
    float* y = dst + b * kQK_K;
    for (int h = 0; h < 2; ++h) {
      const __m256i bytes = loadu256(in + 32 + 32 * h);
      for (int g = 0; g < 4; ++g) {
        const int t = 8 * h + 2 * g;
        const __m256i q = _mm256_sub_epi8(q3_codes_u(bytes, hmask, h, g), _mm256_set1_epi8(4));
        store_halves(q, d_all * float(q3_scale(in + 96, t)), d_all * float(q3_scale(in + 96, t + 1)), y + 16 * t);
      }
    }
  }
}

// Σ_t S_t·Σ (q_u − 4)·a = Σ_t S_t·Σ q_u·a − 4·Σ_t S_t·bsums_t.
float vec_dot_q3_k(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* x = static_cast<const uint8_t*>(w.data);
  const auto* y = static_cast<const uint8_t*>(act);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK_K; ++b, x += sizeof(BlockQ3_K), y += sizeof(BlockQ8_K)) {
    alignas(32) int16_t s[16];
    for (int t = 0; t < 16; ++t) s[t] = int16_t(q3_scale(x + 96, t));
    const __m256i s16 = _mm256_load_si256(reinterpret_cast<const __m256i*>(s));
    const int offset = hsum_i32(_mm256_madd_epi16(s16, loadu256(y + kQ8KBsums)));
    const __m256i hmask = loadu256(x);
    __m256i isum = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i bytes = loadu256(x + 32 + 32 * h);
      for (int g = 0; g < 4; ++g) {
        const int t = 8 * h + 2 * g;
        isum = _mm256_add_epi32(
            isum, weighted_dot32(q3_codes_u(bytes, hmask, h, g), y + kQ8KQs + 16 * t, scale_pair16(s[t], s[t + 1])));
      }
    }
    sum += f16_at(x + 108) * load_f32(y) * float(hsum_i32(isum) - 4 * offset);
  }
  return sum;
}

// ---- Q4_K / Q5_K: d | dmin | scales[12] | (qh[32]) | qs[128];  y = (d·sc)·q − dmin·m ----------
namespace {
// Codes of sub-blocks 2c (first) and 2c+1 (second), 32 each; Q5_K adds its qh bit t << 4.
struct CodePair {
  __m256i first, second;
};

inline CodePair q4_codes(const uint8_t* qs, int c) {
  const __m256i bytes = loadu256(qs + 32 * c);
  const __m256i m = _mm256_set1_epi8(0x0F);
  return {_mm256_and_si256(bytes, m), _mm256_and_si256(_mm256_srli_epi16(bytes, 4), m)};
}

inline CodePair q5_codes(const uint8_t* qs, __m256i qh, int c) {
  CodePair p = q4_codes(qs, c);
  const __m256i one = _mm256_set1_epi8(1);
  p.first = _mm256_or_si256(p.first, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one), 4));
  p.second = _mm256_or_si256(p.second, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one), 4));
  return p;
}

template <bool kQ5>
void dequantize_row_k4(const uint8_t* in, float* dst, int64_t n, int block_bytes) {
  for (int64_t b = 0; b < n / kQK_K; ++b, in += block_bytes) {
    const float d = f16_at(in), dmin = f16_at(in + 2);
    float* y = dst + b * kQK_K;
    for (int c = 0; c < 4; ++c) {
      const CodePair p = kQ5 ? q5_codes(in + 48, loadu256(in + 16), c) : q4_codes(in + 16, c);
      for (int k = 0; k < 2; ++k) {
        uint8_t sc, m;
        get_scale_min_k4(2 * c + k, in + 4, &sc, &m);
        const float dl[2] = {d * float(sc), d * float(sc)};
        const float ml[2] = {dmin * float(m), dmin * float(m)};
        store_halves_minus(k ? p.second : p.first, dl, ml, y + 32 * (2 * c + k));
      }
    }
  }
}

template <bool kQ5>
float vec_dot_k4(const uint8_t* x, const uint8_t* y, int64_t n, int block_bytes) {
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK_K; ++b, x += block_bytes, y += sizeof(BlockQ8_K)) {
    alignas(32) int16_t bsums[16];
    std::memcpy(bsums, y + kQ8KBsums, sizeof bsums);
    __m256i isum = _mm256_setzero_si256();
    int summs = 0;
    for (int c = 0; c < 4; ++c) {
      const CodePair p = kQ5 ? q5_codes(x + 48, loadu256(x + 16), c) : q4_codes(x + 16, c);
      for (int k = 0; k < 2; ++k) {
        const int t = 2 * c + k;
        uint8_t sc, m;
        get_scale_min_k4(t, x + 4, &sc, &m);
        isum = _mm256_add_epi32(isum, weighted_dot32(k ? p.second : p.first, y + kQ8KQs + 32 * t, _mm256_set1_epi16(sc)));
        summs += int(m) * (bsums[2 * t] + bsums[2 * t + 1]);
      }
    }
    const float da = load_f32(y);
    sum += (f16_at(x) * da) * float(hsum_i32(isum)) - (f16_at(x + 2) * da) * float(summs);
  }
  return sum;
}
}  // namespace

void dequantize_row_q4_k(const ConstRowPlanes& src, float* dst, int64_t n) {
  dequantize_row_k4<false>(static_cast<const uint8_t*>(src.data), dst, n, sizeof(BlockQ4_K));
}

float vec_dot_q4_k(const ConstRowPlanes& w, const void* act, int64_t n) {
  return vec_dot_k4<false>(static_cast<const uint8_t*>(w.data), static_cast<const uint8_t*>(act), n,
                           sizeof(BlockQ4_K));
}

void dequantize_row_q5_k(const ConstRowPlanes& src, float* dst, int64_t n) {
  dequantize_row_k4<true>(static_cast<const uint8_t*>(src.data), dst, n, sizeof(BlockQ5_K));
}

float vec_dot_q5_k(const ConstRowPlanes& w, const void* act, int64_t n) {
  return vec_dot_k4<true>(static_cast<const uint8_t*>(w.data), static_cast<const uint8_t*>(act), n,
                          sizeof(BlockQ5_K));
}

// ---- Q6_K: ql[128] | qh[64] | scales int8[16] | d;  y = (d·sc)·(q6 − 32) -----------------------
namespace {
// Unsigned codes (0..63) of elements 128h + 32g + 0..31.
inline __m256i q6_codes_u(const uint8_t* blk, int h, int g) {
  const __m256i ql = loadu256(blk + 64 * h + 32 * (g & 1));
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i low4 = g < 2 ? _mm256_and_si256(ql, m4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), m4);
  const __m256i high2 = two_bit_codes(loadu256(blk + 128 + 32 * h), g);
  return _mm256_or_si256(low4, _mm256_slli_epi16(high2, 4));
}
}  // namespace

void dequantize_row_q6_k(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  for (int64_t b = 0; b < n / kQK_K; ++b, in += sizeof(BlockQ6_K)) {
    const float d = f16_at(in + 208);
    const auto* sc = reinterpret_cast<const int8_t*>(in + 192);
    float* y = dst + b * kQK_K;
    for (int h = 0; h < 2; ++h) {
      for (int g = 0; g < 4; ++g) {
        const int t = 8 * h + 2 * g;
        const __m256i q = _mm256_sub_epi8(q6_codes_u(in, h, g), _mm256_set1_epi8(32));
        store_halves(q, d * float(sc[t]), d * float(sc[t + 1]), y + 16 * t);
      }
    }
  }
}

float vec_dot_q6_k(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* x = static_cast<const uint8_t*>(w.data);
  const auto* y = static_cast<const uint8_t*>(act);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK_K; ++b, x += sizeof(BlockQ6_K), y += sizeof(BlockQ8_K)) {
    const auto* sc = reinterpret_cast<const int8_t*>(x + 192);
    const __m256i s16 = _mm256_cvtepi8_epi16(loadu128(sc));
    const int offset = hsum_i32(_mm256_madd_epi16(s16, loadu256(y + kQ8KBsums)));
    __m256i isum = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      for (int g = 0; g < 4; ++g) {
        const int t = 8 * h + 2 * g;
        isum = _mm256_add_epi32(isum, weighted_dot32(q6_codes_u(x, h, g), y + kQ8KQs + 16 * t, scale_pair16(sc[t], sc[t + 1])));
      }
    }
    sum += f16_at(x + 208) * load_f32(y) * float(hsum_i32(isum) - 32 * offset);
  }
  return sum;
}

// ---- IQ4_XS: d | scales_h u16 | scales_l[4] | qs[128];  y = (d·(ls − 32))·KNL[q] ---------------
namespace {
inline __m256i iq4_xs_codes(const uint8_t* blk, int t, __m256i table) {
  return _mm256_shuffle_epi8(table, nibbles_lo_then_hi(blk + 8 + 16 * t));
}
}  // namespace

void dequantize_row_iq4_xs(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  const __m256i table = _mm256_broadcastsi128_si256(loadu128(kIq4nlValues));
  for (int64_t b = 0; b < n / kQK_K; ++b, in += sizeof(BlockIq4_XS)) {
    const float d = f16_at(in);
    for (int t = 0; t < kQK_K / 32; ++t) {
      store_scaled_i8x32(iq4_xs_codes(in, t, table), d * float(iq4_xs_scale(in, t)), dst + b * kQK_K + 32 * t);
    }
  }
}

// KNL values are signed: |q| against a·sign(q) keeps vpmaddubsw exact (127·127·2 < 2^15).
float vec_dot_iq4_xs(const ConstRowPlanes& w, const void* act, int64_t n) {
  const auto* x = static_cast<const uint8_t*>(w.data);
  const auto* y = static_cast<const uint8_t*>(act);
  const __m256i table = _mm256_broadcastsi128_si256(loadu128(kIq4nlValues));
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK_K; ++b, x += sizeof(BlockIq4_XS), y += sizeof(BlockQ8_K)) {
    __m256i isum = _mm256_setzero_si256();
    for (int t = 0; t < kQK_K / 32; ++t) {
      const __m256i q = iq4_xs_codes(x, t, table);
      const __m256i a = loadu256(y + kQ8KQs + 32 * t);
      const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(a, q));
      isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, _mm256_set1_epi16(int16_t(iq4_xs_scale(x, t)))));
    }
    sum += f16_at(x) * load_f32(y) * float(hsum_i32(isum));
  }
  return sum;
}

}  // namespace imp::avx2
