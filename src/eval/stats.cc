#include "eval/stats.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace imp::eval {

double log_sum_exp(std::span<const float> logits) {
  if (logits.empty()) fail("log_sum_exp: empty logits row");
  float max_logit = logits[0];
  for (const float v : logits) max_logit = std::max(max_logit, v);
  double sum = 0.0;
  for (const float v : logits) sum += std::exp(double(v) - double(max_logit));
  return double(max_logit) + std::log(sum);
}

int32_t argmax(std::span<const float> logits) {
  if (logits.empty()) fail("argmax: empty logits row");
  size_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = i;
  return int32_t(best);
}

double MeanAccumulator::mean() const { return count > 0 ? sum / double(count) : 0.0; }

double MeanAccumulator::error() const {
  if (count < 2) return 0.0;
  const double m = mean();
  const double var = sum2 / double(count) - m * m;
  return var > 0.0 ? std::sqrt(var / double(count - 1)) : 0.0;
}

Perplexity perplexity(const MeanAccumulator& nll) {
  const double ppl = std::exp(nll.mean());
  return {ppl, ppl * nll.error()};
}

double percentile_sorted(std::span<const double> sorted, double fraction) {
  if (sorted.empty()) fail("percentile of an empty set");
  if (fraction <= 0.0) return sorted.front();
  if (fraction >= 1.0) return sorted.back();
  double p = fraction * double(sorted.size() - 1);
  const size_t ip = size_t(p);
  p -= double(ip);
  return (1.0 - p) * sorted[ip] + p * sorted[std::min(ip + 1, sorted.size() - 1)];
}

double median_sorted(std::span<const double> sorted) {
  if (sorted.empty()) fail("median of an empty set");
  const size_t n = sorted.size();
  return n % 2 == 0 ? 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]) : sorted[n / 2];
}

KldSummary summarize_kld(std::span<const KldSample> samples) {
  if (samples.empty()) fail("KLD statistics: no scored tokens");
  KldSummary s;
  s.n = int64_t(samples.size());
  MeanAccumulator nll_ref, nll_q, ln_ratio, kld, top, dp, dp2, tail;
  double cross = 0.0;
  std::vector<double> klds;
  klds.reserve(samples.size());
  for (const KldSample& x : samples) {
    nll_ref.add(x.nll_ref);
    nll_q.add(x.nll_q);
    ln_ratio.add(x.nll_q - x.nll_ref);
    cross += x.nll_q * x.nll_ref;
    kld.add(x.kld);
    klds.push_back(x.kld);
    top.add(x.same_top ? 1.0 : 0.0);
    const double d = std::exp(-x.nll_q) - std::exp(-x.nll_ref);
    dp.add(d);
    dp2.add(d * d);
    tail.add(x.tail_ref);
  }
  s.ppl_ref = perplexity(nll_ref);
  s.ppl_q = perplexity(nll_q);
  s.ln_ratio = ln_ratio.mean();
  s.ln_ratio_error = ln_ratio.error();
  s.ratio = std::exp(s.ln_ratio);
  s.ratio_error = s.ratio * s.ln_ratio_error;
  s.ppl_diff = s.ppl_q.ppl - s.ppl_ref.ppl;
  const double n = double(s.n);
  const double cov = cross / n - nll_q.mean() * nll_ref.mean();
  const double var_q = nll_q.sum2 / n - nll_q.mean() * nll_q.mean();
  const double var_r = nll_ref.sum2 / n - nll_ref.mean() * nll_ref.mean();
  s.cor_ln_ppl = var_q > 0.0 && var_r > 0.0 ? cov / std::sqrt(var_q * var_r) : 1.0;

  s.kld_mean = kld.mean();
  s.kld_error = kld.error();
  std::sort(klds.begin(), klds.end());
  s.kld_median = median_sorted(klds);
  s.kld_p99 = percentile_sorted(klds, 0.99);
  s.kld_p999 = percentile_sorted(klds, 0.999);
  s.kld_max = klds.back();
  s.kld_min = klds.front();

  s.same_top = top.mean();
  s.same_top_error = s.n > 1 ? std::sqrt(s.same_top * (1.0 - s.same_top) / (n - 1.0)) : 0.0;
  s.dp_mean = dp.mean();
  s.dp_error = dp.error();
  // RMS Δp = sqrt(mean Δp²); its error propagates the error of mean Δp² through sqrt.
  s.rms_dp = std::sqrt(dp2.mean());
  s.rms_dp_error = s.rms_dp > 0.0 ? 0.5 / s.rms_dp * dp2.error() : 0.0;
  s.tail_ref_mean = tail.mean();
  return s;
}

}  // namespace imp::eval
