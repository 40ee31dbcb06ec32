// Statistics for `imp perplexity` and `imp kld`, computed the way llama.cpp's
// tools/perplexity computes them so the numbers compare one to one.
//
// Per token: nll = −log softmax(logits)[next], softmax in double (max subtracted first).
// PPL = exp(mean nll); its error (llama.cpp's "+/-") is PPL · sqrt(var(nll) / (n − 1)),
// var = mean(nll²) − mean(nll)², i.e. the standard error of the mean nll propagated
// through exp to first order.
// Percentiles interpolate linearly between order statistics (numpy's default, the same
// lambda llama.cpp uses); the median averages the two middle values.
// Rates (same top-1) carry the binomial error sqrt(f(1 − f) / (n − 1)).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace imp::eval {

// log Σ exp(x_i) in double, max subtracted first. Throws on an empty row.
double log_sum_exp(std::span<const float> logits);
// Index of the largest logit (the first one on ties).
int32_t argmax(std::span<const float> logits);

// Running mean ± standard error of the mean of a series (sums of x and x²).
struct MeanAccumulator {
  double sum = 0.0, sum2 = 0.0;
  int64_t count = 0;
  void add(double x) {
    sum += x;
    sum2 += x * x;
    ++count;
  }
  double mean() const;
  // sqrt((mean(x²) − mean(x)²) / (n − 1)); 0 for fewer than two samples.
  double error() const;
};

struct Perplexity {
  double ppl = 0.0;
  double error = 0.0;
};
// From accumulated per-token nll: exp(mean) ± exp(mean) · error(mean).
Perplexity perplexity(const MeanAccumulator& nll);

// llama.cpp's percentile: fraction in [0, 1] of a sorted, non-empty vector.
double percentile_sorted(std::span<const double> sorted, double fraction);
double median_sorted(std::span<const double> sorted);

// One scored token of a KLD run.
struct KldSample {
  double kld = 0.0;       // KL(reference ‖ quantized) for this position
  double nll_ref = 0.0;   // −log p_ref(next)
  double nll_q = 0.0;     // −log p_q(next)
  bool same_top = false;  // the two argmaxes agree
  double tail_ref = 0.0;  // probability mass of the reference outside its stored top-k
};

struct KldSummary {
  int64_t n = 0;
  Perplexity ppl_ref, ppl_q;
  double ln_ratio = 0.0, ln_ratio_error = 0.0;  // mean(nll_q − nll_ref) ± error
  double ratio = 0.0, ratio_error = 0.0;        // PPL(Q)/PPL(ref) = exp(ln_ratio)
  double ppl_diff = 0.0;                        // PPL(Q) − PPL(ref)
  double cor_ln_ppl = 0.0;                      // Pearson correlation of nll_q and nll_ref
  double kld_mean = 0.0, kld_error = 0.0;
  double kld_median = 0.0, kld_p99 = 0.0, kld_p999 = 0.0, kld_max = 0.0, kld_min = 0.0;
  double same_top = 0.0, same_top_error = 0.0;  // fraction in [0, 1]
  double dp_mean = 0.0, dp_error = 0.0;         // Δp = p_q(next) − p_ref(next)
  double rms_dp = 0.0, rms_dp_error = 0.0;
  double tail_ref_mean = 0.0;
};

// Throws when samples is empty.
KldSummary summarize_kld(std::span<const KldSample> samples);

}  // namespace imp::eval
