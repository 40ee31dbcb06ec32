// The calibration methods of imp quantize (src/quant/): activation statistics, imatrix
// files, the NVFP4 weighted scale search, GPTQ, AWQ and SmoothQuant, on fresh random data
// of awkward sizes. (Byte-exactness of the weighted GGUF quantizers against ggml is in
// tests/ref/test_imatrix_quant.py.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "../common/random_data.h"
#include "common/error.h"
#include "formats/quant_matrix.h"
#include "quant/awq.h"
#include "quant/calib.h"
#include "quant/gptq.h"
#include "quant/imatrix.h"
#include "quant/nvfp4_search.h"
#include "quant/smoothquant.h"

namespace imp::quant {
namespace {

using test::randn;

// n × cols activations with correlated columns and a few outlier channels, like a
// transformer's normed hidden states: X = Z·A + heavy per-channel scales.
std::vector<float> correlated_x(int64_t n, int64_t cols, float outlier = 20.0f) {
  const std::vector<float> z = randn(n * cols);
  const std::vector<float> a = randn(cols * 8, 1.0f);
  std::vector<float> x(size_t(n * cols));
  std::vector<float> chan(size_t(cols), 1.0f);
  for (int64_t j = 0; j < cols; j += 37) chan[size_t(j)] = outlier;
  for (int64_t t = 0; t < n; ++t) {
    // Each column mixes itself with 8 shared factors of this row.
    for (int64_t j = 0; j < cols; ++j) {
      float v = z[size_t(t * cols + j)];
      for (int k = 0; k < 8; ++k) v += a[size_t(j * 8 + k)] * z[size_t(t * cols + k)];
      x[size_t(t * cols + j)] = v * chan[size_t(j)];
    }
  }
  return x;
}

std::vector<double> xtx_of(const std::vector<float>& x, int64_t n, int64_t cols) {
  std::vector<double> h(size_t(cols * cols), 0.0);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t a = 0; a < cols; ++a)
      for (int64_t b = 0; b < cols; ++b) h[size_t(a * cols + b)] += double(x[size_t(t * cols + a)]) * x[size_t(t * cols + b)];
  return h;
}

// ‖(W − Ŵ)·Xᵀ‖²
double out_err(const std::vector<float>& w, const std::vector<float>& wq, int64_t rows, int64_t cols,
               const std::vector<float>& x, int64_t n) {
  double e = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t t = 0; t < n; ++t) {
      double y = 0;
      for (int64_t j = 0; j < cols; ++j) y += (double(w[size_t(r * cols + j)]) - wq[size_t(r * cols + j)]) * x[size_t(t * cols + j)];
      e += y * y;
    }
  return e;
}

TEST(Calib, StatisticsMatchDirectComputationAndAliasesShareInputs) {
  CalibCollector c(CalibOptions{.xtx = true, .max_samples = 5});
  const int64_t cols = 37;
  std::vector<std::vector<float>> batches;
  int64_t total = 0;
  for (int64_t n : {3, 17, 1}) {
    batches.push_back(randn(n * cols));
    c.observe("blk.0.attn_q.weight", batches.back().data(), n, cols);
    c.observe("blk.0.attn_k.weight", batches.back().data(), n, cols);  // same buffer: alias
    total += n;
  }
  const LinearStats* s = c.find("blk.0.attn_k.weight");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s, c.find("blk.0.attn_q.weight"));
  EXPECT_EQ(s->n_tok, total);
  EXPECT_EQ(s->n_samples, 5);
  std::vector<float> all;
  for (const auto& b : batches) all.insert(all.end(), b.begin(), b.end());
  const std::vector<double> h = xtx_of(all, total, cols);
  for (int64_t j = 0; j < cols; ++j) {
    double s2 = 0, sa = 0;
    float am = 0;
    for (int64_t t = 0; t < total; ++t) {
      const float v = all[size_t(t * cols + j)];
      s2 += double(v) * v, sa += std::fabs(v), am = std::max(am, std::fabs(v));
    }
    EXPECT_NEAR(s->sum_x2[size_t(j)], s2, 1e-9 * s2);
    EXPECT_NEAR(s->sum_abs[size_t(j)], sa, 1e-9 * sa);
    EXPECT_EQ(s->amax_col[size_t(j)], am);
    for (int64_t k = 0; k < cols; ++k) EXPECT_NEAR(s->xtx[size_t(j * cols + k)], h[size_t(j * cols + k)], 1e-4 * (1 + std::fabs(h[size_t(j * cols + k)])));
  }
  EXPECT_EQ(c.weight_names().size(), 2u);
  EXPECT_THROW(c.observe("blk.0.attn_q.weight", all.data(), 1, cols + 1), Error);
}

