// Model — the interface every architecture's forward pass implements, and the factory that
// picks the implementation from the file's architecture (llama.cc: llama, mistral, qwen2,
// qwen3; gemma3.cc: gemma3). The tools (run, chat, bench, perplexity, kld) and generate()
// only see this interface.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <span>
#include <vector>

#include "io/model_file.h"
#include "planner/storage_plan.h"
#include "runtime/backend.h"
#include "runtime/kv_store.h"

namespace imp {

class Model {
 public:
  virtual ~Model() = default;
  virtual const ModelConfig& config() const = 0;
  int64_t n_vocab() const { return config().n_vocab; }
  int64_t n_ctx() const { return config().n_ctx_train; }
  virtual KvCacheConfig kv_config(int64_t max_tokens, KvType dtype) const = 0;
  // The backend the model's weights were handed to; create the KV cache with it.
  virtual Backend& backend() const = 0;
  // Runs `tokens` at positions kv.n_tokens() … and appends them to the cache.
  // logits: (n_out, n_vocab) with n_out = tokens.size() when all_logits, else 1 (the last).
  // kv must come from backend().create_kv_cache.
  virtual void forward(std::span<const int32_t> tokens, KvStore& kv, bool all_logits, std::vector<float>& logits) = 0;

  // Calibration hook (imp quantize / imp imatrix): when set, forward calls it before every
  // linear matmul of a layer with the weight's GGUF name and its input activations x
  // (n_tok rows of cols), read in place — so only on a host-memory backend (the CPU).
  using LinearObserver = std::function<void(const std::string& weight, const float* x, int64_t n_tok, int64_t cols)>;
  void set_observer(const LinearObserver* observer) { observer_ = observer; }

 protected:
  const LinearObserver* observer() const { return observer_; }
  // blk.<layer>.<weight>.weight, x (n_tok, cols).
  void observe(int64_t layer, const char* weight, const float* x, int64_t n_tok, int64_t cols) const {
    if (observer_) (*observer_)("blk." + std::to_string(layer) + "." + weight + ".weight", x, n_tok, cols);
  }

 private:
  const LinearObserver* observer_ = nullptr;
};

// The architectures create_model() runs, for error messages and `imp inspect`.
inline constexpr const char* kSupportedArchitectures = "llama, mistral, qwen2, qwen3, gemma3";

// Throws imp::Error naming the architecture when no implementation runs it, and whatever
// the implementation throws for tensors that do not match the config.
std::unique_ptr<Model> create_model(const ModelFile& file, const StoragePlan& plan, Backend& backend);

// Weight lookup by GGUF name (../shared/specs/formats.md §4.5) in a file that may use GGUF
// names or Hugging Face names (io/tensor_names.h translates); the models call these.
const TensorSource* find_weight(const ModelFile& file, const std::string& gguf_name);
const TensorSource& weight_at(const ModelFile& file, const std::string& gguf_name);  // throws naming both names

}  // namespace imp
