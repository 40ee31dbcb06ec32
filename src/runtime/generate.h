// Generation loop: prefill the prompt in one forward pass, then decode token by token
// until end of generation, n_predict tokens, or a full context.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "model/model.h"
#include "runtime/kv_store.h"
#include "runtime/sampler.h"

namespace imp {

struct GenerateParams {
  int64_t n_predict = 128;
  SamplerParams sampling;
  std::function<bool(int32_t)> is_end_of_generation;  // may be empty
  bool keep_prompt_logits = false;  // fill GenerateResult::prompt_logits (n_prompt, n_vocab)
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated, end-of-generation token included when hit
  std::vector<float> prompt_logits;
  int64_t n_prompt = 0;
  double prompt_seconds = 0.0;
  double decode_seconds = 0.0;  // sampling every token and the decode steps between them
  int64_t decode_steps = 0;     // single-token forward passes run
  bool stopped_at_eog = false;
  bool stopped_at_context = false;
};

// on_token is called as soon as each token is chosen (for streaming); it may be empty.
// Throws imp::Error when the prompt is empty or does not fit the KV cache's context.
GenerateResult generate(Model& model, KvStore& kv, std::span<const int32_t> prompt, const GenerateParams& params,
                        const std::function<void(int32_t)>& on_token);

}  // namespace imp
