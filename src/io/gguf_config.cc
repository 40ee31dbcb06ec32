#include "io/gguf_config.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>

#include "common/error.h"

namespace imp {
namespace {

// Counts and sizes: any integer type, 0 ≤ v ≤ 2^40 (far above any real model, far below
// anything that could overflow the arithmetic done with them).
constexpr int64_t kMaxCount = int64_t(1) << 40;

std::optional<int64_t> get_int(const GgufFile& f, const std::string& key, int64_t lo = 0, int64_t hi = kMaxCount) {
  const GgufValue* v = f.find(key);
  if (!v) return std::nullopt;
  const auto x = v->as_int();
  if (!v->is_integer() || !x) fail("{}: key '{}' must be an integer, got {}", f.name, key, v->type_string());
  if (*x < lo || *x > hi) fail("{}: key '{}' = {} is out of range [{}, {}]", f.name, key, *x, lo, hi);
  return x;
}

// UINT32 or a per-layer ARRAY of integers; an array reports its largest entry and, when
// the layers differ, a warning.
std::optional<int64_t> get_int_or_layers(const GgufFile& f, const std::string& key, std::vector<std::string>& warnings) {
  const GgufValue* v = f.find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::kArray) return get_int(f, key);
  if (!gguf_type_is_integer(v->elem_type) || v->array_size() == 0) {
    fail("{}: key '{}' must be an integer or a non-empty integer array, got {}", f.name, key, v->type_string());
  }
  int64_t lo = kMaxCount, hi = 0;
  for (uint64_t k = 0; k < v->array_size(); ++k) {
    const auto x = v->element(k).as_int();
    if (!x || *x < 0 || *x > kMaxCount) fail("{}: key '{}' entry {} is out of range", f.name, key, k);
    lo = std::min(lo, *x);
    hi = std::max(hi, *x);
  }
  if (lo != hi) warnings.push_back(fmt::format("{} varies per layer ({}..{}); the config shows {}", key, lo, hi, hi));
  return hi;
}

std::optional<double> get_float(const GgufFile& f, const std::string& key) {
  const GgufValue* v = f.find(key);
  if (!v) return std::nullopt;
  const auto x = v->as_float();
  if (!x) fail("{}: key '{}' must be FLOAT32 or FLOAT64, got {}", f.name, key, v->type_string());
  if (!std::isfinite(*x)) fail("{}: key '{}' is not finite", f.name, key);
  return x;
}

std::optional<std::string> get_string(const GgufFile& f, const std::string& key) {
  const GgufValue* v = f.find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::kString) fail("{}: key '{}' must be a STRING, got {}", f.name, key, v->type_string());
  return v->str;
}

std::optional<bool> get_bool(const GgufFile& f, const std::string& key) {
  const GgufValue* v = f.find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::kBool) fail("{}: key '{}' must be a BOOL, got {}", f.name, key, v->type_string());
  return v->u != 0;
}

uint64_t array_size(const GgufFile& f, const std::string& key, GgufType elem) {
  const GgufValue* v = f.find(key);
  if (!v) return 0;
  if (v->type != GgufType::kArray || v->elem_type != elem) {
    fail("{}: key '{}' must be ARRAY[{}], got {}", f.name, key, gguf_type_name(elem), v->type_string());
  }
  return v->array_size();
}

template <class T>
void set_if(T& field, const std::optional<T>& v) {
  if (v) field = *v;
}

}  // namespace