TEST(Imatrix, GgufRoundTripAndLegacyDat) {
  CalibCollector c(CalibOptions{});
  const auto x1 = randn(17 * 64), x2 = randn(17 * 96);
  c.observe("blk.0.ffn_up.weight", x1.data(), 17, 64);
  c.observe("blk.0.ffn_down.weight", x2.data(), 17, 96);
  const Imatrix im = imatrix_from_calibration(c, {"calib.txt"}, 3, 512);
  const auto path = std::filesystem::temp_directory_path() / ("imp_imatrix_" + std::to_string(test::rng()()) + ".gguf");
  write_imatrix(im, path.string());
  const Imatrix back = read_imatrix(path.string());
  std::filesystem::remove(path);
  EXPECT_EQ(back.datasets, std::vector<std::string>{"calib.txt"});
  EXPECT_EQ(back.chunk_count, 3u);
  EXPECT_EQ(back.chunk_size, 512u);
  ASSERT_EQ(back.entries.size(), 2u);
  const std::vector<float> imp = back.importance("blk.0.ffn_down.weight");
  ASSERT_EQ(imp.size(), 96u);
  for (int j = 0; j < 96; ++j) {
    double s = 0;
    for (int t = 0; t < 17; ++t) s += double(x2[size_t(t * 96 + j)]) * x2[size_t(t * 96 + j)];
    EXPECT_NEAR(imp[size_t(j)], s / 17, 1e-5 * s);
  }
  // Legacy: one entry, values = mean(x²)·ncall.
  const auto dat = std::filesystem::temp_directory_path() / ("imp_imatrix_" + std::to_string(test::rng()()) + ".dat");
  {
    std::ofstream o(dat, std::ios::binary);
    auto i32 = [&](int32_t v) { o.write(reinterpret_cast<const char*>(&v), 4); };
    const std::string name = "blk.3.attn_q.weight";
    i32(1), i32(int32_t(name.size()));
    o.write(name.data(), std::streamsize(name.size()));
    const float vals[3] = {2.0f, 4.0f, 8.0f};
    i32(2), i32(3);
    o.write(reinterpret_cast<const char*>(vals), sizeof vals);
  }
  const Imatrix leg = read_imatrix(dat.string());
  std::filesystem::remove(dat);
  EXPECT_EQ(leg.importance("blk.3.attn_q.weight"), (std::vector<float>{1.0f, 2.0f, 4.0f}));
  {
    std::ofstream o(dat, std::ios::binary);
    const int32_t n = 1, len = 100;
    o.write(reinterpret_cast<const char*>(&n), 4);
    o.write(reinterpret_cast<const char*>(&len), 4);
  }
  EXPECT_THROW(read_imatrix(dat.string()), Error);
  std::filesystem::remove(dat);
}

double weighted_err(const std::vector<float>& x, const std::vector<float>& q, const std::vector<float>& w, int64_t cols) {
  double e = 0;
  for (size_t i = 0; i < x.size(); ++i) e += double(w[i % size_t(cols)]) * (double(x[i]) - q[i]) * (x[i] - q[i]);
  return e;
}

TEST(Nvfp4Search, NeverWorseThanRtnPerRowAndBetterOnAverage) {
  for (FormatId f : {FormatId::NVFP4_CKPT, FormatId::NVFP4}) {
    for (int64_t blocks : {1, 3, 17}) {
      const int64_t rows = 13, cols = blocks * 64;
      const std::vector<float> x = randn(rows * cols);
      std::vector<float> w(static_cast<size_t>(cols));
      for (auto& v : w) v = std::exp(4.0f * randn(1)[0]);
      const std::vector<float> rtn = dequantize(quantize(f, x, rows, cols).view());
      const std::vector<float> srch = dequantize(quantize_nvfp4_weighted(f, x, rows, cols, w).view());
      double tot_r = 0, tot_s = 0;
      for (int64_t r = 0; r < rows; ++r) {
        const std::vector<float> xr(x.begin() + r * cols, x.begin() + (r + 1) * cols);
        const double er = weighted_err(xr, {rtn.begin() + r * cols, rtn.begin() + (r + 1) * cols}, w, cols);
        const double es = weighted_err(xr, {srch.begin() + r * cols, srch.begin() + (r + 1) * cols}, w, cols);
        EXPECT_LE(es, er * (1 + 1e-12)) << format_name(f) << " row " << r;
        tot_r += er, tot_s += es;
      }
      EXPECT_LT(tot_s, 0.97 * tot_r) << format_name(f) << " blocks " << blocks;
    }
  }
}

