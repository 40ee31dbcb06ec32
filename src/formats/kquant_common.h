// Helpers shared by the K-quant reference quantizers (Q2_K … Q6_K) and the 256-element
// super-block constant. Spec: ../shared/specs/formats.md §2.4 (scale packing), §3.1
// (nearest_int), §3.4 (make_qkx2_quants, make_qx_quants, make_q3_quants).
//
// Every helper is a literal fp32 port of ggml's ggml-quants.c: loops run from element 0
// upwards, accumulators are single fp32 sums, products are evaluated left to right
// (`w*x*l` is (w·x)·l), so the codes and scales come out bit-identical to llama.cpp's.
// imp_core is built with -ffp-contract=off; no FMA may fuse these expressions.
#pragma once

#include <cstdint>

#include "common/bits.h"

namespace imp {

inline constexpr int kQK_K = 256;  // elements per K-quant super-block (ggml QK_K)

// Round to nearest, ties to even, via the 1.5·2^23 trick (ggml nearest_int). Valid for
// |f| ≤ 4194303; callers only pass scaled values far inside that range.
inline int nearest_int(float f) {
  const float v = f + 12582912.0f;
  return int(f32_bits(v) & 0x007FFFFFu) - 0x00400000;
}

// Asymmetric fit x ≈ scale·L − min with L ∈ [0, nmax], min ≥ 0 returned in *the_min.
// `w` are per-element weights; `laux` is scratch of n entries. Search over
// iscale = (rmin + rdelta·is + nmax)/(max − mn), is = 0..nstep, keeping the weighted
// least-squares (scale, min) with the smallest Σw·|err| (use_mad) or Σw·err².
float make_qkx2_quants(int n, int nmax, const float* x, const float* w, uint8_t* L, float* the_min,
                       uint8_t* laux, float rmin, float rdelta, int nstep, bool use_mad);

// Symmetric fit x ≈ scale·(L − nmax), L ∈ [0, 2·nmax − 1], weights w = x² (ggml's
// rmse_type 1 without quant weights); tries iscale = −(nmax + 0.1·is)/max, is = −9..9.
// Returns the signed scale; an all-|x| < 1e-15 group gives scale 0 and L = 0.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L);

// Q3_K's fit (ggml make_q3_quants with do_rmse): start like make_qx_quants, then up to 5
// passes of per-element coordinate descent on the weighted (w = x²) error.
// L ∈ [0, 2·nmax − 1] on return; returns the signed scale.
float make_q3_quants(int n, int nmax, const float* x, int8_t* L);

// Q4_K / Q5_K 12-byte scale packing (§2.4 table): 6-bit scale and min of sub-block j.
inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Inverse of get_scale_min_k4: packs 8 six-bit scales `ls` and mins `lm` into q[12].
void pack_scale_min_k4(const uint8_t* ls, const uint8_t* lm, uint8_t* q);

// The Q4_K / Q5_K super-block scale step shared by both quantizers: from the per
// sub-block fits (scales[8], mins[8], all ≥ 0 in practice) compute the 6-bit codes, pack
// them into q[12], and return the fp32 d = maxS/63 and dmin = maxM/63 (before F16).
void quantize_scales_mins_k4(const float* scales, const float* mins, uint8_t* q, float* d, float* dmin);

// The Q4_K / Q5_K sub-block fit: w = sqrt(Σx²/32) + |x|, then make_qkx2_quants(32, nmax,
// …, use_mad = false). Returns the scale, the min in *the_min, codes in L[32].
float fit_sub_block_k4(const float* x, int nmax, float rmin, float rdelta, int nstep, uint8_t* L,
                       float* the_min);

}  // namespace imp
