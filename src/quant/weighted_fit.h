// Importance-weighted scale fits of ggml's ggml-quants.c, the versions llama-quantize runs
// when an importance matrix is given (quant_weights ≠ NULL). Spec: ../shared/specs/formats.md
// §3.4 for the unweighted forms; the weighted forms replace the implicit weights (x², or
// sqrt(Σx²/n) + |x|) by the caller's w. Literal fp32 ports (element order, left-to-right
// products, no FMA: imp_core builds with -ffp-contract=off) so the bytes match ggml's.
#pragma once

#include <cstdint>

namespace imp::quant {

inline constexpr float kGroupMaxEps = 1e-15f;  // ggml GROUP_MAX_EPS

// ggml make_qx_quants(n, nmax, x, L, rmse_type = 1, qw): symmetric x ≈ scale·(L − nmax),
// L ∈ [0, 2·nmax − 1]; start at iscale = −nmax/max, least-squares scale under w, then try
// iscale = −(nmax + 0.1·is)/max, is = −9..9 (≠ 0), keeping (Σwxl)² / Σwl² largest.
float make_qx_quants_w(int n, int nmax, const float* x, int8_t* L, const float* w);

// ggml make_qkx3_quants(..., use_mad = false): asymmetric x ≈ scale·L + min, min ≤ 0
// (returned negated in *the_min), L ∈ [0, nmax]; iscale = (rmin + rdelta·is + nmax)/(max −
// min), is = 0..nstep, weighted least squares for (scale, min), smallest Σw·err² kept.
float make_qkx3_quants_w(int n, int nmax, const float* x, const float* w, uint8_t* L, float* the_min, uint8_t* Laux,
                         float rmin, float rdelta, int nstep);

// ggml make_qp_quants: non-negative x ≈ scale·L, L ∈ [0, nmax] (the K-quant super-block
// scale codes), weights w; scale trials (0.1·is + nmax)/max, is = −4..4, then up to 5
// passes of coordinate descent on L.
float make_qp_quants_w(int n, int nmax, const float* x, uint8_t* L, const float* w);

}  // namespace imp::quant
