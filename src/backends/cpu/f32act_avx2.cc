// AVX2 fused decode × F32-activation dot products (see f32act.h) for Q4_0, Q4_1, Q8_0.
// Block layouts: formats/q4_0.h, q4_1.h, q8_0.h (spec §2.3); the code unpacking is
// avx2_util.h's, shared with legacy_avx2.cc. Blocks sit at unaligned addresses.
#include "backends/cpu/avx2_util.h"
#include "backends/cpu/f32act.h"
#include "formats/q4_0.h"
#include "formats/q4_1.h"
#include "formats/q8_0.h"

namespace imp::avx2 {
namespace {

constexpr int kQK = 32;

// One decoded block: 32 int8 codes (element order), w = code·d + m.
struct BlockCodes {
  __m256i q;
  float d;
  float m;
};

// Σ_b Σ_j (q_bj·d_b + m_b)·x_bj over nb blocks of kBlockBytes each.
template <size_t kBlockBytes, class Decode>
inline float dot_f32_blocks(const uint8_t* w, const float* x, int64_t nb, Decode decode) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(),
         acc3 = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b, w += kBlockBytes, x += kQK) {
    const BlockCodes c = decode(w);
    const __m256 d = _mm256_set1_ps(c.d), m = _mm256_set1_ps(c.m);
    acc0 = _mm256_fmadd_ps(_mm256_fmadd_ps(i8x8_to_f32<0>(c.q), d, m), _mm256_loadu_ps(x), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_fmadd_ps(i8x8_to_f32<1>(c.q), d, m), _mm256_loadu_ps(x + 8), acc1);
    acc2 = _mm256_fmadd_ps(_mm256_fmadd_ps(i8x8_to_f32<2>(c.q), d, m), _mm256_loadu_ps(x + 16), acc2);
    acc3 = _mm256_fmadd_ps(_mm256_fmadd_ps(i8x8_to_f32<3>(c.q), d, m), _mm256_loadu_ps(x + 24), acc3);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
}

}  // namespace

// Q4_0: d f16 | qs[16];  w = (q − 8)·d
float dot_f32act_q4_0(const ConstRowPlanes& w, const void* act, int64_t n) {
  return dot_f32_blocks<sizeof(BlockQ4_0)>(static_cast<const uint8_t*>(w.data), static_cast<const float*>(act),
                                           n / kQK, [](const uint8_t* p) {
    return BlockCodes{_mm256_sub_epi8(nibbles_lo_then_hi(p + 2), _mm256_set1_epi8(8)), f16_at(p), 0.0f};
  });
}

// Q4_1: d f16 | m f16 | qs[16];  w = q·d + m
float dot_f32act_q4_1(const ConstRowPlanes& w, const void* act, int64_t n) {
  return dot_f32_blocks<sizeof(BlockQ4_1)>(static_cast<const uint8_t*>(w.data), static_cast<const float*>(act),
                                           n / kQK, [](const uint8_t* p) {
    return BlockCodes{nibbles_lo_then_hi(p + 4), f16_at(p), f16_at(p + 2)};
  });
}

// Q8_0: d f16 | qs int8[32];  w = q·d
float dot_f32act_q8_0(const ConstRowPlanes& w, const void* act, int64_t n) {
  return dot_f32_blocks<sizeof(BlockQ8_0)>(static_cast<const uint8_t*>(w.data), static_cast<const float*>(act),
                                           n / kQK, [](const uint8_t* p) {
    return BlockCodes{loadu256(p + 2), f16_at(p), 0.0f};
  });
}

}  // namespace imp::avx2
