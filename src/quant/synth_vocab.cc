#include "quant/synth_vocab.h"

#include <unordered_set>

#include "common/error.h"
#include "runtime/byte_unicode.h"

namespace imp {

SynthVocab make_synth_vocab(int64_t n_vocab) {
  if (n_vocab < 259) fail("synthetic vocabulary needs at least 259 tokens (256 bytes, a merge, bos, eos), got {}", n_vocab);
  if (n_vocab > (int64_t(1) << 24)) fail("synthetic vocabulary of {} tokens is too large", n_vocab);
  SynthVocab v;
  v.tokens.reserve(size_t(n_vocab));
  for (int b = 0; b < 256; ++b) v.tokens.push_back(byte_to_unicode(uint8_t(b)));
  std::unordered_set<std::string> seen(v.tokens.begin(), v.tokens.end());
  std::vector<std::string> common;
  common.push_back(byte_to_unicode(uint8_t(' ')));
  for (char c = 'a'; c <= 'z'; ++c) common.push_back(std::string(1, c));
  // Left operands, breadth first: the common characters, then every token as it is made.
  std::vector<std::string> lefts = common;
  const size_t n_merged = size_t(n_vocab - 2);
  for (size_t li = 0; v.tokens.size() < n_merged; ++li) {
    const std::string left = lefts[li];  // copy: lefts grows below
    for (const std::string& right : common) {
      if (v.tokens.size() >= n_merged) break;
      std::string t = left + right;
      if (!seen.insert(t).second) continue;
      v.merges.push_back(left + " " + right);
      v.tokens.push_back(t);
      lefts.push_back(std::move(t));
    }
  }
  v.bos = int32_t(v.tokens.size());
  v.tokens.push_back("<|begin_of_text|>");
  v.eos = int32_t(v.tokens.size());
  v.tokens.push_back("<|end_of_text|>");
  v.types.assign(v.tokens.size(), 1);
  v.types[size_t(v.bos)] = 3;
  v.types[size_t(v.eos)] = 3;
  return v;
}

}  // namespace imp
