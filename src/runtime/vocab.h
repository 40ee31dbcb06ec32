// Vocab — the tokenizer data shared by both BPE families, loaded from GGUF metadata
// (tokenizer.ggml.*) or from a Hugging Face tokenizer.json (+ tokenizer_config.json).
// Token types follow GGUF / llama.cpp: 1 normal, 2 unknown, 3 control, 4 user-defined,
// 5 unused, 6 byte.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

namespace imp {

enum class TokenType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

struct Vocab {
  std::string model;  // "gpt2" (byte-level BPE) or "llama" (SentencePiece-style BPE)
  std::string pre;    // pre-tokenizer id (gpt2 only)
  std::vector<std::string> pre_patterns;  // explicit regexes (from tokenizer.json); empty → from `pre`
  std::vector<std::string> tokens;
  std::vector<float> scores;      // empty when the source has none
  std::vector<TokenType> types;
  std::vector<std::string> merges;  // "left right", best first; empty → merge by score
  std::unordered_map<std::string, int32_t> index;  // token text → id (first id wins)
  int32_t bos = -1, eos = -1, unk = -1, pad = -1, eot = -1, eom = -1;
  bool add_bos = false;
  bool add_space_prefix = false;  // SentencePiece: "hello" is tokenized as "▁hello"
  bool ignore_merges = false;     // a word already in the vocab is one token (Llama 3)
  bool byte_fallback = true;      // SentencePiece: unknown characters become <0xNN> tokens
  std::string source;             // for messages: file path and kind

  int32_t size() const { return static_cast<int32_t>(tokens.size()); }
  TokenType type(int32_t id) const { return types[static_cast<size_t>(id)]; }
  int32_t find(std::string_view text) const;  // -1 when absent
  void build_index();
};

// From GGUF KV pairs (ModelFile::metadata). `where` names the file in errors.
Vocab vocab_from_gguf(const nlohmann::json& metadata, const std::string& where);
// From a Hugging Face folder: tokenizer.json and, when present, tokenizer_config.json.
Vocab vocab_from_hf_folder(const std::string& dir);

}  // namespace imp
