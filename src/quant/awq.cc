#include "quant/awq.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "common/error.h"
#include "quant/nvfp4_search.h"
#include "quant/weighted_ggml.h"

namespace imp::quant {

namespace {

// Σ_t ‖D·x_t‖² for D (rows × cols) and x (n × cols): double accumulation of float dots.
double output_error(const std::vector<float>& d, int64_t rows, int64_t cols, std::span<const float> x, int64_t n) {
  double total = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* dr = d.data() + r * cols;
    bool zero = true;
    for (int64_t j = 0; j < cols && zero; ++j) zero = dr[j] == 0.0f;
    if (zero) continue;
    for (int64_t t = 0; t < n; ++t) {
      const float* xt = x.data() + t * cols;
      // Eight partial sums: vectorizable without reassociation flags.
      float acc[8] = {};
      int64_t j = 0;
      for (; j + 8 <= cols; j += 8)
        for (int k = 0; k < 8; ++k) acc[k] += dr[j + k] * xt[j + k];
      float y = 0;
      for (; j < cols; ++j) y += dr[j] * xt[j];
      for (float a : acc) y += a;
      total += double(y) * double(y);
    }
  }
  return total;
}

}  // namespace

std::vector<float> quant_dequant(FormatId format, std::span<const float> w, int64_t rows, int64_t cols, int32_t group,
                                 std::span<const float> importance) {
  if (format == FormatId::F32) return {w.begin(), w.end()};
  if (!importance.empty()) {
    if (format == FormatId::NVFP4_CKPT || format == FormatId::NVFP4)
      return dequantize(quantize_nvfp4_weighted(format, w, rows, cols, importance).view());
    if (has_weighted_quantizer(format)) return dequantize(quantize_weighted(format, w, rows, cols, importance).view());
  }
  return dequantize(quantize(format, w, rows, cols, group).view());
}

AwqScales awq_search(std::span<const WeightView> weights, std::span<const float> mean_abs, std::span<const float> x,
                     int64_t n, std::span<const float> importance) {
  if (weights.empty()) fail("awq: empty group");
  const int64_t cols = weights[0].cols;
  if (int64_t(mean_abs.size()) != cols) fail("awq: {} activation means for {} columns", mean_abs.size(), cols);
  if (int64_t(x.size()) != n * cols || n <= 0) fail("awq: {} calibration values for {} rows of {}", x.size(), n, cols);
  for (const WeightView& v : weights) {
    if (v.cols != cols || int64_t(v.w.size()) != v.rows * v.cols) fail("awq: group weights disagree on shape");
  }
  AwqScales best;
  best.err_best = -1;
  std::vector<float> s(static_cast<size_t>(cols)), scaled, qimp(importance.size());
  for (int gi = 0; gi < kAwqGrid; ++gi) {
    const float alpha = float(gi) / float(kAwqGrid);
    float smax = 0, smin = INFINITY;
    for (int64_t j = 0; j < cols; ++j) {
      s[size_t(j)] = std::max(std::pow(std::max(mean_abs[size_t(j)], 1e-8f), alpha), 1e-4f);
      smax = std::max(smax, s[size_t(j)]);
      smin = std::min(smin, s[size_t(j)]);
    }
    const float norm = std::sqrt(smax * smin);
    for (float& v : s) v /= norm;
    for (size_t j = 0; j < qimp.size(); ++j) qimp[j] = importance[j] / (s[j] * s[j]);
    double err = 0;
    for (const WeightView& v : weights) {
      scaled.assign(v.w.begin(), v.w.end());
      for (int64_t r = 0; r < v.rows; ++r)
        for (int64_t j = 0; j < cols; ++j) scaled[size_t(r * cols + j)] *= s[size_t(j)];
      std::vector<float> d = quant_dequant(v.format, scaled, v.rows, cols, v.group, qimp);
      for (int64_t r = 0; r < v.rows; ++r)
        for (int64_t j = 0; j < cols; ++j) {
          const size_t e = size_t(r * cols + j);
          d[e] = d[e] / s[size_t(j)] - v.w[e];
        }
      err += output_error(d, v.rows, cols, x, n);
    }
    if (gi == 0) best.err_rtn = err;
    if (best.err_best < 0 || err < best.err_best) {
      best.err_best = err;
      best.alpha = alpha;
      best.s = s;
    }
  }
  return best;
}

std::vector<ScaleGroup> llama_scale_groups(int64_t n_layer, bool v_to_o) {
  std::vector<ScaleGroup> g;
  for (int64_t l = 0; l < n_layer; ++l) {
    const std::string p = fmt::format("blk.{}.", l);
    g.push_back({{p + "attn_q.weight", p + "attn_k.weight", p + "attn_v.weight"}, p + "attn_norm.weight", false});
    if (v_to_o) g.push_back({{p + "attn_output.weight"}, p + "attn_v.weight", true});
    g.push_back({{p + "ffn_gate.weight", p + "ffn_up.weight"}, p + "ffn_norm.weight", false});
    g.push_back({{p + "ffn_down.weight"}, p + "ffn_up.weight", true});
  }
  return g;
}

}  // namespace imp::quant
