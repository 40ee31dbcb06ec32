// Gemma 3 (text): llama-like decoder with
//   - the token embedding scaled by sqrt(n_embd) (float32, as transformers' embed_scale),
//   - RMSNorm gains (1 + w): llama.cpp's converter stores 1 + w in GGUF (transformers'
//     GGUF loader subtracts the 1 back), so a GGUF gain is used as is,
//   - sandwich norms: attn_norm → attention → post_attention_norm → residual,
//     ffn_norm → FFN → post_ffw_norm → residual,
//   - per-head RMSNorm of q and k (attn_q_norm, attn_k_norm, head_dim gains),
//   - gated GELU-tanh FFN: down(gelu_tanh(gate·x) ⊙ up·x),
//   - attention scale query_pre_attn_scalar^−½ (config.json; GGUF has no key, so
//     1/sqrt(head_dim) as llama.cpp does, n_embd/n_head for the 62-layer 27B),
//   - local/global layers: layer l is global when (l + 1) % 6 == 0 (transformers'
//     sliding_window_pattern 6), otherwise attends to the last `sliding_window` positions
//     with RoPE base 10000; global layers use the config's RoPE base and its linear scaling,
//   - half-split (NeoX) RoPE (gemma3 GGUF rows are not permuted), tied lm_head, no logit
//     soft-capping (gemma 2 had it; gemma 3 has none).
// Shapes (PyTorch order): token_embd (n_vocab, n_embd); attn_q (n_head·hd, n_embd);
// attn_k, attn_v (n_kv·hd, n_embd); attn_output (n_embd, n_head·hd); ffn_gate, ffn_up
// (n_ff, n_embd); ffn_down (n_embd, n_ff); the four layer norms (n_embd); q/k norms (hd).
#pragma once

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

class Gemma3Model : public Model {
 public:
  // Checks the architecture and every tensor against the config; throws imp::Error naming
  // the tensor, its shape and the expected one.
  Gemma3Model(const ModelFile& file, const StoragePlan& plan, Backend& backend);

  const ModelConfig& config() const override { return config_; }
  KvCacheConfig kv_config(int64_t max_tokens, KvType dtype) const override;
  Backend& backend() const override { return backend_; }
  void forward(std::span<const int32_t> tokens, KvStore& kv, bool all_logits, std::vector<float>& logits) override;

  // Layer l attends globally (every 6th layer) rather than through the sliding window.
  static bool is_global_layer(int64_t l) { return (l + 1) % 6 == 0; }

 private:
  // Vectors are backend pointers (add_vector), matrices backend handles (add_matrix).
  struct Layer {
    const float* attn_norm = nullptr;
    const float* post_attn_norm = nullptr;
    const float* ffn_norm = nullptr;
    const float* post_ffw_norm = nullptr;
    const float* q_norm = nullptr;
    const float* k_norm = nullptr;
    MatrixHandle wq = -1, wk = -1, wv = -1, wo = -1, w_gate = -1, w_up = -1, w_down = -1;
  };
  Backend& backend_;
  ModelWeights weights_;  // owns what was converted at load: declared before the handles into it
  ModelConfig config_;
  RopeParams rope_local_, rope_global_;
  float attn_scale_ = 0.0f;
  float embd_scale_ = 1.0f;
  QuantMatrix token_embd_;  // host: lookups decode rows of it
  MatrixHandle output_ = -1;
  const float* output_norm_ = nullptr;
  std::vector<Layer> layers_;
  ForwardActivations decode_acts_, prefill_acts_;
};

}  // namespace imp
