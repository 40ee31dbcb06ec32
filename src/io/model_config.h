// ModelConfig — architecture hyper-parameters and tokenizer summary, the same struct
// whether they came from GGUF metadata or a Hugging Face config.json.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace imp {

struct RopeScaling {
  std::string type;  // "", "linear", "yarn", "llama3"
  float factor = 1.0f;
  int64_t original_context = 0;
  float low_freq_factor = 1.0f, high_freq_factor = 4.0f;  // llama3
};

struct ModelConfig {
  std::string architecture;  // llama, qwen2, qwen3, gemma3, mistral (as llama.cpp names them)
  std::string name;
  int64_t n_vocab = 0;
  int64_t n_ctx_train = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_ff = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;  // key_length; defaults to n_embd / n_head
  float rms_norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling;
  int64_t sliding_window = 0;  // gemma3 local layers
  int64_t n_expert = 0, n_expert_used = 0;
  bool tie_word_embeddings = false;
};

struct TokenizerInfo {
  std::string model;  // "llama" (SentencePiece), "gpt2" (byte-level BPE), "" when absent
  std::string pre;    // BPE pre-tokenizer id
  int64_t n_tokens = 0;
  int64_t n_merges = 0;
  std::optional<int64_t> bos_id, eos_id, unk_id, pad_id, eot_id;
  bool add_bos = false;
  bool has_chat_template = false;
  std::string source;  // "gguf metadata", "tokenizer.json", …
};

}  // namespace imp
