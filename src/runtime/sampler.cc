#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_set>

#include "common/error.h"

namespace imp {

Sampler::Sampler(const SamplerParams& p) : params_(p), rng_(p.seed) {
  if (!(p.temperature >= 0.0f) || !(p.repeat_penalty > 0.0f) || !(p.top_p > 0.0f) || std::isnan(p.min_p)) {
    fail("sampler: invalid parameters (temperature {}, top_p {}, min_p {}, repeat_penalty {})", p.temperature, p.top_p,
         p.min_p, p.repeat_penalty);
  }
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  const int32_t n = int32_t(logits.size());
  if (n == 0) fail("sampler: empty logits");
  work_.assign(logits.begin(), logits.end());
  if (params_.repeat_penalty != 1.0f && params_.repeat_last_n != 0) {
    const size_t last = params_.repeat_last_n < 0 ? history.size()
                                                   : std::min(history.size(), size_t(params_.repeat_last_n));
    std::unordered_set<int32_t> seen(history.end() - ptrdiff_t(last), history.end());
    for (int32_t id : seen) {
      if (id < 0 || id >= n) continue;
      float& l = work_[size_t(id)];
      l = l > 0.0f ? l / params_.repeat_penalty : l * params_.repeat_penalty;
    }
  }
  if (params_.temperature <= 0.0f) {
    return int32_t(std::max_element(work_.begin(), work_.end()) - work_.begin());
  }
  // Candidates sorted by logit, descending (stable: ties keep id order).
  ids_.resize(size_t(n));
  std::iota(ids_.begin(), ids_.end(), 0);
  int32_t keep = n;
  if (params_.top_k > 0 && params_.top_k < n) keep = params_.top_k;
  auto by_logit = [&](int32_t a, int32_t b) { return work_[size_t(a)] > work_[size_t(b)] || (work_[size_t(a)] == work_[size_t(b)] && a < b); };
  std::partial_sort(ids_.begin(), ids_.begin() + keep, ids_.end(), by_logit);
  ids_.resize(size_t(keep));

  std::vector<double> prob(ids_.size());
  const double mx = work_[size_t(ids_[0])];
  double sum = 0.0;
  for (size_t i = 0; i < ids_.size(); ++i) {
    sum += prob[i] = std::exp((double(work_[size_t(ids_[i])]) - mx) / params_.temperature);
  }
  for (double& p : prob) p /= sum;
  size_t cut = prob.size();
  if (params_.top_p < 1.0f) {
    double cum = 0.0;
    for (size_t i = 0; i < prob.size(); ++i) {
      cum += prob[i];
      if (cum >= params_.top_p) {
        cut = i + 1;
        break;
      }
    }
  }
  if (params_.min_p > 0.0f) {
    const double floor = params_.min_p * prob[0];
    size_t i = 1;
    while (i < cut && prob[i] >= floor) ++i;
    cut = i;
  }
  std::discrete_distribution<size_t> pick(prob.begin(), prob.begin() + ptrdiff_t(cut));
  return ids_[pick(rng_)];
}

}  // namespace imp
