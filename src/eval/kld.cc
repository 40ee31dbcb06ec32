#include "eval/kld.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace imp::eval {

KldSample compare_token(const RefToken& ref, std::span<const float> q_logits, int32_t next) {
  if (next < 0 || size_t(next) >= q_logits.size()) fail("next token {} is outside the vocabulary", next);
  const double lse_q = log_sum_exp(q_logits);
  KldSample s;
  double kld = 0.0, p_sum = 0.0, q_sum = 0.0;
  for (size_t j = 0; j < ref.ids.size(); ++j) {
    const double lp = double(ref.logits[j]) - ref.lse;
    const double lq = double(q_logits[size_t(ref.ids[j])]) - lse_q;
    const double p = std::exp(lp);
    kld += p * (lp - lq);
    p_sum += p;
    q_sum += std::exp(lq);
  }
  const double p_tail = 1.0 - p_sum;
  if (p_tail > 1e-12) {
    const double q_tail = std::max(1.0 - q_sum, 1e-300);
    kld += p_tail * std::log(p_tail / q_tail);
  }
  s.kld = kld;
  s.tail_ref = std::max(p_tail, 0.0);
  s.nll_ref = -(double(ref.next_logit) - ref.lse);
  s.nll_q = -(double(q_logits[size_t(next)]) - lse_q);
  s.same_top = !ref.ids.empty() && ref.ids[0] == argmax(q_logits);
  return s;
}

}  // namespace imp::eval
