// AVX2 kernels for the 32-element GGUF types: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL.
// Layouts: formats/q4_0.h … formats/iq4_nl.h (spec §2.3). Each block is unpacked into 32
// bytes in element order (low nibbles = elements 0..15, high nibbles = 16..31), then
//   dequantize: float(code) · d (+ m), with the references' roundings (no FMA);
//   vec_dot:    exact integer Σ code·q8 per block (8 int32 lanes), × (d_w·d_a) into an
//               FP32 accumulator — ggml's AVX2 scheme; agrees with the reference within
//               the FP32 rounding of the cross-block sum.
// Blocks sit at unaligned addresses (18/20/22/24/34 bytes): unaligned loads throughout,
// and no load reaches past the end of its block.
#include "backends/cpu/avx2_util.h"
#include "backends/cpu/row_kernels_avx2.h"
#include "formats/f16.h"
#include "formats/iq4_nl.h"
#include "formats/q4_0.h"
#include "formats/q4_1.h"
#include "formats/q5_0.h"
#include "formats/q5_1.h"
#include "formats/q8_0.h"
#include "formats/q8_1.h"

namespace imp::avx2 {
namespace {

constexpr int kQK = 32;

// Q5 codes: nibble | (qh bit j) << 4, still unsigned 0..31.
inline __m256i q5_codes(const uint8_t* qh_p, const uint8_t* qs_p) {
  uint32_t qh;
  std::memcpy(&qh, qh_p, sizeof qh);
  const __m256i hb = _mm256_and_si256(bytes_from_bits(qh), _mm256_set1_epi8(0x10));
  return _mm256_or_si256(nibbles_lo_then_hi(qs_p), hb);
}

inline __m256i iq4nl_codes(const uint8_t* qs_p) {
  const __m256i table = _mm256_broadcastsi128_si256(loadu128(kIq4nlValues));
  return _mm256_shuffle_epi8(table, nibbles_lo_then_hi(qs_p));
}

// acc += (d_w·d_a) · float(lanes)
inline __m256 accumulate(__m256 acc, __m256i lanes, float dw, float da) {
  return _mm256_fmadd_ps(_mm256_set1_ps(dw * da), _mm256_cvtepi32_ps(lanes), acc);
}

// Σ x·y for x unsigned (≤ 31), y signed, as 8 int32 lanes.
inline __m256i dot_u8_quads(__m256i x, __m256i y) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1));
}

}  // namespace

// ---- Q4_0: d f16 | qs[16];  y = float(q − 8)·d ------------------------------------------
void dequantize_row_q4_0(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  for (int64_t b = 0; b < n / kQK; ++b, in += sizeof(BlockQ4_0)) {
    const __m256i q = _mm256_sub_epi8(nibbles_lo_then_hi(in + 2), _mm256_set1_epi8(8));
    store_scaled_i8x32(q, f16_at(in), dst + b * kQK);
  }
}

float vec_dot_q4_0(const ConstRowPlanes& w, const void* act, int64_t n) {
  return dot_blocks<sizeof(BlockQ4_0), sizeof(BlockQ8_0)>(
      static_cast<const uint8_t*>(w.data), static_cast<const uint8_t*>(act), n / kQK,
      [](const uint8_t* x, const uint8_t* y, __m256 acc) {
        const __m256i qx = _mm256_sub_epi8(nibbles_lo_then_hi(x + 2), _mm256_set1_epi8(8));
        return accumulate(acc, dot_i8_quads(qx, loadu256(y + 2)), f16_at(x), f16_at(y));
      });
}

// ---- Q4_1: d f16 | m f16 | qs[16];  y = float(q)·d + m; activations Q8_1 -------------------
void dequantize_row_q4_1(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  for (int64_t b = 0; b < n / kQK; ++b, in += sizeof(BlockQ4_1)) {
    store_scaled_offset_i8x32(nibbles_lo_then_hi(in + 4), f16_at(in), f16_at(in + 2), dst + b * kQK);
  }
}

// Σ (q·d + m)·a = d·d_a·Σ q·qa + m·s, s = F16(d_a·Σ qa) from the Q8_1 block.
float vec_dot_q4_1(const ConstRowPlanes& w, const void* act, int64_t n) {
  float mins = 0.0f;
  const float dots = dot_blocks<sizeof(BlockQ4_1), sizeof(BlockQ8_1)>(
      static_cast<const uint8_t*>(w.data), static_cast<const uint8_t*>(act), n / kQK,
      [&mins](const uint8_t* x, const uint8_t* y, __m256 acc) {
        mins += f16_at(x + 2) * f16_at(y + 2);
        return accumulate(acc, dot_u8_quads(nibbles_lo_then_hi(x + 4), loadu256(y + 4)), f16_at(x), f16_at(y));
      });
  return dots + mins;
}

