// The BPE merge loop shared by byte-level and SentencePiece-style BPE.
// A word starts as a list of adjacent symbols (slices of the word); repeatedly the adjacent
// pair with the best (lowest) priority is merged into one symbol, ties going to the leftmost
// pair, until no pair can merge. Priority is a merge rank (byte-level BPE, tokenizer.json) or
// the negated score of the merged token (SentencePiece). A priority queue with lazy
// invalidation keeps it O(n log n) for long words such as whitespace runs.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

namespace imp {

struct BpeSymbol {
  uint32_t start = 0, len = 0;  // byte slice of the word
  int32_t id = -1;              // vocabulary id of the slice, -1 when it has none
};

struct BpeCandidate {
  double priority = 0;  // lower merges first
  int32_t id = -1;      // id of the merged symbol
};

// lookup(left, right, merged_text) → the merge, or nullopt when the pair cannot merge.
using BpeLookup = std::function<std::optional<BpeCandidate>(const BpeSymbol&, const BpeSymbol&, std::string_view)>;

std::vector<BpeSymbol> bpe_merge(std::string_view word, std::vector<BpeSymbol> symbols, const BpeLookup& lookup);

}  // namespace imp
