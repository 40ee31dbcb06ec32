// AWQ (Lin et al. 2023, "AWQ: Activation-aware Weight Quantization"): per group of linear
// layers that read the same input X (n × cols), a per-input-channel scale s is searched so
// that quantizing W·diag(s) and feeding X·diag(1/s) loses the least:
//   s(α) = mean|X_j|^α, normalized s /= sqrt(max s · min s), α ∈ {0, 1/20, …, 19/20}
//   err(α) = Σ_W Σ_t ‖(Q(W·diag(s))·diag(1/s) − W)·x_t‖²   over the kept calibration rows
//   α = 0 is s = 1, plain RTN: the chosen α never does worse than RTN on those rows.
// The scale is folded, so the float model computes the same function:
//   the preceding RMSNorm gain g_j /= s_j   (q/k/v after attn_norm, gate/up after ffn_norm)
//   or the preceding linear's output rows /= s_j (down after up: swiglu is linear in up)
//   and every weight of the group W[:, j] *= s_j.
// Q is the target format's quantizer (formats core RTN, or the importance-weighted one
// when an imatrix row is given, rescaled by 1/s² since the inputs become x/s).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "formats/quant_matrix.h"

namespace imp::quant {

inline constexpr int kAwqGrid = 20;

struct WeightView {
  std::span<const float> w;  // rows × cols
  int64_t rows = 0, cols = 0;
  FormatId format = FormatId::F32;  // what it will be quantized to (AWQ); F32: not quantized
  int32_t group = 0;                // INT4_GROUP
};

struct AwqScales {
  std::vector<float> s;  // cols
  float alpha = 0;
  double err_rtn = 0, err_best = 0;
};

// mean_abs: per-column mean |x| (cols); x: n × cols calibration rows.
// Each weight is quantized to its own format (mixes give a group's members different ones).
AwqScales awq_search(std::span<const WeightView> weights, std::span<const float> mean_abs, std::span<const float> x,
                     int64_t n, std::span<const float> importance = {});

// Quantize → dequantize with the format's quantizer (RTN, or weighted when importance is
// given and the format has one; NVFP4 formats use the weighted scale search).
std::vector<float> quant_dequant(FormatId format, std::span<const float> w, int64_t rows, int64_t cols, int32_t group,
                                 std::span<const float> importance);

// The AWQ / SmoothQuant groups of the llama family, per layer: the shared-input weights
// and what precedes them (a norm gain, or a linear whose rows get 1/s).
struct ScaleGroup {
  std::vector<std::string> weights;
  std::string prev;
  bool prev_is_linear = false;
};
std::vector<ScaleGroup> llama_scale_groups(int64_t n_layer, bool v_to_o);

}  // namespace imp::quant
