#include "runtime/special_split.h"

#include <algorithm>

namespace imp {

SpecialMatcher::SpecialMatcher(const Vocab& vocab, bool with_control) {
  nodes_.emplace_back();
  for (int32_t id = 0; id < vocab.size(); ++id) {
    const TokenType t = vocab.type(id);
    if (!(t == TokenType::kUserDefined || (with_control && t == TokenType::kControl))) continue;
    const std::string& text = vocab.tokens[size_t(id)];
    if (text.empty()) continue;
    int32_t node = 0;
    for (const char c : text) {
      const auto b = static_cast<uint8_t>(c);
      int32_t nx = child(node, b);
      if (nx < 0) {
        nx = static_cast<int32_t>(nodes_.size());
        auto& next = nodes_[size_t(node)].next;
        next.insert(std::upper_bound(next.begin(), next.end(), std::make_pair(b, INT32_MIN),
                                     [](const auto& x, const auto& y) { return x.first < y.first; }),
                    {b, nx});
        nodes_.emplace_back();
      }
      node = nx;
    }
    if (nodes_[size_t(node)].token < 0) nodes_[size_t(node)].token = id;  // first id wins, as in the index
  }
}

int32_t SpecialMatcher::child(int32_t node, uint8_t b) const {
  const auto& next = nodes_[size_t(node)].next;
  const auto it = std::lower_bound(next.begin(), next.end(), b, [](const auto& x, uint8_t v) { return x.first < v; });
  return it != next.end() && it->first == b ? it->second : -1;
}

std::vector<Fragment> SpecialMatcher::split(std::string_view text) const {
  std::vector<Fragment> out;
  size_t plain = 0;  // start of the pending plain-text fragment
  for (size_t pos = 0; pos < text.size();) {
    int32_t node = 0, best = -1;
    size_t best_len = 0;
    for (size_t k = pos; k < text.size(); ++k) {
      node = child(node, static_cast<uint8_t>(text[k]));
      if (node < 0) break;
      if (nodes_[size_t(node)].token >= 0) {
        best = nodes_[size_t(node)].token;
        best_len = k + 1 - pos;
      }
    }
    if (best < 0) {
      ++pos;
      continue;
    }
    if (pos > plain) out.push_back({text.substr(plain, pos - plain), -1});
    out.push_back({text.substr(pos, best_len), best});
    pos += best_len;
    plain = pos;
  }
  if (plain < text.size()) out.push_back({text.substr(plain), -1});
  return out;
}

}  // namespace imp
