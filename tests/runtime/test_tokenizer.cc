// Unit tests of the tokenizer pieces on tiny hand-built vocabularies: the GPT-2 byte
// alphabet, rank-ordered merges, the regex pre-tokenizer, special-token splitting,
// SentencePiece score-ordered merges with byte fallback, and decoding split UTF-8.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <random>

#include "common/error.h"
#include "runtime/byte_unicode.h"
#include "runtime/pretokenizer.h"
#include "runtime/tokenizer_bpe.h"
#include "runtime/tokenizer_spm.h"

namespace imp {
namespace {

std::string random_bytes(std::mt19937& rng, size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xFF);
  return s;
}

TEST(ByteUnicode, RoundTripsEveryByteAndKnownSpellings) {
  EXPECT_EQ(byte_to_unicode(' '), "\xC4\xA0");   // Ġ U+0120
  EXPECT_EQ(byte_to_unicode('\n'), "\xC4\x8A");  // Ċ U+010A
  EXPECT_EQ(byte_to_unicode('A'), "A");
  EXPECT_EQ(byte_to_unicode(0xAD), "\xC5\x83");  // the last remapped byte, U+0143
  std::mt19937 rng(std::random_device{}());
  for (const size_t n : {1, 3, 17, 37, 129}) {
    const std::string raw = random_bytes(rng, n);
    std::string spelled;
    bytes_to_unicode(raw, spelled);
    EXPECT_EQ(unicode_to_bytes(spelled), raw);
  }
  EXPECT_EQ(unicode_to_bytes("\xC3\xA9"), std::string("\xE9"));  // é U+00E9 is byte 0xE9 itself
  EXPECT_FALSE(unicode_to_bytes("\xE4\xBD\xA0").has_value());   // 你 is outside the alphabet
  EXPECT_FALSE(unicode_to_bytes("\xC4").has_value());           // truncated sequence
}

Vocab byte_vocab(const std::vector<std::string>& merges) {
  Vocab v;
  v.model = "gpt2";
  v.pre = "gpt2";
  for (int b = 0; b < 256; ++b) v.tokens.push_back(byte_to_unicode(uint8_t(b)));
  for (const auto& m : merges) {
    const size_t sp = m.find(' ');
    v.tokens.push_back(m.substr(0, sp) + m.substr(sp + 1));
  }
  v.tokens.push_back("<|x|>");
  v.types.assign(v.tokens.size(), TokenType::kNormal);
  v.types.back() = TokenType::kControl;
  v.merges = merges;
  v.build_index();
  return v;
}

TEST(ByteLevelBpe, MergesByRank) {
  const ByteLevelBpeTokenizer t(byte_vocab({"h e", "l l", "he ll", "hell o", "\xC4\xA0 w"}));
  EXPECT_EQ(t.encode("hello", false, true), (std::vector<int32_t>{256 + 3}));
  EXPECT_EQ(t.encode("hellx", false, true), (std::vector<int32_t>{256 + 2, 'x'}));
  EXPECT_EQ(t.encode(" w", false, true), (std::vector<int32_t>{256 + 4}));
  // Lower rank wins: with "a b" first, "abc" is ab|c; with "b c" first it is a|bc.
  const ByteLevelBpeTokenizer ab(byte_vocab({"a b", "b c"}));
  EXPECT_EQ(ab.encode("abc", false, true), (std::vector<int32_t>{256, 'c'}));
  const ByteLevelBpeTokenizer bc(byte_vocab({"b c", "a b"}));
  EXPECT_EQ(bc.encode("abc", false, true), (std::vector<int32_t>{'a', 256}));
}

TEST(ByteLevelBpe, SpecialTokensAndDecode) {
  const ByteLevelBpeTokenizer t(byte_vocab({"h e"}));
  const int32_t x = t.special_token("<|x|>");
  ASSERT_GE(x, 0);
  EXPECT_EQ(t.encode("he<|x|>he", false, true), (std::vector<int32_t>{256, x, 256}));
  const auto plain = t.encode("he<|x|>", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), x), 0);
  EXPECT_EQ(t.decode(plain), "he<|x|>");
  EXPECT_EQ(t.token_bytes(x), "<|x|>");
  std::mt19937 rng(std::random_device{}());
  for (const size_t n : {1, 3, 17, 37, 129}) {
    const std::string raw = random_bytes(rng, n);
    const auto ids = t.encode(raw, false, false);
    EXPECT_EQ(t.decode(ids), raw);
  }
  // A multi-byte character tokenized byte by byte: each token holds part of the sequence.
  const auto ids = t.encode("\xE4\xBD\xA0", false, true);
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(t.token_bytes(ids[0]), "\xE4");
  EXPECT_EQ(t.decode(ids), "\xE4\xBD\xA0");
  EXPECT_THROW(t.token_bytes(t.n_vocab()), Error);
}

