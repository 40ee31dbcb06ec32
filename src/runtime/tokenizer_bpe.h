// Byte-level BPE ("gpt2" tokenizer model: SmolLM, Llama 3, Qwen2, GPT-2 …).
// encode: split out added/special tokens → regex pre-tokenizer → each word's bytes spelled
// in the GPT-2 alphabet (byte_unicode.h) → merges applied by rank → ids.
// decode: each token's text mapped back through the alphabet to raw bytes; added tokens
// outside the alphabet (e.g. "<|im_start|>") are their own text.
#pragma once

#include <unordered_map>

#include "runtime/pretokenizer.h"
#include "runtime/special_split.h"
#include "runtime/tokenizer.h"
#include "runtime/vocab.h"

namespace imp {

class ByteLevelBpeTokenizer final : public Tokenizer {
 public:
  explicit ByteLevelBpeTokenizer(Vocab vocab);

  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const override;
  std::string token_bytes(int32_t id) const override;
  int32_t n_vocab() const override { return vocab_.size(); }
  int32_t bos_id() const override { return vocab_.bos; }
  int32_t eos_id() const override { return vocab_.eos; }
  bool add_bos_default() const override { return vocab_.add_bos; }
  bool is_end_of_generation(int32_t id) const override;
  int32_t special_token(std::string_view text) const override;

  // One pre-tokenized word (raw bytes) → ids, appended to `out`.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

 private:
  Vocab vocab_;
  RegexSplitter splitter_;
  SpecialMatcher with_control_, user_only_;
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // (left id, right id) → (rank, merged id)
  std::vector<std::string> bytes_;  // decoded bytes of every token
  std::vector<int32_t> byte_ids_;   // id of each single byte's spelling, -1 when missing
  std::vector<int32_t> eog_;
};

}  // namespace imp
