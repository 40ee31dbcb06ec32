// Splits text on special / added tokens before BPE runs: the text "<|im_start|>user" becomes
// the token <|im_start|> followed by the fragment "user". Matching is leftmost-longest on the
// raw text (what Hugging Face's added-token matcher does), so "<|im_start|>" wins over a
// shorter token that is a prefix of it.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "runtime/vocab.h"

namespace imp {

struct Fragment {
  std::string_view text;  // the raw text (of the token itself when id >= 0)
  int32_t id = -1;        // a matched token, or -1 for text that BPE must encode
};

class SpecialMatcher {
 public:
  // with_control: also match control tokens (parse_special); user-defined tokens always match.
  SpecialMatcher(const Vocab& vocab, bool with_control);
  std::vector<Fragment> split(std::string_view text) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> next;  // byte → node index, sorted by byte
    int32_t token = -1;
  };
  std::vector<Node> nodes_;
  int32_t child(int32_t node, uint8_t b) const;
};

}  // namespace imp
