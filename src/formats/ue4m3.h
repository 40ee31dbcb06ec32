// UE4M3 — the NVFP4 block scale: an E4M3FN byte whose sign is 0. Value as E4M3 (§1.4),
// 0x7F = NaN. Spec: ../shared/specs/formats.md §1.8.
// ggml's own NVFP4 type reads and writes it differently, kept separate here:
//   ue4m3_to_f32_half_ggml(b): 0.5 × value; 0x00 and 0x7F → 0; bit 7 ignored (0xFF → 240).
//   f32_to_ue4m3_ggml(x): clamp to 448, round half up on the fp32 mantissa (not RNE),
//   with the subnormal quirk that x ∈ [7.5·2^-9, 2^-6) encodes 0x07.
#pragma once

#include <cstdint>

#include "common/bits.h"
#include "formats/fp8_e4m3.h"
#include "formats/row_planes.h"

namespace imp {

inline float ue4m3_to_f32(uint8_t b) { return e4m3_to_f32(uint8_t(b & 0x7F)); }

// torch's RNE E4M3 cast of a non-negative scale (what ModelOpt writes).
inline uint8_t f32_to_ue4m3(float x) { return uint8_t(f32_to_e4m3(x < 0 ? -x : x) & 0x7F); }

inline float ue4m3_to_f32_half_ggml(uint8_t b) {
  if (b == 0x00 || b == 0x7F) return 0.0f;
  const int e = (b >> 3) & 0xF, m = b & 7;
  if (e == 0) return float(m) * 0x1p-9f * 0.5f;
  return (1.0f + float(m) / 8.0f) * f32_from_bits(uint32_t(e - 7 + 127) << 23) * 0.5f;
}

inline uint8_t f32_to_ue4m3_ggml(float x) {
  if (!(x > 0)) return 0x00;
  if (x > 448.0f) x = 448.0f;
  const uint32_t bits = f32_bits(x);
  const int fe = int((bits >> 23) & 0xFF) - 127;
  int fm = int((bits >> 20) & 7);
  int ue = fe + 7;
  if (ue <= 0) {
    int m = int(x * 512.0f + 0.5f);
    if (m > 7) m = 7;
    if (m < 1) return 0x00;
    return uint8_t(m);
  }
  if (ue >= 15) return 0x7E;
  fm += int((bits >> 19) & 1);  // round half up
  if (fm > 7) {
    fm = 0;
    ue += 1;
    if (ue >= 15) return 0x7E;
  }
  return uint8_t((ue << 3) | fm);
}

void dequantize_row_ue4m3(const ConstRowPlanes& src, float* dst, int64_t n);
void quantize_row_ue4m3(const float* src, const RowPlanes& dst, int64_t n);

}  // namespace imp
