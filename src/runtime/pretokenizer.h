// Regex pre-tokenizer for byte-level BPE: cuts text into words before BPE merging.
// Each pattern is applied in turn to every piece produced so far; matches and the
// unmatched stretches between them both become pieces ("isolated" behaviour of Hugging
// Face's Split pre-tokenizer, and what llama.cpp's unicode_regex_split does).
// Patterns are PCRE2 with UTF + UCP, so \p{L}, \p{N} and \s follow Unicode properties.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace imp {

// The pattern lists of the pre-tokenizer ids llama.cpp writes to tokenizer.ggml.pre.
// Throws imp::Error naming the id when it is not one imp knows.
std::vector<std::string> pretokenizer_patterns(std::string_view pre);

class RegexSplitter {
 public:
  explicit RegexSplitter(const std::vector<std::string>& patterns);
  ~RegexSplitter();
  RegexSplitter(RegexSplitter&&) noexcept;
  RegexSplitter& operator=(RegexSplitter&&) noexcept;

  // Pieces of `text`, in order, concatenating back to `text`. Invalid UTF-8 is tolerated.
  std::vector<std::string_view> split(std::string_view text) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace imp
