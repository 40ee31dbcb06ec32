// Per-token comparison of a model's logits row against a stored reference (ref_logits.h).
//
// With the reference's top-k log-probs lp_i = logit_i − lse (i ∈ K, exact) and the model's
// lq_i = logit_i − lse_q over the full row, the KLD of a position is
//   Σ_{i∈K} p_i (lp_i − lq_i)  +  P_t log(P_t / Q_t),   P_t = 1 − Σ_K p_i, Q_t = 1 − Σ_K q_i,
// the exact KL divergence between the two distributions coarsened to K + 1 outcomes (the k
// ids and "anything else"). By the log-sum inequality it is a lower bound on the full KLD;
// the part left out is P_t · KL(p|tail ‖ q|tail), the divergence inside the reference's
// tail weighted by its mass. It is exact when P_t = 0, so `--top-k n_vocab` gives the full
// KLD (at 8·n_vocab bytes a token); the mean P_t is printed ("reference tail mass") so the
// size of what is not resolved is visible (ref_logits.h tabulates the bias against k: k = 32
// reads 17 % low on SmolLM2, k = 4096 0.3 %, hence the default of 4096). Tail terms with P_t below 1e-12 (rounding noise
// of a complete top-k) are dropped.
// Both sides compute log-probs with the same expression (double(logit) − lse), so a model
// compared against its own file gives exactly 0 and the same top-1 everywhere.
#pragma once

#include <span>

#include "eval/ref_logits.h"
#include "eval/stats.h"

namespace imp::eval {

// q_logits: the model's full row; next: the token that follows the position.
KldSample compare_token(const RefToken& ref, std::span<const float> q_logits, int32_t next);

}  // namespace imp::eval
