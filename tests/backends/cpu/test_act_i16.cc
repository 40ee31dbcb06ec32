// The 16-bit activation path (backends/cpu/act_i16.h) on fresh random data of awkward
// sizes: the AVX2 quantizer against the scalar reference, the AVX2 row dots against the
// scalar (double) reference dots, and the whole kI16 matmul against the exact matmul_ref.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backends/cpu/act_i16.h"
#include "backends/cpu/ops.h"
#include "common/random_data.h"
#include "formats/quant_matrix.h"

namespace imp {
namespace {

using test::randn;
using test::rel_err;

// Kernel vs reference on the same quantized activations: both sum exact integers per
// block; they differ in FP32 (8 lanes, FMA) vs double accumulation across blocks.
constexpr double kKernelTol = 1e-5;
// s = Σx: 8-lane tree vs sequential FP32 sum of 32 N(0,1) values (a few ulps of ~6).
constexpr double kSumAbsTol = 1e-5;
// kI16 matmul vs the exact reference on N(0,1) data: each element moves by ≤ d/2 with
// d = amax/32767 (amax ≈ 2.5σ): rms error ≈ 2.2e-5 relative per element; a dot of many
// terms averages it further: measured 1.5–2.5e-5 for Q4_0/Q8_0. Q4_1's codes are all ≥ 0
// (c·dw ≈ 2.5σ on average), so its error is ~2.5× larger and relative to a result that
// the offset terms can make small: measured up to 1.5e-4. 3e-4 covers both.
constexpr double kI16Tol = 3e-4;
// A 300σ outlier in every 32-block (SmolLM2-like) is split off and added exactly, so the
// rest quantizes as outlier-free data: the same bound. (Left in, it would set the step
// 120× larger: ~3e-3; Q8 ~1, see test_ops.cc.)
constexpr double kI16OutlierTol = kI16Tol;

bool avx2() { return best_cpu_isa() == CpuIsa::kAvx2; }

TEST(ActI16, QuantizerMatchesReference) {
  if (!avx2()) GTEST_SKIP() << "no AVX2";
  for (int64_t blocks : {1, 3, 17, 37, 129}) {
    const int64_t n = 32 * blocks;
    auto x = randn(n, 3.0f);
    x[0] = 0.0f;
    if (blocks > 2) {
      for (int i = 32; i < 64; ++i) x[size_t(i)] = 0.0f;  // an all-zero block: d = 0, q = 0
      x[70] = 500.0f;                                      // an outlier (split off)
      x[75] = -9.0f;                                       // and one too small to be
      x[76] = 10.0f;
    }
    const size_t un = static_cast<size_t>(n), ub = static_cast<size_t>(blocks);
    std::vector<int16_t> q_ref(un), q(un);
    std::vector<float> d_ref(ub), s_ref(ub), d(ub), s(ub), ox_ref(ub), ox(ub);
    std::vector<int32_t> oi_ref(ub), oi(ub);
    const int32_t n_ref =
        quantize_act_i16_ref(x.data(), n, q_ref.data(), d_ref.data(), s_ref.data(), oi_ref.data(), ox_ref.data());
    const int32_t n_fast = i16_quantizer(CpuIsa::kAvx2)(x.data(), n, q.data(), d.data(), s.data(), oi.data(), ox.data());
    EXPECT_EQ(q, q_ref) << "blocks=" << blocks;
    EXPECT_EQ(d, d_ref) << "blocks=" << blocks;
    ASSERT_EQ(n_fast, n_ref);
    oi.resize(size_t(n_ref)), oi_ref.resize(size_t(n_ref)), ox.resize(size_t(n_ref)), ox_ref.resize(size_t(n_ref));
    EXPECT_EQ(oi, oi_ref);
    EXPECT_EQ(ox, ox_ref);
    if (blocks > 2) {
      ASSERT_GE(n_ref, 1);
      bool has70 = false;
      for (int32_t i : oi_ref) has70 |= i == 70;
      EXPECT_TRUE(has70) << "the 500 outlier was not split off";
    }
    for (int64_t b = 0; b < blocks; ++b) {
      EXPECT_NEAR(s[size_t(b)], s_ref[size_t(b)], kSumAbsTol * 32) << "blocks=" << blocks << " b=" << b;
      // The definition: elements kept in the block satisfy |x − d·q| ≤ d/2 (+ the FP32
      // rounding of x·id near 32767), an outlier has q = 0 and sits in the list.
      for (int i = 0; i < 32; ++i) {
        const int64_t e_idx = 32 * b + i;
        bool outlier = false;
        for (int32_t o : oi_ref) outlier |= o == e_idx;
        const double xi = x[size_t(e_idx)], qi = q_ref[size_t(e_idx)];
        if (outlier) {
          EXPECT_EQ(qi, 0);
          EXPECT_GT(std::fabs(xi), 4.0 * 32767.0 * d_ref[size_t(b)] * 0.9999);
        } else {
          EXPECT_LE(std::fabs(xi - double(d_ref[size_t(b)]) * qi), (0.5 + 0x1p-8) * d_ref[size_t(b)] + 1e-30);
        }
      }
    }
  }
}

TEST(ActI16, ReorderIsAPermutation) {
  std::vector<int16_t> q(96), out(96);
  for (int i = 0; i < 96; ++i) q[size_t(i)] = int16_t(i);
  reorder_act_i16(q.data(), 96, I16Order::kQ4Pairs, out.data());
  EXPECT_EQ(out[0], 0);
  EXPECT_EQ(out[8], 1);
  EXPECT_EQ(out[16], 16);
  EXPECT_EQ(out[24], 17);
  EXPECT_EQ(out[32 + 31], 32 + 31);
  reorder_act_i16(q.data(), 96, I16Order::kQ8Pairs, out.data());
  EXPECT_EQ(out[15], 30);
  EXPECT_EQ(out[16], 1);
  for (I16Order o : {I16Order::kNatural, I16Order::kQ4Pairs, I16Order::kQ8Pairs}) {
    reorder_act_i16(q.data(), 96, o, out.data());
    std::vector<int> seen(96, 0);
    for (int16_t v : out) seen[size_t(v)]++;
    for (int c : seen) EXPECT_EQ(c, 1);
  }
}

TEST(ActI16, RowDotsMatchReference) {
  if (!avx2()) GTEST_SKIP() << "no AVX2";
  for (FormatId f : {FormatId::Q4_0, FormatId::Q4_1, FormatId::Q8_0}) {
    const I16DotKernel ref = i16_dot_rows_ref(f), fast = i16_dot_rows(f, CpuIsa::kAvx2);
    ASSERT_TRUE(ref.fn && fast.fn) << format_name(f);
    for (int64_t blocks : {1, 3, 8, 17, 37, 129}) {  // 8, 17, 37, 129: the gathered-scale groups and tails
      const int64_t n = 32 * blocks, rows = 5;
      const auto w = quantize(f, randn(rows * n), rows, n);
      auto x = randn(n);
      x[3] = 80.0f;  // outliers: both are split off, so the kernels' outlier terms count
      if (n > 40) x[40] = -60.0f;
      std::vector<int16_t> q(static_cast<size_t>(n)), qk(q);
      std::vector<float> d(static_cast<size_t>(blocks)), s(d), ox(d);
      std::vector<int32_t> oi(static_cast<size_t>(blocks));
      const int32_t n_out = quantize_act_i16_ref(x.data(), n, q.data(), d.data(), s.data(), oi.data(), ox.data());
      EXPECT_GE(n_out, 1);
      reorder_act_i16(q.data(), n, fast.order, qk.data());
      const size_t rb = size_t(row_data_bytes(f, n));
      std::vector<float> y_ref(static_cast<size_t>(rows)), y(y_ref);
      ref.fn(w.data.data(), rb, rows, {q.data(), d.data(), s.data(), oi.data(), ox.data(), n_out}, n, y_ref.data());
      fast.fn(w.data.data(), rb, rows, {qk.data(), d.data(), s.data(), oi.data(), ox.data(), n_out}, n, y.data());
      // Scale of the sum: Σ|w·x| over the row.
      const auto wf = dequantize(w.view());
      for (int64_t r = 0; r < rows; ++r) {
        double mag = 0;
        for (int64_t c = 0; c < n; ++c) mag += std::fabs(double(wf[size_t(r * n + c)]) * x[size_t(c)]);
        EXPECT_LE(std::fabs(double(y[size_t(r)]) - y_ref[size_t(r)]), kKernelTol * mag)
            << format_name(f) << " blocks=" << blocks << " row=" << r;
      }
    }
  }
}

TEST(ActI16, MatmulMatchesExactReference) {
  ThreadPool pool(2);
  for (FormatId f : {FormatId::Q4_0, FormatId::Q4_1, FormatId::Q8_0}) {
    for (int64_t blocks : {1, 3, 17, 37}) {
      for (int64_t n_tok : {1, 2, 5}) {
        const int64_t rows = 37, cols = 32 * blocks;
        const auto w = quantize(f, randn(rows * cols), rows, cols);
        auto x = randn(n_tok * cols);
        std::vector<float> ref(size_t(n_tok * rows)), fast(ref.size());
        matmul_ref(w.view(), x.data(), n_tok, ref.data());
        matmul(pool, w.view(), x.data(), n_tok, fast.data(), best_cpu_isa(), ActQuant::kI16);
        EXPECT_LT(rel_err(fast, ref), kI16Tol) << format_name(f) << " cols=" << cols << " n_tok=" << n_tok;
        for (size_t j = 0; j < x.size(); j += 32) x[j] = 300.0f;
        matmul_ref(w.view(), x.data(), n_tok, ref.data());
        matmul(pool, w.view(), x.data(), n_tok, fast.data(), best_cpu_isa(), ActQuant::kI16);
        EXPECT_LT(rel_err(fast, ref), kI16OutlierTol) << format_name(f) << " outliers cols=" << cols;
      }
    }
  }
}

}  // namespace
}  // namespace imp