TEST(RegexSplitter, SmolLMDigitsThenGpt2) {
  const RegexSplitter s(pretokenizer_patterns("smollm"));
  // Digits go first, so "  " ends its piece and stays whole; "\n\n" before a letter splits
  // as \s+(?!\S) then \s+.
  const auto p = s.split("Hello world  123 it's\n\nok");
  const std::vector<std::string_view> want = {"Hello", " world", "  ", "1", "2", "3", " it", "'s", "\n", "\n", "ok"};
  EXPECT_EQ(p, want);
  const RegexSplitter l(pretokenizer_patterns("llama-bpe"));
  EXPECT_EQ(l.split("12345 IT'S"), (std::vector<std::string_view>{"123", "45", " IT", "'S"}));
  EXPECT_THROW(pretokenizer_patterns("no-such-pre"), Error);
  // Invalid UTF-8 splits without failing and the pieces still cover the input.
  const std::string bad = "ab\xFF\xC3 cd";
  std::string joined;
  for (auto x : s.split(bad)) joined += x;
  EXPECT_EQ(joined, bad);
}

Vocab spm_vocab() {
  Vocab v;
  v.model = "llama";
  v.add_space_prefix = true;
  const auto add = [&](const std::string& t, float score, TokenType type) {
    v.tokens.push_back(t);
    v.scores.push_back(score);
    v.types.push_back(type);
  };
  add("<unk>", 0, TokenType::kUnknown);
  add("<s>", 0, TokenType::kControl);
  for (int b = 0; b < 256; ++b) add(fmt::format("<0x{:02X}>", b), 0, TokenType::kByte);
  add("\xE2\x96\x81", -1, TokenType::kNormal);  // 258 ▁
  add("a", -2, TokenType::kNormal);             // 259
  add("b", -3, TokenType::kNormal);             // 260
  add("ab", -5, TokenType::kNormal);            // 261
  add("\xE2\x96\x81" "a", -4, TokenType::kNormal);  // 262 ▁a (scores better than ab)
  add("\xE2\x96\x81" "ab", -6, TokenType::kNormal);  // 263
  v.unk = 0;
  v.bos = 1;
  v.build_index();
  return v;
}

TEST(SentencePieceBpe, ScoresPrefixAndByteFallback) {
  const SentencePieceBpeTokenizer t(spm_vocab());
  // "▁ab": ▁a (-4) beats ab (-5), then ▁a+b = ▁ab.
  EXPECT_EQ(t.encode("ab", true, true), (std::vector<int32_t>{1, 263}));
  EXPECT_EQ(t.encode("ab ab", false, true), (std::vector<int32_t>{263, 263}));
  // é is not in the vocabulary: its two UTF-8 bytes become <0xC3> <0xA9>.
  EXPECT_EQ(t.encode("a\xC3\xA9", false, true), (std::vector<int32_t>{262, 2 + 0xC3, 2 + 0xA9}));
  EXPECT_EQ(t.token_bytes(2 + 0xC3), "\xC3");
  EXPECT_EQ(t.decode(std::vector<int32_t>{263, 2 + 0xC3, 2 + 0xA9}), " ab\xC3\xA9");
  EXPECT_EQ(t.encode("<s>a", false, true), (std::vector<int32_t>{1, 259}));  // no prefix after a special token
  std::mt19937 rng(std::random_device{}());
  for (const size_t n : {1, 3, 17, 37, 129}) {
    const std::string raw = random_bytes(rng, n);
    std::string expect = " ";
    for (const char c : raw) expect += c;
    EXPECT_EQ(t.decode(t.encode(raw, false, false)), expect);
  }
}

TEST(SentencePieceBpe, UnknownWithoutByteTokens) {
  Vocab v = spm_vocab();
  for (int b = 0; b < 256; ++b) v.types[size_t(2 + b)] = TokenType::kNormal, v.tokens[size_t(2 + b)] = fmt::format("#{}", b);
  v.build_index();
  const SentencePieceBpeTokenizer t(std::move(v));
  EXPECT_EQ(t.encode("\xE4\xBD\xA0", false, true), (std::vector<int32_t>{258, 0}));
}

TEST(Vocab, GgufMetadataErrors) {
  nlohmann::json m = {{"tokenizer.ggml.model", "gpt2"}, {"tokenizer.ggml.tokens", {"a", "b"}}};
  EXPECT_THROW(vocab_from_gguf(m, "x.gguf"), Error);  // no merges
  m["tokenizer.ggml.merges"] = {"a b"};
  m["tokenizer.ggml.token_type"] = {1};
  EXPECT_THROW(vocab_from_gguf(m, "x.gguf"), Error);  // wrong length
  m["tokenizer.ggml.token_type"] = {1, 9};
  EXPECT_THROW(vocab_from_gguf(m, "x.gguf"), Error);  // bad type
  m["tokenizer.ggml.token_type"] = {1, 1};
  m["tokenizer.ggml.bos_token_id"] = 7;
  EXPECT_THROW(vocab_from_gguf(m, "x.gguf"), Error);  // id out of range
  m.erase("tokenizer.ggml.bos_token_id");
  EXPECT_EQ(vocab_from_gguf(m, "x.gguf").size(), 2);
  EXPECT_THROW(vocab_from_gguf(nlohmann::json::object(), "x.gguf"), Error);
}

}  // namespace
}  // namespace imp
