#include "runtime/tokenizer_bpe.h"

#include <algorithm>

#include "common/error.h"
#include "runtime/bpe_merge.h"
#include "runtime/byte_unicode.h"
#include "runtime/end_of_generation.h"
#include "runtime/utf8.h"

namespace imp {
namespace {

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

std::vector<std::string> patterns_of(const Vocab& v) {
  return v.pre_patterns.empty() && v.pre != "tokenizer.json" ? pretokenizer_patterns(v.pre) : v.pre_patterns;
}

}  // namespace

ByteLevelBpeTokenizer::ByteLevelBpeTokenizer(Vocab vocab)
    : vocab_(std::move(vocab)),
      splitter_(patterns_of(vocab_)),
      with_control_(vocab_, true),
      user_only_(vocab_, false) {
  const int32_t n = vocab_.size();
  merges_.reserve(vocab_.merges.size());
  for (size_t rank = 0; rank < vocab_.merges.size(); ++rank) {
    const std::string& m = vocab_.merges[rank];
    const size_t sp = m.find(' ', 1);  // the left part is never empty, so a leading ' ' belongs to it
    if (sp == std::string::npos) fail("{}: merge {} '{}' is not 'left right'", vocab_.source, rank, m);
    const int32_t a = vocab_.find(std::string_view(m).substr(0, sp));
    const int32_t b = vocab_.find(std::string_view(m).substr(sp + 1));
    const int32_t ab = vocab_.find(m.substr(0, sp) + m.substr(sp + 1));
    if (a < 0 || b < 0 || ab < 0) continue;  // a merge into tokens the vocab lacks can never apply
    merges_.try_emplace(pair_key(a, b), static_cast<int32_t>(rank), ab);
  }
  bytes_.resize(size_t(n));
  for (int32_t id = 0; id < n; ++id) {
    const std::string& t = vocab_.tokens[size_t(id)];
    const bool added = vocab_.type(id) == TokenType::kControl || vocab_.type(id) == TokenType::kUserDefined;
    auto raw = added ? std::nullopt : unicode_to_bytes(t);
    bytes_[size_t(id)] = raw ? *raw : t;
  }
  byte_ids_.resize(256);
  for (int b = 0; b < 256; ++b) byte_ids_[size_t(b)] = vocab_.find(byte_to_unicode(static_cast<uint8_t>(b)));
  eog_ = end_of_generation_ids(vocab_);
}

void ByteLevelBpeTokenizer::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  // A byte the vocabulary cannot spell (SmolLM2 lacks a few control bytes) is dropped before
  // merging, as Hugging Face BPE without an unk token does; its neighbours may then merge.
  std::string kept;
  kept.reserve(word.size());
  for (const char c : word) if (byte_ids_[uint8_t(c)] >= 0) kept += c;
  std::string spelled;
  bytes_to_unicode(kept, spelled);
  if (spelled.empty()) return;
  if (vocab_.ignore_merges) {
    if (const int32_t id = vocab_.find(spelled); id >= 0) {
      out.push_back(id);
      return;
    }
  }
  std::vector<BpeSymbol> symbols;
  symbols.reserve(kept.size());
  for (size_t pos = 0; pos < spelled.size();) {
    const size_t len = utf8_char_len(spelled, pos);
    symbols.push_back({uint32_t(pos), uint32_t(len), byte_ids_[uint8_t(kept[symbols.size()])]});
    pos += len;
  }
  const auto lookup = [this](const BpeSymbol& l, const BpeSymbol& r, std::string_view) -> std::optional<BpeCandidate> {
    const auto it = merges_.find(pair_key(l.id, r.id));
    if (it == merges_.end()) return std::nullopt;
    return BpeCandidate{double(it->second.first), it->second.second};
  };
  for (const BpeSymbol& s : bpe_merge(spelled, std::move(symbols), lookup)) out.push_back(s.id);
}

std::vector<int32_t> ByteLevelBpeTokenizer::encode(std::string_view text, bool add_bos, bool parse_special) const {
  std::vector<int32_t> ids;
  if (add_bos && vocab_.bos >= 0) ids.push_back(vocab_.bos);
  for (const Fragment& f : (parse_special ? with_control_ : user_only_).split(text)) {
    if (f.id >= 0) {
      ids.push_back(f.id);
      continue;
    }
    for (const std::string_view word : splitter_.split(f.text)) encode_word(word, ids);
  }
  return ids;
}

std::string ByteLevelBpeTokenizer::token_bytes(int32_t id) const {
  if (id < 0 || id >= n_vocab()) fail("token id {} is outside the vocabulary of {} tokens", id, n_vocab());
  return bytes_[size_t(id)];
}

bool ByteLevelBpeTokenizer::is_end_of_generation(int32_t id) const {
  return std::find(eog_.begin(), eog_.end(), id) != eog_.end();
}

int32_t ByteLevelBpeTokenizer::special_token(std::string_view text) const {
  const int32_t id = vocab_.find(text);
  if (id < 0) return -1;
  const TokenType t = vocab_.type(id);
  return t == TokenType::kControl || t == TokenType::kUserDefined || t == TokenType::kUnknown ? id : -1;
}

}  // namespace imp