ModelConfig gguf_model_config(const GgufFile& f, std::vector<std::string>& warnings) {
  ModelConfig c;
  set_if(c.architecture, get_string(f, "general.architecture"));
  set_if(c.name, get_string(f, "general.name"));
  const std::string a = c.architecture + ".";
  if (!c.architecture.empty()) {
    set_if(c.n_ctx_train, get_int(f, a + "context_length"));
    set_if(c.n_embd, get_int(f, a + "embedding_length"));
    set_if(c.n_layer, get_int(f, a + "block_count"));
    set_if(c.n_ff, get_int_or_layers(f, a + "feed_forward_length", warnings));
    set_if(c.n_head, get_int_or_layers(f, a + "attention.head_count", warnings));
    c.n_head_kv = c.n_head;
    set_if(c.n_head_kv, get_int_or_layers(f, a + "attention.head_count_kv", warnings));
    if (c.n_head > 0) c.head_dim = c.n_embd / c.n_head;
    set_if(c.head_dim, get_int(f, a + "attention.key_length"));
    if (auto eps = get_float(f, a + "attention.layer_norm_rms_epsilon")) c.rms_norm_eps = float(*eps);
    if (auto base = get_float(f, a + "rope.freq_base")) c.rope_theta = float(*base);
    set_if(c.rope_scaling.type, get_string(f, a + "rope.scaling.type"));
    if (auto factor = get_float(f, a + "rope.scaling.factor")) c.rope_scaling.factor = float(*factor);
    // Older converters wrote only the linear factor.
    if (auto linear = get_float(f, a + "rope.scale_linear"); linear && c.rope_scaling.type.empty()) {
      c.rope_scaling.type = "linear";
      c.rope_scaling.factor = float(*linear);
    }
    set_if(c.rope_scaling.original_context, get_int(f, a + "rope.scaling.original_context_length"));
    set_if(c.sliding_window, get_int(f, a + "attention.sliding_window"));
    set_if(c.n_expert, get_int(f, a + "expert_count"));
    set_if(c.n_expert_used, get_int(f, a + "expert_used_count"));
    set_if(c.n_vocab, get_int(f, a + "vocab_size"));
  }
  if (c.n_vocab == 0) c.n_vocab = int64_t(array_size(f, "tokenizer.ggml.tokens", GgufType::kString));
  const GgufTensorInfo* embd = f.find_tensor("token_embd.weight");
  if (c.n_vocab == 0 && embd && embd->ne.size() == 2) c.n_vocab = int64_t(embd->ne[1]);
  c.tie_word_embeddings = embd && !f.find_tensor("output.weight");
  if (c.n_expert_used > c.n_expert) {
    fail("{}: {}expert_used_count {} exceeds expert_count {}", f.name, a, c.n_expert_used, c.n_expert);
  }
  return c;
}

TokenizerInfo gguf_tokenizer_info(const GgufFile& f) {
  TokenizerInfo t;
  set_if(t.model, get_string(f, "tokenizer.ggml.model"));
  set_if(t.pre, get_string(f, "tokenizer.ggml.pre"));
  t.n_tokens = int64_t(array_size(f, "tokenizer.ggml.tokens", GgufType::kString));
  t.n_merges = int64_t(array_size(f, "tokenizer.ggml.merges", GgufType::kString));
  if (t.model == "llama") {  // SentencePiece defaults llama.cpp applies when the ids are absent
    t.bos_id = 1;
    t.eos_id = 2;
    t.unk_id = 0;
    t.add_bos = true;
  }
  const std::pair<const char*, std::optional<int64_t>*> ids[] = {
      {"tokenizer.ggml.bos_token_id", &t.bos_id},     {"tokenizer.ggml.eos_token_id", &t.eos_id},
      {"tokenizer.ggml.unknown_token_id", &t.unk_id}, {"tokenizer.ggml.padding_token_id", &t.pad_id},
      {"tokenizer.ggml.eot_token_id", &t.eot_id}};
  for (const auto& [key, field] : ids) {
    // Not checked against n_tokens: some files carry ids past the vocabulary (e.g. a pad id
    // equal to its size); the tokenizer decides what to do with them.
    if (auto id = get_int(f, key)) *field = *id;
  }
  set_if(t.add_bos, get_bool(f, "tokenizer.ggml.add_bos_token"));
  t.has_chat_template = get_string(f, "tokenizer.chat_template").has_value();
  if (!t.model.empty() || t.n_tokens > 0) t.source = "gguf metadata";
  return t;
}

std::string gguf_file_type_name(int64_t file_type) {
  static const std::pair<int64_t, const char*> kNames[] = {
      {0, "ALL_F32"}, {1, "F16"},      {2, "Q4_0"},     {3, "Q4_1"},      {7, "Q8_0"},     {8, "Q5_0"},
      {9, "Q5_1"},    {10, "Q2_K"},    {11, "Q3_K_S"},  {12, "Q3_K_M"},   {13, "Q3_K_L"},  {14, "Q4_K_S"},
      {15, "Q4_K_M"}, {16, "Q5_K_S"},  {17, "Q5_K_M"},  {18, "Q6_K"},     {19, "IQ2_XXS"}, {20, "IQ2_XS"},
      {21, "Q2_K_S"}, {22, "IQ3_XS"},  {23, "IQ3_XXS"}, {24, "IQ1_S"},    {25, "IQ4_NL"},  {26, "IQ3_S"},
      {27, "IQ3_M"},  {28, "IQ2_S"},   {29, "IQ2_M"},   {30, "IQ4_XS"},   {31, "IQ1_M"},   {32, "BF16"},
      {36, "TQ1_0"},  {37, "TQ2_0"},   {38, "MXFP4_MOE"}, {39, "NVFP4"},  {40, "Q1_0"},    {41, "Q2_0"},
      {1024, "GUESSED"}};
  for (const auto& [id, name] : kNames) {
    if (id == file_type) return name;
  }
  return "";
}

}  // namespace imp
