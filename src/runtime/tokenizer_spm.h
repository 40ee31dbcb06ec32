// SentencePiece-style BPE ("llama" tokenizer model: Llama 2, Gemma …).
// encode: split out added/special tokens → spaces become "▁" (U+2581), with one prepended to
// text at the very start when add_space_prefix → start from single characters → merge the
// adjacent pair whose merged token ranks best (highest score, or lowest merge rank when the
// source lists merges) → characters left without a token fall back to <0xNN> byte tokens.
// decode: "▁" → space, <0xNN> → that byte, other tokens are their text.
#pragma once

#include <unordered_map>

#include "runtime/special_split.h"
#include "runtime/tokenizer.h"
#include "runtime/vocab.h"

namespace imp {

class SentencePieceBpeTokenizer final : public Tokenizer {
 public:
  explicit SentencePieceBpeTokenizer(Vocab vocab);

  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const override;
  std::string token_bytes(int32_t id) const override;
  int32_t n_vocab() const override { return vocab_.size(); }
  int32_t bos_id() const override { return vocab_.bos; }
  int32_t eos_id() const override { return vocab_.eos; }
  bool add_bos_default() const override { return vocab_.add_bos; }
  bool is_end_of_generation(int32_t id) const override;
  int32_t special_token(std::string_view text) const override;

  // One fragment of plain text, already with "▁" for spaces → ids appended to `out`.
  void encode_normalized(std::string_view text, std::vector<int32_t>& out) const;

 private:
  Vocab vocab_;
  SpecialMatcher with_control_, user_only_;
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // used when the source lists merges
  std::vector<std::string> bytes_;
  std::vector<int32_t> byte_ids_;  // <0xNN> token of each byte, -1 when missing
  std::vector<int32_t> eog_;
};

}  // namespace imp
