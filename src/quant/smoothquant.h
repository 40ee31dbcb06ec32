// SmoothQuant (Xiao et al. 2022) for W8A8: move activation outliers into the weights with a
// per-input-channel scale folded into the preceding norm (or linear), as AWQ does:
//   s_j = max|X_j|^α / max_i |W_ij|^(1−α)   (max over every weight of the group), α = 0.5;
//   a channel with max|X_j| = 0 or max|W_j| = 0 keeps s_j = 1;
//   X_j → X_j / s_j (norm gain g_j /= s_j), W[:, j] → W[:, j]·s_j.
// w8a8_output_error measures what the migration is for: the error of Y = X·Wᵀ when both W
// (per the format: FP8 per tensor / per channel, INT8 per channel) and X (per-tensor FP8
// E4M3 with scale amax/448, or per-token symmetric INT8) are quantized.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "formats/format_id.h"
#include "quant/awq.h"

namespace imp::quant {

inline constexpr float kSmoothQuantAlpha = 0.5f;

std::vector<float> smoothquant_scales(std::span<const WeightView> weights, std::span<const float> act_amax_col,
                                      float alpha = kSmoothQuantAlpha);

// ‖X·Ŵᵀ_q − X·Wᵀ‖² / ‖X·Wᵀ‖² with X quantized per `format` (FP8 formats: per-tensor E4M3;
// INT8_CHANNEL: per-token int8) and W by the format's quantizer. s (optional) scales X
// columns by 1/s and W columns by s first.
double w8a8_output_error(FormatId format, const WeightView& w, std::span<const float> x, int64_t n,
                         std::span<const float> s = {});

}  // namespace imp::quant
