// Importance-weighted scale search for NVFP4 (checkpoint NVFP4_CKPT and ggml NVFP4).
//
// RTN (the formats core) sets each 16-element block's UE4M3 scale from the block's amax
// (amax/(6·G) for the checkpoint layout with its per-tensor G = amax/(6·448); amax/6 for
// ggml's block with its half-scale). A scale slightly below that clips the block's largest
// element a little but lands the others nearer to E2M1 grid points; which is better
// depends on where the activations put their weight. This search tries the RTN scale code
// and the `radius` neighbouring UE4M3 codes on each side, re-picks the element codes with
// the format's own rounding (RNE for the checkpoint, ggml's first-minimum search for
// NVFP4), and keeps the code with the smallest Σ_j w_j·(x_j − x̂_j)², w_j = importance of
// column j (imatrix mean x²). The RTN code is tried first and only a strictly smaller error
// replaces it, so the weighted error never exceeds RTN's. G stays the RTN per-tensor scale.
#pragma once

#include <cstdint>
#include <span>

#include "formats/quant_matrix.h"

namespace imp::quant {

inline constexpr int kNvfp4SearchRadius = 4;

// format: NVFP4_CKPT or NVFP4; importance has cols entries (all 1 = plain MSE search).
OwnedQuantMatrix quantize_nvfp4_weighted(FormatId format, std::span<const float> x, int64_t rows, int64_t cols,
                                         std::span<const float> importance, int radius = kNvfp4SearchRadius);

// The same, with the per-tensor scale G given (NVFP4_CKPT only; GPTQ fixes it from the
// original weights before updating them).
OwnedQuantMatrix quantize_nvfp4_ckpt_weighted(std::span<const float> x, int64_t rows, int64_t cols, float g,
                                              std::span<const float> importance, int radius = kNvfp4SearchRadius);

}  // namespace imp::quant
