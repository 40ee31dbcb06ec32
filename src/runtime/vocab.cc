#include "runtime/vocab.h"

#include <fmt/format.h>

#include "common/error.h"

namespace imp {
namespace {

const nlohmann::json* key(const nlohmann::json& m, const char* name) {
  const auto it = m.find(name);
  return it == m.end() ? nullptr : &*it;
}

int32_t token_id(const nlohmann::json& m, const char* name, int32_t n_vocab, const std::string& where) {
  const nlohmann::json* v = key(m, name);
  if (!v) return -1;
  if (!v->is_number_integer()) fail("{}: {} must be an integer, got {}", where, name, v->type_name());
  const auto id = v->get<int64_t>();
  // A few converters write -1 (or the vocab size) for "none"; treat out-of-range as absent
  // only when it is that sentinel, otherwise the file is inconsistent.
  if (id == -1 || id == n_vocab) return -1;
  if (id < 0 || id >= n_vocab) fail("{}: {} = {} is outside the vocabulary of {} tokens", where, name, id, n_vocab);
  return static_cast<int32_t>(id);
}

bool flag(const nlohmann::json& m, const char* name, bool fallback) {
  const nlohmann::json* v = key(m, name);
  return v && v->is_boolean() ? v->get<bool>() : fallback;
}

// SentencePiece spells a space as U+2581; Gemma GGUFs store whitespace-run tokens with real
// spaces instead, which the reference tokenizer looks up as "▁▁…".
std::string respell_spaces(const std::string& t) {
  if (t.empty() || t.find_first_not_of(' ') != std::string::npos) return t;
  std::string out;
  for (size_t k = 0; k < t.size(); ++k) out += "\xE2\x96\x81";
  return out;
}

}  // namespace

int32_t Vocab::find(std::string_view text) const {
  const auto it = index.find(std::string(text));
  return it == index.end() ? -1 : it->second;
}

void Vocab::build_index() {
  index.clear();
  index.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) index.emplace(tokens[i], static_cast<int32_t>(i));
}

Vocab vocab_from_gguf(const nlohmann::json& m, const std::string& where) {
  Vocab v;
  v.source = where + " (gguf metadata)";
  const nlohmann::json* model = key(m, "tokenizer.ggml.model");
  if (!model || !model->is_string()) fail("{}: no tokenizer.ggml.model key: the file carries no tokenizer", where);
  v.model = model->get<std::string>();
  if (v.model != "gpt2" && v.model != "llama") {
    fail("{}: tokenizer model '{}' is not supported (only gpt2 byte-level BPE and llama SentencePiece BPE)", where, v.model);
  }
  if (const auto* pre = key(m, "tokenizer.ggml.pre"); pre && pre->is_string()) v.pre = pre->get<std::string>();

  const nlohmann::json* tokens = key(m, "tokenizer.ggml.tokens");
  if (!tokens || !tokens->is_array() || tokens->empty()) fail("{}: tokenizer.ggml.tokens is missing or empty", where);
  v.tokens.reserve(tokens->size());
  for (const auto& t : *tokens) {
    if (!t.is_string()) fail("{}: tokenizer.ggml.tokens holds a non-string element", where);
    v.tokens.push_back(t.get<std::string>());
  }
  const size_t n = v.tokens.size();
  if (n > size_t(INT32_MAX)) fail("{}: vocabulary of {} tokens is too large", where, n);

  v.types.assign(n, TokenType::kNormal);
  if (const auto* types = key(m, "tokenizer.ggml.token_type")) {
    if (!types->is_array() || types->size() != n) fail("{}: tokenizer.ggml.token_type must have {} elements", where, n);
    for (size_t i = 0; i < n; ++i) {
      const auto& t = (*types)[i];
      const int64_t x = t.is_number_integer() ? t.get<int64_t>() : 0;
      if (x < 1 || x > 6) fail("{}: tokenizer.ggml.token_type[{}] = {} is not a token type (1..6)", where, i, t.dump());
      v.types[i] = static_cast<TokenType>(x);
    }
  }
  if (const auto* scores = key(m, "tokenizer.ggml.scores")) {
    if (!scores->is_array() || scores->size() != n) fail("{}: tokenizer.ggml.scores must have {} elements", where, n);
    v.scores.reserve(n);
    for (const auto& s : *scores) {
      if (!s.is_number()) fail("{}: tokenizer.ggml.scores holds a non-number", where);
      v.scores.push_back(s.get<float>());
    }
  }
  if (const auto* merges = key(m, "tokenizer.ggml.merges")) {
    if (!merges->is_array()) fail("{}: tokenizer.ggml.merges must be an array of strings", where);
    v.merges.reserve(merges->size());
    for (const auto& s : *merges) {
      if (!s.is_string()) fail("{}: tokenizer.ggml.merges holds a non-string element", where);
      v.merges.push_back(s.get<std::string>());
    }
  }
  const auto n32 = static_cast<int32_t>(n);
  v.bos = token_id(m, "tokenizer.ggml.bos_token_id", n32, where);
  v.eos = token_id(m, "tokenizer.ggml.eos_token_id", n32, where);
  v.unk = token_id(m, "tokenizer.ggml.unknown_token_id", n32, where);
  v.pad = token_id(m, "tokenizer.ggml.padding_token_id", n32, where);
  v.eot = token_id(m, "tokenizer.ggml.eot_token_id", n32, where);
  v.eom = token_id(m, "tokenizer.ggml.eom_token_id", n32, where);

  const bool spm = v.model == "llama";
  // llama.cpp's defaults when a key is absent: SentencePiece vocabularies add BOS and a prefix space.
  v.add_bos = flag(m, "tokenizer.ggml.add_bos_token", spm);
  v.add_space_prefix = spm && flag(m, "tokenizer.ggml.add_space_prefix", true);
  v.ignore_merges = v.pre == "llama-bpe" || v.pre == "llama3" || v.pre == "llama-v3";

  if (spm) {
    const nlohmann::json* arch = key(m, "general.architecture");
    const bool gemma = arch && arch->is_string() && arch->get<std::string>().rfind("gemma", 0) == 0;
    if (gemma) {
      for (auto& t : v.tokens) t = respell_spaces(t);
      // Gemma's merge order is the token order; its stored scores are not (control tokens are
      // all -1000, byte tokens 0), so rank by position as the reference conversion does.
      v.scores.resize(n);
      for (size_t i = 0; i < n; ++i) v.scores[i] = -static_cast<float>(i);
    }
    if (v.scores.empty() && v.merges.empty()) fail("{}: SentencePiece vocabulary has neither scores nor merges", where);
  } else if (v.merges.empty()) {
    fail("{}: byte-level BPE vocabulary has no tokenizer.ggml.merges", where);
  }
  v.build_index();
  return v;
}

}  // namespace imp
