// The llama family: llama, mistral, SmolLM (arch "llama"), qwen2 (+ q/k/v biases, NeoX
// RoPE), qwen3 (+ per-head q/k RMSNorm, NeoX RoPE).
//
// Weights are GGUF-named (../shared/specs/formats.md §4.5) and held as the StoragePlan says.
// Shapes (PyTorch order): token_embd (n_vocab, n_embd); attn_q (n_head·hd, n_embd);
// attn_k, attn_v (n_kv·hd, n_embd); attn_output (n_embd, n_head·hd); ffn_gate, ffn_up
// (n_ff, n_embd); ffn_down (n_embd, n_ff); norms (n_embd); attn_q_norm, attn_k_norm (hd).
//
// The forward pass runs on any Backend (runtime/backend.h): weights are handed to it at
// load, activations live in its buffers, and the KV cache is the one it created
// (create_kv_cache(kv_config(...))). Decode steps (one token) use their own fixed set of
// activation buffers, so a backend that captures the step as a graph sees the same
// pointers every step; prefill buffers grow with the largest batch seen.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "io/model_file.h"
#include "model/model.h"
#include "model/model_weights.h"
#include "planner/storage_plan.h"
#include "runtime/backend.h"
#include "runtime/kv_store.h"

namespace imp {

class LlamaModel : public Model {
 public:
  // Checks the architecture and every tensor against the config; throws imp::Error naming
  // the tensor, its shape and the expected one.
  LlamaModel(const ModelFile& file, const StoragePlan& plan, Backend& backend);

  const ModelConfig& config() const override { return config_; }
  int64_t n_vocab() const { return config_.n_vocab; }
  int64_t n_ctx() const { return config_.n_ctx_train; }
  KvCacheConfig kv_config(int64_t max_tokens, KvType dtype) const override;
  Backend& backend() const override { return backend_; }

  // Runs `tokens` at positions kv.n_tokens() … and appends them to the cache.
  // logits: (n_out, n_vocab) with n_out = tokens.size() when all_logits, else 1 (the last).
  // kv must come from backend().create_kv_cache.
  void forward(std::span<const int32_t> tokens, KvStore& kv, bool all_logits, std::vector<float>& logits) override;

 private:
  // Vectors are backend pointers (add_vector), matrices backend handles (add_matrix).
  struct Layer {
    const float* attn_norm = nullptr;
    const float* ffn_norm = nullptr;
    const float* q_norm = nullptr;  // qwen3
    const float* k_norm = nullptr;
    const float* bq = nullptr;  // qwen2
    const float* bk = nullptr;
    const float* bv = nullptr;
    MatrixHandle wq = -1, wk = -1, wv = -1, wo = -1, w_gate = -1, w_up = -1, w_down = -1;
  };
  Backend& backend_;
  ModelWeights weights_;  // owns what was converted at load: declared before the handles into it
  ModelConfig config_;
  RopeParams rope_;
  QuantMatrix token_embd_;  // host: lookups decode rows of it
  MatrixHandle output_ = -1;
  const float* output_norm_ = nullptr;
  std::vector<Layer> layers_;
  ForwardActivations decode_acts_, prefill_acts_;
};

}  // namespace imp
