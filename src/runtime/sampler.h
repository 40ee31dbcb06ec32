// Sampler — picks the next token from a row of logits.
//
// Order: repetition penalty (over the last repeat_last_n tokens: positive logits divided by
// the penalty, negative ones multiplied, as CTRL and llama.cpp do), then greedy argmax when
// temperature ≤ 0; otherwise logits / temperature → softmax → top-k → top-p (smallest set
// with cumulative probability ≥ p) → min-p (drop tokens below min_p × the top probability)
// → renormalize → draw with a seeded std::mt19937_64. Ties in argmax go to the lower id.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace imp {

struct SamplerParams {
  float temperature = 0.8f;
  int32_t top_k = 40;      // ≤ 0: off
  float top_p = 0.95f;     // ≥ 1: off
  float min_p = 0.05f;     // ≤ 0: off
  float repeat_penalty = 1.0f;  // 1: off
  int32_t repeat_last_n = 64;
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& params);
  // history: tokens so far (prompt + generated), for the repetition penalty.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);

 private:
  SamplerParams params_;
  std::mt19937_64 rng_;
  std::vector<float> work_;
  std::vector<int32_t> ids_;
};

}  // namespace imp
