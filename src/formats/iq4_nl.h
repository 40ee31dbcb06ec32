// IQ4_NL — 32 elements in 18 bytes (4.5 bits/weight), a non-linear 4-bit code book.
// ggml GGML_TYPE_IQ4_NL (id 20). Spec: ../shared/specs/formats.md §2.2, §2.3, §3.
//   offset 0: d (f16)   offset 2: qs[16]
//   y[j] = d·KNL[lo(qs[j])],  y[j+16] = d·KNL[hi(qs[j])],  j = 0..15
// Reference quantizer: what llama-quantize writes, i.e. ggml_quantize_chunk →
// quantize_iq4_nl with no importance matrix (ntry = 7), not quantize_row_iq4_nl_ref
// (ntry = −1, different bytes). Per block, with weights w = x²:
//   max = signed x of largest |x| (first wins); amax < 1e-15 → d = 0, all codes 8;
//   start at d = max/127, codes by nearest KNL entry to x/d, then least-squares
//   d = Σwqx/Σwq²; try inverse scales (t − 127)/max, t = −7..7, keeping a trial when
//   (Σwqx)² > best·Σwq² (best = d·Σwqx); store F16(d) and re-pick codes with the fp32 1/d.
// Activations in Q8_0. Per block: integer Σ KNL[q]·qa, then × (d_a·d_w).
#pragma once

#include <cstdint>

#include "formats/row_planes.h"

namespace imp {

inline constexpr int kQK4_NL = 32;

// ggml kvalues_iq4nl.
inline constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

struct BlockIQ4_NL {
  uint16_t d;  // f16
  uint8_t qs[kQK4_NL / 2];
};
static_assert(sizeof(BlockIQ4_NL) == 18, "IQ4_NL block is 18 bytes");

// Index of the code-book entry nearest to v (ggml best_index_int8: binary search; an exact
// midpoint goes to the larger entry; NaN lands on 15). Shared with IQ4_XS.
inline int iq4nl_best_index(float v) {
  const int8_t* k = kIq4nlValues;
  if (v <= float(k[0])) return 0;
  if (v >= float(k[15])) return 15;
  int lo = 0, hi = 15;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (v < float(k[mid])) hi = mid;
    else lo = mid;
  }
  return v - float(k[hi - 1]) < float(k[hi]) - v ? hi - 1 : hi;
}

void quantize_row_iq4_nl(const float* src, const RowPlanes& dst, int64_t n);
void dequantize_row_iq4_nl(const ConstRowPlanes& src, float* dst, int64_t n);
float vec_dot_iq4_nl(const ConstRowPlanes& w, const void* act, int64_t n);

}  // namespace imp
