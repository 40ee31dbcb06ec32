// AVX2 fused decode × F32-activation dot products (see f32act.h) for Q4_0, Q4_1, Q8_0.
// Block layouts: formats/q4_0.h, q4_1.h, q8_0.h (spec §2.3). Blocks sit at unaligned
// addresses.
//
// Decode without byte shuffles: a block's codes are read as 8 int32 lanes, lane i holding
// the codes of elements 4i .. 4i+3 in its bytes 0..3 (Q8_0: the 32 bytes as they are; Q4:
// the 16 packed bytes in both halves, the upper half shifted right by 4 so it sees the high
// nibbles, elements 16 + …). Byte j of every lane, isolated by shifts and a mask (ports
// 0/1, not the shuffle port the int8 kernels saturate), is the code of element 4i + j —
// hence the activations' 4×8 transposed block order (f32act.h).
#include "backends/cpu/avx2_util.h"
#include "backends/cpu/f32act.h"
#include "formats/q4_0.h"
#include "formats/q4_1.h"
#include "formats/q8_0.h"

namespace imp::avx2 {
namespace {

constexpr int kQK = 32;

// Code byte j of every int32 lane, as float: unsigned nibbles (kBits 4) or signed bytes.
template <int j, int kBits>
inline __m256 code_lanes(__m256i v) {
  if constexpr (kBits == 4) {
    return _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(v, 8 * j), _mm256_set1_epi32(0x0F)));
  } else {
    return _mm256_cvtepi32_ps(_mm256_srai_epi32(_mm256_slli_epi32(v, 24 - 8 * j), 24));
  }
}

// Σ_b Σ_e (code_be·d_b + m_b)·x_be; `decode(block, v, d, m)` fills the lanes and scalars.
template <size_t kBlockBytes, int kBits, class Decode>
inline float dot_lanes(const uint8_t* w, const float* xt, int64_t nb, Decode decode) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(),
         acc3 = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b, w += kBlockBytes, xt += kQK) {
    __m256i v;
    float d, m;
    decode(w, v, d, m);
    const __m256 vd = _mm256_set1_ps(d), vm = _mm256_set1_ps(m);
    acc0 = _mm256_fmadd_ps(_mm256_fmadd_ps(code_lanes<0, kBits>(v), vd, vm), _mm256_loadu_ps(xt), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_fmadd_ps(code_lanes<1, kBits>(v), vd, vm), _mm256_loadu_ps(xt + 8), acc1);
    acc2 = _mm256_fmadd_ps(_mm256_fmadd_ps(code_lanes<2, kBits>(v), vd, vm), _mm256_loadu_ps(xt + 16), acc2);
    acc3 = _mm256_fmadd_ps(_mm256_fmadd_ps(code_lanes<3, kBits>(v), vd, vm), _mm256_loadu_ps(xt + 24), acc3);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
}

// 16 packed nibble bytes → lanes 0..3 see the low nibbles, lanes 4..7 the high ones.
inline __m256i nibble_lanes(const uint8_t* qs) {
  return _mm256_srlv_epi32(_mm256_broadcastsi128_si256(loadu128(qs)), _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
}

}  // namespace

// Q4_0: d f16 | qs[16];  w = (q − 8)·d = q·d + (−8d)  (−8d is exact: a power-of-two factor)
float dot_f32act_q4_0(const ConstRowPlanes& w, const void* act, int64_t n) {
  return dot_lanes<sizeof(BlockQ4_0), 4>(static_cast<const uint8_t*>(w.data), static_cast<const float*>(act),
                                         n / kQK, [](const uint8_t* p, __m256i& v, float& d, float& m) {
    v = nibble_lanes(p + 2);
    d = f16_at(p);
    m = -8.0f * d;
  });
}

// Q4_1: d f16 | m f16 | qs[16];  w = q·d + m
float dot_f32act_q4_1(const ConstRowPlanes& w, const void* act, int64_t n) {
  return dot_lanes<sizeof(BlockQ4_1), 4>(static_cast<const uint8_t*>(w.data), static_cast<const float*>(act),
                                         n / kQK, [](const uint8_t* p, __m256i& v, float& d, float& m) {
    v = nibble_lanes(p + 4);
    d = f16_at(p);
    m = f16_at(p + 2);
  });
}

// Q8_0: d f16 | qs int8[32];  w = q·d
float dot_f32act_q8_0(const ConstRowPlanes& w, const void* act, int64_t n) {
  return dot_lanes<sizeof(BlockQ8_0), 8>(static_cast<const uint8_t*>(w.data), static_cast<const float*>(act),
                                         n / kQK, [](const uint8_t* p, __m256i& v, float& d, float& m) {
    v = loadu256(p + 2);
    d = f16_at(p);
    m = 0.0f;
  });
}

}  // namespace imp::avx2
