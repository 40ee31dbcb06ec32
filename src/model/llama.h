// The llama family: llama, mistral, SmolLM (arch "llama"), qwen2 (+ q/k/v biases, NeoX
// RoPE), qwen3 (+ per-head q/k RMSNorm, NeoX RoPE).
//
// Weights are GGUF-named (../shared/specs/formats.md §4.5) and held as the StoragePlan says.
// Shapes (PyTorch order): token_embd (n_vocab, n_embd); attn_q (n_head·hd, n_embd);
// attn_k, attn_v (n_kv·hd, n_embd); attn_output (n_embd, n_head·hd); ffn_gate, ffn_up
// (n_ff, n_embd); ffn_down (n_embd, n_ff); norms (n_embd); attn_q_norm, attn_k_norm (hd).
#pragma once

#include <deque>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "io/model_file.h"
#include "planner/storage_plan.h"
#include "runtime/kv_cache.h"

namespace imp {

class LlamaModel {
 public:
  // Checks the architecture and every tensor against the config; throws imp::Error naming
  // the tensor, its shape and the expected one.
  LlamaModel(const ModelFile& file, const StoragePlan& plan, CpuBackend& backend);

  const ModelConfig& config() const { return config_; }
  int64_t n_vocab() const { return config_.n_vocab; }
  int64_t n_ctx() const { return config_.n_ctx_train; }
  KvCacheConfig kv_config(int64_t max_tokens, KvType dtype) const;

  // Runs `tokens` at positions kv.n_tokens() … and appends them to the cache.
  // logits: (n_out, n_vocab) with n_out = tokens.size() when all_logits, else 1 (the last).
  void forward(std::span<const int32_t> tokens, KvCache& kv, bool all_logits, std::vector<float>& logits);

  // Calibration hook (imp quantize / imp imatrix): when set, called before every linear
  // matmul with the weight's GGUF name and its input activations x (n_tok rows of cols).
  using LinearObserver = std::function<void(const std::string& weight, const float* x, int64_t n_tok, int64_t cols)>;
  void set_observer(const LinearObserver* observer) { observer_ = observer; }

 private:
  struct Layer {
    const float* attn_norm = nullptr;
    const float* ffn_norm = nullptr;
    const float* q_norm = nullptr;  // qwen3
    const float* k_norm = nullptr;
    const float* bq = nullptr;  // qwen2
    const float* bk = nullptr;
    const float* bv = nullptr;
    QuantMatrix wq, wk, wv, wo, w_gate, w_up, w_down;
  };

  QuantMatrix matrix(const std::string& name, int64_t rows, int64_t cols);
  const float* vector(const std::string& name, int64_t n, bool optional = false);

  const ModelFile& file_;
  const StoragePlan& plan_;
  CpuBackend& backend_;
  ModelConfig config_;
  RopeParams rope_;
  QuantMatrix token_embd_, output_;
  const float* output_norm_ = nullptr;
  std::vector<Layer> layers_;
  std::deque<OwnedQuantMatrix> owned_;
  const LinearObserver* observer_ = nullptr;  // weights converted at load (planned tiers f32/bf16)
};

}  // namespace imp