TEST(Gptq, LowerOutputErrorThanRtnForInt4Nvfp4AndQ4K) {
  const int64_t rows = 24, n = 384;
  struct Case { FormatId f; int64_t cols; int32_t group; bool act_order; };
  for (const Case& k : {Case{FormatId::INT4_GROUP, 384, 128, false}, Case{FormatId::INT4_GROUP, 256, 128, true},
                        Case{FormatId::NVFP4_CKPT, 272, 0, false}, Case{FormatId::NVFP4_CKPT, 272, 0, true},
                        Case{FormatId::Q4_K, 1280, 0, false}, Case{FormatId::Q4_0, 224, 0, false},
                        Case{FormatId::IQ4_XS, 1024, 0, false}}) {
    const int64_t cols = k.cols;
    const std::vector<float> w = randn(rows * cols, 0.05f);
    std::vector<float> x = correlated_x(n, cols);
    for (int64_t t = 0; t < n; ++t) x[size_t(t * cols + 5)] = 0.0f;  // a dead column
    const std::vector<double> h = xtx_of(x, n, cols);
    GptqOptions o;
    o.format = k.f;
    o.group = k.group;
    o.act_order = k.act_order;
    const GptqResult g = gptq_quantize(w, rows, cols, h, n, o);
    EXPECT_EQ(g.n_dead, 1);
    validate(g.q.view());
    const std::vector<float> wg = dequantize(g.q.view());
    const std::vector<float> wr = dequantize(quantize(k.f, w, rows, cols, k.group).view());
    const double eg = out_err(w, wg, rows, cols, x, n), er = out_err(w, wr, rows, cols, x, n);
    EXPECT_LT(eg, 0.8 * er) << format_name(k.f) << (k.act_order ? " act-order" : "") << " gptq " << eg << " rtn " << er;
    if (k.f == FormatId::INT4_GROUP) {
      ASSERT_EQ(g.g_idx.size(), size_t(cols));
      EXPECT_EQ(g.g_idx.back(), int32_t((cols - 1) / 128));
    }
  }
  const std::vector<float> w = randn(4 * 256);
  GptqOptions ao;
  ao.format = FormatId::Q4_K;
  ao.act_order = true;
  EXPECT_THROW(gptq_quantize(w, 4, 256, std::vector<double>(256 * 256, 0.0), 1, ao), Error);
  EXPECT_THROW(gptq_quantize(w, 4, 256, std::vector<double>(3), 1, GptqOptions{}), Error);
}

TEST(Awq, SearchNeverLosesToRtnAndWinsWithOutlierChannels) {
  const int64_t n = 96;
  for (auto [f, cols, group] : {std::tuple{FormatId::INT4_GROUP, int64_t(256), 128}, std::tuple{FormatId::NVFP4_CKPT, int64_t(272), 0},
                                std::tuple{FormatId::Q4_K, int64_t(256), 0}, std::tuple{FormatId::IQ4_XS, int64_t(512), 0},
                                std::tuple{FormatId::MXFP4_CKPT, int64_t(224), 0}}) {
    const std::vector<float> x = correlated_x(n, cols, 30.0f);
    std::vector<float> mean_abs(size_t(cols), 0.0f);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t j = 0; j < cols; ++j) mean_abs[size_t(j)] += std::fabs(x[size_t(t * cols + j)]) / float(n);
    const std::vector<float> w1 = randn(19 * cols, 0.05f), w2 = randn(7 * cols, 0.05f);
    const WeightView views[] = {{w1, 19, cols, f, group}, {w2, 7, cols, f, group}};
    const AwqScales s = awq_search(views, mean_abs, x, n);
    ASSERT_EQ(s.s.size(), size_t(cols));
    EXPECT_LE(s.err_best, s.err_rtn);
    // MXFP4's power-of-two block scales absorb much of a channel scale: AWQ gains there
    // only on some draws, so it is held to "never worse" alone.
    if (f == FormatId::MXFP4_CKPT) continue;
    EXPECT_LT(s.err_best, 0.9 * s.err_rtn) << format_name(f) << " alpha " << s.alpha;
    EXPECT_GT(s.alpha, 0.0f);
  }
}

// INT8 per-token activations lose the ordinary channels to a 60× outlier channel, and the
// migration wins clearly. FP8's exponent keeps every channel at E4M3's ~2⁻⁴ relative step
// (even next to 2·10⁴× outliers the ordinary ones stay normal numbers), so moving magnitude
// between X and W buys nothing: measured from 10 % better to 20 % worse over draws (per-tensor
// FP8 gains no resolution from it), held here to "no worse than 40 %". Use it for INT8.
TEST(SmoothQuant, LowersW8A8ErrorOnOutlierActivations) {
  const int64_t n = 64, rows = 48, cols = 160;
  for (auto [f, outlier, gain] : {std::tuple{FormatId::INT8_CHANNEL, 60.0f, 0.8}, std::tuple{FormatId::FP8_E4M3_TENSOR, 2e4f, 1.4},
                                  std::tuple{FormatId::FP8_E4M3_CHANNEL, 2e4f, 1.4}}) {
    const std::vector<float> x = correlated_x(n, cols, outlier);
    std::vector<float> amax(size_t(cols), 0.0f);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t j = 0; j < cols; ++j) amax[size_t(j)] = std::max(amax[size_t(j)], std::fabs(x[size_t(t * cols + j)]));
    const std::vector<float> w = randn(rows * cols, 0.05f);
    const WeightView v{w, rows, cols, FormatId::F32, 0};
    const std::vector<float> s = smoothquant_scales({&v, 1}, amax);
    const double plain = w8a8_output_error(f, v, x, n), smooth = w8a8_output_error(f, v, x, n, s);
    EXPECT_LT(smooth, gain * plain) << format_name(f) << " plain " << plain << " smooth " << smooth;
  }
}

}  // namespace
}  // namespace imp::quant
