#include "runtime/generate.h"

#include <chrono>

#include "common/error.h"

namespace imp {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

GenerateResult generate(Model& model, KvStore& kv, std::span<const int32_t> prompt, const GenerateParams& params,
                        const std::function<void(int32_t)>& on_token) {
  if (prompt.empty()) fail("empty prompt: give at least one token");
  const int64_t n_ctx = kv.config().max_tokens;
  if (kv.n_tokens() + int64_t(prompt.size()) > n_ctx) {
    fail("prompt of {} tokens is longer than the context ({} tokens)", prompt.size(), n_ctx - kv.n_tokens());
  }
  GenerateResult r;
  r.n_prompt = int64_t(prompt.size());
  Sampler sampler(params.sampling);
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  std::vector<float> logits;

  auto t0 = std::chrono::steady_clock::now();
  model.forward(prompt, kv, params.keep_prompt_logits, logits);
  r.prompt_seconds = seconds_since(t0);
  const int64_t V = model.n_vocab();
  if (params.keep_prompt_logits) r.prompt_logits = logits;
  std::span<const float> last(logits.data() + logits.size() - size_t(V), size_t(V));

  t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < params.n_predict; ++i) {
    const int32_t id = sampler.sample(last, history);
    r.tokens.push_back(id);
    history.push_back(id);
    if (on_token) on_token(id);
    if (params.is_end_of_generation && params.is_end_of_generation(id)) {
      r.stopped_at_eog = true;
      break;
    }
    if (i + 1 == params.n_predict) break;
    if (kv.n_tokens() + 1 > n_ctx) {
      r.stopped_at_context = true;
      break;
    }
    const int32_t step[1] = {id};
    model.forward(step, kv, false, logits);
    ++r.decode_steps;
    last = std::span<const float>(logits.data(), size_t(V));
  }
  r.decode_seconds = seconds_since(t0);
  return r;
}

}  // namespace imp
