// BoundedRegex — a PCRE2 regular expression whose matching work is capped, for patterns
// that come from files or the command line (compressed-tensors "re:" ignore lists,
// `imp quantize --keep/--quantize`). std::regex backtracks recursively without limit, so a
// pattern like "(a*)*b" against a long name can run for hours or blow the stack; PCRE2 with
// a match limit (backtracking steps) and a depth limit stops and reports instead.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace imp {

class BoundedRegex {
 public:
  // Throws imp::Error naming `what` and the PCRE2 message when the pattern does not compile
  // (Perl / Python `re` syntax; patterns over 1024 bytes are refused).
  BoundedRegex(std::string_view pattern, std::string_view what);
  ~BoundedRegex();
  BoundedRegex(BoundedRegex&&) noexcept;
  BoundedRegex& operator=(BoundedRegex&&) noexcept;

  // anchored: match at the start only (Python's re.match); else anywhere (re.search).
  // Throws imp::Error when the match exceeds the work limit (a pathological pattern).
  bool matches(std::string_view subject, bool anchored) const;
  const std::string& pattern() const { return pattern_; }

 private:
  struct Impl;
  std::string pattern_, what_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace imp
