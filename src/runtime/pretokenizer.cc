#include "runtime/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "common/error.h"

namespace imp {
namespace {

// GPT-2's own pattern, as Hugging Face ByteLevel(use_regex=true) spells it.
constexpr const char* kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// Llama 3 (tiktoken cl100k-style): case-insensitive contractions, numbers in groups of 3.
constexpr const char* kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Qwen2: like Llama 3 but every digit on its own.
constexpr const char* kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct Pattern {
  pcre2_code* code = nullptr;
  pcre2_match_data* match = nullptr;
};

}  // namespace

std::vector<std::string> pretokenizer_patterns(std::string_view pre) {
  // SmolLM / StarCoder: every digit isolated first (HF: Digits(individual_digits) before ByteLevel).
  if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "codeshell") return {R"(\p{N})", kGpt2};
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3" || pre == "smaug-bpe" || pre == "dbrx") return {kLlama3};
  if (pre == "qwen2" || pre == "deepseek-r1-qwen" || pre == "stablelm2") return {kQwen2};
  if (pre == "gpt2" || pre == "default" || pre.empty() || pre == "mpt" || pre == "olmo") return {kGpt2};
  fail("tokenizer pre-tokenizer '{}' is not supported (known: smollm, llama-bpe/llama3, qwen2, gpt2/default)", pre);
}

struct RegexSplitter::Impl {
  std::vector<Pattern> patterns;
  ~Impl() {
    for (auto& p : patterns) {
      pcre2_match_data_free(p.match);
      pcre2_code_free(p.code);
    }
  }
};

RegexSplitter::RegexSplitter(const std::vector<std::string>& patterns) : impl_(std::make_unique<Impl>()) {
  for (const auto& src : patterns) {
    int err = 0;
    PCRE2_SIZE err_at = 0;
    // MATCH_INVALID_UTF: user text may hold invalid UTF-8; it must not make matching fail.
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(src.data()), src.size(),
                                     PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &err_at, nullptr);
    if (!code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      fail("pre-tokenizer regex '{}' does not compile at offset {}: {}", src, err_at, reinterpret_cast<char*>(msg));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional speed-up; interpreter if unavailable
    impl_->patterns.push_back({code, pcre2_match_data_create_from_pattern(code, nullptr)});
  }
}

RegexSplitter::~RegexSplitter() = default;
RegexSplitter::RegexSplitter(RegexSplitter&&) noexcept = default;
RegexSplitter& RegexSplitter::operator=(RegexSplitter&&) noexcept = default;

std::vector<std::string_view> RegexSplitter::split(std::string_view text) const {
  std::vector<std::string_view> pieces{text};
  if (text.empty()) return {};
  for (const auto& p : impl_->patterns) {
    std::vector<std::string_view> next;
    for (const std::string_view piece : pieces) {
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
      size_t pos = 0, last = 0;
      while (pos < piece.size()) {
        const int rc = pcre2_match(p.code, subject, piece.size(), pos, 0, p.match, nullptr);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) fail("pre-tokenizer regex match failed with PCRE2 error {}", rc);
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(p.match);
        const size_t b = ov[0], e = ov[1];
        if (e > b) {
          if (b > last) next.push_back(piece.substr(last, b - last));
          next.push_back(piece.substr(b, e - b));
          last = pos = e;
        } else {
          pos = b + 1;  // empty match: step on (none of the known patterns can match empty)
          while (pos < piece.size() && (static_cast<uint8_t>(piece[pos]) & 0xC0) == 0x80) ++pos;
        }
      }
      if (last < piece.size()) next.push_back(piece.substr(last));
    }
    pieces = std::move(next);
  }
  return pieces;
}

}  // namespace imp
