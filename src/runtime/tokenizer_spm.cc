#include "runtime/tokenizer_spm.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/error.h"
#include "runtime/bpe_merge.h"
#include "runtime/end_of_generation.h"
#include "runtime/utf8.h"

namespace imp {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

std::string replace_spaces(std::string_view s, bool prefix) {
  std::string out;
  out.reserve(s.size() + 8);
  if (prefix) out += kSpace;
  for (const char c : s) {
    if (c == ' ') out += kSpace;
    else out += c;
  }
  return out;
}

// "<0x0A>" → 10
std::optional<uint8_t> byte_token_value(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return std::nullopt;
  unsigned v = 0;
  for (size_t k = 3; k < 5; ++k) {
    const char c = t[k];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= unsigned(c - '0');
    else if (c >= 'A' && c <= 'F') v |= unsigned(c - 'A' + 10);
    else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
    else return std::nullopt;
  }
  return static_cast<uint8_t>(v);
}

}  // namespace

SentencePieceBpeTokenizer::SentencePieceBpeTokenizer(Vocab vocab)
    : vocab_(std::move(vocab)), with_control_(vocab_, true), user_only_(vocab_, false) {
  const int32_t n = vocab_.size();
  if (vocab_.merges.empty() && vocab_.scores.size() != size_t(n)) {
    fail("{}: SentencePiece vocabulary needs one score per token or a merge list", vocab_.source);
  }
  for (size_t rank = 0; rank < vocab_.merges.size(); ++rank) {
    const std::string& m = vocab_.merges[rank];
    const size_t sp = m.find(' ', 1);
    if (sp == std::string::npos) fail("{}: merge {} '{}' is not 'left right'", vocab_.source, rank, m);
    const int32_t a = vocab_.find(std::string_view(m).substr(0, sp));
    const int32_t b = vocab_.find(std::string_view(m).substr(sp + 1));
    const int32_t ab = vocab_.find(m.substr(0, sp) + m.substr(sp + 1));
    if (a < 0 || b < 0 || ab < 0) continue;
    merges_.try_emplace(pair_key(a, b), static_cast<int32_t>(rank), ab);
  }
  byte_ids_.assign(256, -1);
  bytes_.resize(size_t(n));
  for (int32_t id = 0; id < n; ++id) {
    const std::string& t = vocab_.tokens[size_t(id)];
    const TokenType type = vocab_.type(id);
    if (type == TokenType::kByte) {
      if (const auto b = byte_token_value(t)) {
        bytes_[size_t(id)] = std::string(1, char(*b));
        if (byte_ids_[*b] < 0) byte_ids_[*b] = id;
        continue;
      }
    }
    if (type == TokenType::kControl) {
      bytes_[size_t(id)] = t;
      continue;
    }
    std::string& s = bytes_[size_t(id)];
    for (size_t pos = 0; pos < t.size();) {
      if (t.compare(pos, kSpace.size(), kSpace) == 0) {
        s += ' ';
        pos += kSpace.size();
      } else {
        s += t[pos++];
      }
    }
  }
  eog_ = end_of_generation_ids(vocab_);
}

void SentencePieceBpeTokenizer::encode_normalized(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<BpeSymbol> symbols;
  for (size_t pos = 0; pos < text.size();) {
    const size_t len = utf8_char_len(text, pos);
    symbols.push_back({uint32_t(pos), uint32_t(len), vocab_.find(text.substr(pos, len))});
    pos += len;
  }
  const bool by_rank = !vocab_.merges.empty();
  const auto lookup = [&](const BpeSymbol& l, const BpeSymbol& r, std::string_view merged) -> std::optional<BpeCandidate> {
    if (by_rank) {
      if (l.id < 0 || r.id < 0) return std::nullopt;
      const auto it = merges_.find(pair_key(l.id, r.id));
      if (it == merges_.end()) return std::nullopt;
      return BpeCandidate{double(it->second.first), it->second.second};
    }
    const int32_t id = vocab_.find(merged);
    if (id < 0) return std::nullopt;
    return BpeCandidate{-double(vocab_.scores[size_t(id)]), id};
  };
  for (const BpeSymbol& s : bpe_merge(text, std::move(symbols), lookup)) {
    if (s.id >= 0) {
      out.push_back(s.id);
      continue;
    }
    // Byte fallback: every byte of the character as its <0xNN> token, or unk when one is missing.
    const std::string_view piece = text.substr(s.start, s.len);
    const bool all_bytes = vocab_.byte_fallback &&
        std::all_of(piece.begin(), piece.end(), [&](char c) { return byte_ids_[uint8_t(c)] >= 0; });
    if (all_bytes) {
      for (const char c : piece) out.push_back(byte_ids_[uint8_t(c)]);
    } else if (vocab_.unk >= 0) {
      out.push_back(vocab_.unk);
    } else {
      fail("{}: text holds a character with no token, no byte token and no unknown token", vocab_.source);
    }
  }
}

std::vector<int32_t> SentencePieceBpeTokenizer::encode(std::string_view text, bool add_bos, bool parse_special) const {
  std::vector<int32_t> ids;
  if (add_bos && vocab_.bos >= 0) ids.push_back(vocab_.bos);
  for (const Fragment& f : (parse_special ? with_control_ : user_only_).split(text)) {
    if (f.id >= 0) {
      ids.push_back(f.id);
      continue;
    }
    // The prefix space goes only before text that starts the input (HF Metaspace "first").
    const bool prefix = vocab_.add_space_prefix && f.text.data() == text.data();
    encode_normalized(replace_spaces(f.text, prefix), ids);
  }
  return ids;
}

std::string SentencePieceBpeTokenizer::token_bytes(int32_t id) const {
  if (id < 0 || id >= n_vocab()) fail("token id {} is outside the vocabulary of {} tokens", id, n_vocab());
  return bytes_[size_t(id)];
}

bool SentencePieceBpeTokenizer::is_end_of_generation(int32_t id) const {
  return std::find(eog_.begin(), eog_.end(), id) != eog_.end();
}

int32_t SentencePieceBpeTokenizer::special_token(std::string_view text) const {
  const int32_t id = vocab_.find(text);
  if (id < 0) return -1;
  const TokenType t = vocab_.type(id);
  return t == TokenType::kControl || t == TokenType::kUserDefined || t == TokenType::kUnknown ? id : -1;
}

}  // namespace imp
