// Statistics helpers of imp perplexity / imp kld (src/eval): checked against direct
// computations in the test, on fresh random data.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "common/error.h"
#include "eval/kld.h"
#include "eval/ref_logits.h"
#include "eval/stats.h"

namespace imp::eval {
namespace {

std::vector<float> random_row(std::mt19937& g, size_t n, float scale, float offset) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g) + offset;
  return v;
}

double direct_kl(const std::vector<float>& p_logits, const std::vector<float>& q_logits) {
  const double lp = log_sum_exp(p_logits), lq = log_sum_exp(q_logits);
  double kl = 0.0;
  for (size_t i = 0; i < p_logits.size(); ++i) {
    const double a = p_logits[i] - lp, b = q_logits[i] - lq;
    kl += std::exp(a) * (a - b);
  }
  return kl;
}

TEST(EvalStats, LogSumExpMatchesDirectSumWithLargeOffsets) {
  std::mt19937 g(std::random_device{}());
  for (const size_t n : {1u, 3u, 17u, 129u}) {
    const auto row = random_row(g, n, 3.0f, 80.0f);  // exp(80+) overflows float, not double
    double direct = 0.0;
    for (const float v : row) direct += std::exp(double(v));
    EXPECT_NEAR(log_sum_exp(row), std::log(direct), 1e-9 * std::abs(std::log(direct)));
  }
  EXPECT_THROW(log_sum_exp({}), Error);
}

TEST(EvalStats, ArgmaxTakesFirstOnTies) {
  const std::vector<float> v = {1.0f, 3.0f, 2.0f, 3.0f};
  EXPECT_EQ(argmax(v), 1);
  EXPECT_EQ(top_k_ids(v, 2), (std::vector<int32_t>{1, 3}));
}

TEST(EvalStats, MeanErrorAndPerplexityFollowLlamaCppFormula) {
  std::mt19937 g(std::random_device{}());
  std::uniform_real_distribution<double> d(0.1, 6.0);
  std::vector<double> x(37);
  MeanAccumulator acc;
  for (auto& v : x) acc.add(v = d(g));
  double mean = 0.0;
  for (const double v : x) mean += v;
  mean /= double(x.size());
  double var = 0.0;  // population variance, as mean(x²) − mean²
  for (const double v : x) var += (v - mean) * (v - mean);
  var /= double(x.size());
  const double se = std::sqrt(var / double(x.size() - 1));
  EXPECT_NEAR(acc.mean(), mean, 1e-12);
  EXPECT_NEAR(acc.error(), se, 1e-9);
  const Perplexity p = perplexity(acc);
  EXPECT_NEAR(p.ppl, std::exp(mean), 1e-9 * std::exp(mean));
  EXPECT_NEAR(p.error, std::exp(mean) * se, 1e-8 * std::exp(mean));
  MeanAccumulator one;
  one.add(2.0);
  EXPECT_EQ(one.error(), 0.0);
}