// ---- Q5_0: d f16 | qh u32 | qs[16];  y = float(q5 − 16)·d --------------------------------
void dequantize_row_q5_0(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  for (int64_t b = 0; b < n / kQK; ++b, in += sizeof(BlockQ5_0)) {
    const __m256i q = _mm256_sub_epi8(q5_codes(in + 2, in + 6), _mm256_set1_epi8(16));
    store_scaled_i8x32(q, f16_at(in), dst + b * kQK);
  }
}

float vec_dot_q5_0(const ConstRowPlanes& w, const void* act, int64_t n) {
  return dot_blocks<sizeof(BlockQ5_0), sizeof(BlockQ8_0)>(
      static_cast<const uint8_t*>(w.data), static_cast<const uint8_t*>(act), n / kQK,
      [](const uint8_t* x, const uint8_t* y, __m256 acc) {
        const __m256i qx = _mm256_sub_epi8(q5_codes(x + 2, x + 6), _mm256_set1_epi8(16));
        return accumulate(acc, dot_i8_quads(qx, loadu256(y + 2)), f16_at(x), f16_at(y));
      });
}

// ---- Q5_1: d f16 | m f16 | qh u32 | qs[16];  y = float(q5)·d + m; activations Q8_1 --------
void dequantize_row_q5_1(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  for (int64_t b = 0; b < n / kQK; ++b, in += sizeof(BlockQ5_1)) {
    store_scaled_offset_i8x32(q5_codes(in + 4, in + 8), f16_at(in), f16_at(in + 2), dst + b * kQK);
  }
}

float vec_dot_q5_1(const ConstRowPlanes& w, const void* act, int64_t n) {
  float mins = 0.0f;
  const float dots = dot_blocks<sizeof(BlockQ5_1), sizeof(BlockQ8_1)>(
      static_cast<const uint8_t*>(w.data), static_cast<const uint8_t*>(act), n / kQK,
      [&mins](const uint8_t* x, const uint8_t* y, __m256 acc) {
        mins += f16_at(x + 2) * f16_at(y + 2);
        return accumulate(acc, dot_u8_quads(q5_codes(x + 4, x + 8), loadu256(y + 4)), f16_at(x), f16_at(y));
      });
  return dots + mins;
}

// ---- Q8_0: d f16 | qs int8[32];  y = float(q)·d -------------------------------------------
void dequantize_row_q8_0(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  for (int64_t b = 0; b < n / kQK; ++b, in += sizeof(BlockQ8_0)) {
    store_scaled_i8x32(loadu256(in + 2), f16_at(in), dst + b * kQK);
  }
}

float vec_dot_q8_0(const ConstRowPlanes& w, const void* act, int64_t n) {
  return dot_blocks<sizeof(BlockQ8_0), sizeof(BlockQ8_0)>(
      static_cast<const uint8_t*>(w.data), static_cast<const uint8_t*>(act), n / kQK,
      [](const uint8_t* x, const uint8_t* y, __m256 acc) {
        return accumulate(acc, dot_i8_quads(loadu256(x + 2), loadu256(y + 2)), f16_at(x), f16_at(y));
      });
}

// ---- IQ4_NL: d f16 | qs[16];  y = d·KNL[q] (code book looked up with vpshufb) ---------------
void dequantize_row_iq4_nl(const ConstRowPlanes& src, float* dst, int64_t n) {
  const auto* in = static_cast<const uint8_t*>(src.data);
  for (int64_t b = 0; b < n / kQK; ++b, in += sizeof(BlockIQ4_NL)) {
    store_scaled_i8x32(iq4nl_codes(in + 2), f16_at(in), dst + b * kQK);
  }
}

float vec_dot_iq4_nl(const ConstRowPlanes& w, const void* act, int64_t n) {
  return dot_blocks<sizeof(BlockIQ4_NL), sizeof(BlockQ8_0)>(
      static_cast<const uint8_t*>(w.data), static_cast<const uint8_t*>(act), n / kQK,
      [](const uint8_t* x, const uint8_t* y, __m256 acc) {
        return accumulate(acc, dot_i8_quads(iq4nl_codes(x + 2), loadu256(y + 2)), f16_at(x), f16_at(y));
      });
}

}  // namespace imp::avx2
