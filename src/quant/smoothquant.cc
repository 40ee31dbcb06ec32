#include "quant/smoothquant.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "formats/fp8_e4m3.h"
#include "formats/quant_matrix.h"

namespace imp::quant {

std::vector<float> smoothquant_scales(std::span<const WeightView> weights, std::span<const float> act_amax_col,
                                      float alpha) {
  if (weights.empty()) fail("smoothquant: empty group");
  const int64_t cols = weights[0].cols;
  if (int64_t(act_amax_col.size()) != cols) fail("smoothquant: {} activation maxima for {} columns", act_amax_col.size(), cols);
  std::vector<float> wmax(size_t(cols), 0.0f);
  for (const WeightView& v : weights) {
    if (v.cols != cols) fail("smoothquant: group weights disagree on columns");
    for (int64_t r = 0; r < v.rows; ++r)
      for (int64_t j = 0; j < cols; ++j) wmax[size_t(j)] = std::max(wmax[size_t(j)], std::fabs(v.w[size_t(r * cols + j)]));
  }
  std::vector<float> s(size_t(cols), 1.0f);
  for (int64_t j = 0; j < cols; ++j) {
    const float a = act_amax_col[size_t(j)], w = wmax[size_t(j)];
    if (a > 0 && w > 0) s[size_t(j)] = float(std::pow(double(a), alpha) / std::pow(double(w), 1.0 - alpha));
    if (!(s[size_t(j)] > 0) || !std::isfinite(s[size_t(j)])) s[size_t(j)] = 1.0f;
  }
  return s;
}

double w8a8_output_error(FormatId format, const WeightView& w, std::span<const float> x, int64_t n,
                         std::span<const float> s) {
  const int64_t rows = w.rows, cols = w.cols;
  std::vector<float> ws(w.w.begin(), w.w.end()), xs(x.begin(), x.end());
  if (!s.empty()) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < cols; ++j) ws[size_t(r * cols + j)] *= s[size_t(j)];
    for (int64_t t = 0; t < n; ++t)
      for (int64_t j = 0; j < cols; ++j) xs[size_t(t * cols + j)] /= s[size_t(j)];
  }
  const std::vector<float> wq = dequantize(quantize(format, ws, rows, cols).view());
  // Activations: FP8 per tensor for the FP8 formats, per-token int8 for INT8.
  if (format == FormatId::INT8_CHANNEL) {
    for (int64_t t = 0; t < n; ++t) {
      float amax = 0;
      for (int64_t j = 0; j < cols; ++j) amax = std::max(amax, std::fabs(xs[size_t(t * cols + j)]));
      const float d = amax > 0 ? amax / 127.0f : 1.0f;
      for (int64_t j = 0; j < cols; ++j) {
        float& v = xs[size_t(t * cols + j)];
        v = std::nearbyint(v / d) * d;
      }
    }
  } else {
    float amax = 0;
    for (float v : xs) amax = std::max(amax, std::fabs(v));
    const float d = amax > 0 ? amax / 448.0f : 1.0f;
    for (float& v : xs) v = e4m3_to_f32(f32_to_e4m3(v / d)) * d;
  }
  double num = 0, den = 0;
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t r = 0; r < rows; ++r) {
      double yq = 0, y = 0;
      for (int64_t j = 0; j < cols; ++j) {
        yq += double(wq[size_t(r * cols + j)]) * double(xs[size_t(t * cols + j)]);
        y += double(w.w[size_t(r * cols + j)]) * double(x[size_t(t * cols + j)]);
      }
      num += (yq - y) * (yq - y);
      den += y * y;
    }
  }
  return den > 0 ? num / den : num;
}

}  // namespace imp::quant