TEST(EvalStats, PercentilesInterpolateLinearly) {
  const std::vector<double> s = {1.0, 2.0, 3.0, 4.0};
  EXPECT_DOUBLE_EQ(percentile_sorted(s, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(percentile_sorted(s, 0.99), 3.97);
  EXPECT_DOUBLE_EQ(percentile_sorted(s, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(percentile_sorted(s, 1.0), 4.0);
  EXPECT_DOUBLE_EQ(median_sorted(s), 2.5);
  EXPECT_DOUBLE_EQ(median_sorted(std::vector<double>{1.0, 5.0, 9.0}), 5.0);
  EXPECT_THROW(median_sorted({}), Error);
}

TEST(EvalStats, SummaryMatchesHandComputation) {
  std::vector<KldSample> v = {
      {0.1, 1.0, 1.5, true, 0.0}, {0.3, 2.0, 2.0, false, 0.0}, {0.2, 0.5, 0.25, true, 0.0}};
  const KldSummary s = summarize_kld(v);
  EXPECT_EQ(s.n, 3);
  EXPECT_NEAR(s.kld_mean, 0.2, 1e-15);
  EXPECT_NEAR(s.kld_error, std::sqrt((0.14 / 3 - 0.04) / 2), 1e-12);
  EXPECT_DOUBLE_EQ(s.kld_median, 0.2);
  EXPECT_DOUBLE_EQ(s.kld_max, 0.3);
  EXPECT_NEAR(s.kld_p99, 0.2 + 0.98 * 0.1, 1e-15);
  EXPECT_NEAR(s.same_top, 2.0 / 3.0, 1e-15);
  EXPECT_NEAR(s.same_top_error, std::sqrt(2.0 / 9.0 / 2.0), 1e-12);
  EXPECT_NEAR(s.ppl_ref.ppl, std::exp(3.5 / 3), 1e-12);
  EXPECT_NEAR(s.ppl_q.ppl, std::exp(3.75 / 3), 1e-12);
  EXPECT_NEAR(s.ratio, std::exp(0.25 / 3), 1e-12);
  double dp2 = 0.0;
  for (const auto& x : v) dp2 += std::pow(std::exp(-x.nll_q) - std::exp(-x.nll_ref), 2);
  EXPECT_NEAR(s.rms_dp, std::sqrt(dp2 / 3), 1e-12);
  EXPECT_THROW(summarize_kld({}), Error);
}

RefToken ref_of(const std::vector<float>& logits, int64_t k, int32_t next, std::vector<int32_t>& ids, std::vector<float>& top) {
  ids = top_k_ids(logits, k);
  top.clear();
  for (const int32_t id : ids) top.push_back(logits[size_t(id)]);
  return {log_sum_exp(logits), logits[size_t(next)], ids, top};
}

TEST(EvalKld, FullTopKIsTheExactKldAndSelfIsZero) {
  std::mt19937 g(std::random_device{}());
  for (const size_t n : {3u, 17u, 129u}) {
    const auto p = random_row(g, n, 2.0f, 0.0f);
    auto q = p;
    std::normal_distribution<float> noise(0.0f, 0.3f);
    for (auto& x : q) x += noise(g);
    std::vector<int32_t> ids;
    std::vector<float> top;
    const RefToken r = ref_of(p, int64_t(n), 1, ids, top);
    const KldSample s = compare_token(r, q, 1);
    EXPECT_NEAR(s.kld, direct_kl(p, q), 1e-9);
    EXPECT_NEAR(s.nll_ref, log_sum_exp(p) - p[1], 1e-12);
    EXPECT_NEAR(s.nll_q, log_sum_exp(q) - q[1], 1e-12);
    EXPECT_EQ(s.same_top, argmax(p) == argmax(q));
    const KldSample self = compare_token(ref_of(p, 2, 0, ids, top), p, 0);
    EXPECT_EQ(self.kld, 0.0);
    EXPECT_TRUE(self.same_top);
  }
}

TEST(EvalKld, TruncatedTopKIsTheCoarsenedKldAndALowerBound) {
  std::mt19937 g(std::random_device{}());
  const size_t n = 37;
  const auto p = random_row(g, n, 1.5f, 0.0f);
  auto q = p;
  std::normal_distribution<float> noise(0.0f, 0.5f);
  for (auto& x : q) x += noise(g);
  std::vector<int32_t> ids;
  std::vector<float> top;
  const RefToken r = ref_of(p, 5, 2, ids, top);
  const double lp = log_sum_exp(p), lq = log_sum_exp(q);
  double kl = 0.0, pt = 1.0, qt = 1.0;
  for (const int32_t id : ids) {
    const double a = std::exp(p[size_t(id)] - lp), b = std::exp(q[size_t(id)] - lq);
    kl += a * std::log(a / b);
    pt -= a;
    qt -= b;
  }
  kl += pt * std::log(pt / qt);
  const KldSample s = compare_token(r, q, 2);
  EXPECT_NEAR(s.kld, kl, 1e-9);
  EXPECT_LE(s.kld, direct_kl(p, q) + 1e-12);
  EXPECT_NEAR(s.tail_ref, pt, 1e-12);
}

TEST(EvalRefLogits, RoundTripAndTruncation) {
  std::mt19937 g(std::random_device{}());
  const auto dir = std::filesystem::temp_directory_path() / ("imp_eval_" + std::to_string(g()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "ref.bin").string();
  RefHeader h{17, 8, 3, 3, 5, 0x1234abcdull, "tiny model"};
  std::vector<std::vector<float>> rows;
  {
    RefLogitsWriter w(path, h);
    for (int i = 0; i < 9; ++i) {
      rows.push_back(random_row(g, 17, 2.0f, 0.0f));
      w.add(rows.back(), i);
    }
    w.finish();
  }
  const RefLogits r = RefLogits::load(path);
  EXPECT_EQ(r.header().model_name, "tiny model");
  EXPECT_EQ(r.header().tokens_hash, 0x1234abcdull);
  ASSERT_EQ(r.size(), 9u);
  for (int i = 0; i < 9; ++i) {
    const RefToken t = r.token(uint64_t(i));
    EXPECT_EQ(t.lse, log_sum_exp(rows[size_t(i)]));
    EXPECT_EQ(t.next_logit, rows[size_t(i)][size_t(i)]);
    EXPECT_EQ(std::vector<int32_t>(t.ids.begin(), t.ids.end()), top_k_ids(rows[size_t(i)], 5));
    EXPECT_EQ(t.logits[0], *std::max_element(rows[size_t(i)].begin(), rows[size_t(i)].end()));
  }
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 3);
  try {
    RefLogits::load(path);
    FAIL() << "a truncated file loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  RefLogitsWriter short_w((dir / "short.bin").string(), h);
  short_w.add(rows[0], 0);
  EXPECT_THROW(short_w.finish(), Error);
  std::filesystem::remove_all(dir);
}

TEST(EvalRefLogits, TokenHashSeesOrderAndValues) {
  const std::vector<int32_t> a = {1, 2, 3}, b = {2, 1, 3}, c = {1, 2, 4};
  EXPECT_NE(hash_tokens(a), hash_tokens(b));
  EXPECT_NE(hash_tokens(a), hash_tokens(c));
  EXPECT_EQ(hash_tokens(a), hash_tokens(std::vector<int32_t>{1, 2, 3}));
}

}  // namespace
}  // namespace imp::eval
