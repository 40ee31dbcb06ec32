#include "runtime/bpe_merge.h"

#include <queue>

namespace imp {
namespace {

struct Node {
  BpeSymbol sym;
  int32_t prev = -1, next = -1;
  bool alive = true;
};

struct Entry {
  double priority;
  int32_t left;        // node index of the left symbol
  uint32_t left_len, right_len;  // lengths when queued: a mismatch means the entry is stale
  int32_t id;
  bool operator>(const Entry& o) const {
    if (priority != o.priority) return priority > o.priority;
    return left > o.left;  // nodes are in word order, so a smaller index is further left
  }
};

}  // namespace

std::vector<BpeSymbol> bpe_merge(std::string_view word, std::vector<BpeSymbol> symbols, const BpeLookup& lookup) {
  const auto n = static_cast<int32_t>(symbols.size());
  if (n < 2) return symbols;
  std::vector<Node> nodes(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) nodes[size_t(i)] = {symbols[size_t(i)], i - 1, i + 1 < n ? i + 1 : -1, true};
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> queue;
  const auto try_pair = [&](int32_t l) {
    if (l < 0) return;
    const int32_t r = nodes[size_t(l)].next;
    if (r < 0) return;
    const BpeSymbol& a = nodes[size_t(l)].sym;
    const BpeSymbol& b = nodes[size_t(r)].sym;
    const auto c = lookup(a, b, word.substr(a.start, a.len + b.len));
    if (c) queue.push({c->priority, l, a.len, b.len, c->id});
  };
  for (int32_t i = 0; i + 1 < n; ++i) try_pair(i);
  while (!queue.empty()) {
    const Entry e = queue.top();
    queue.pop();
    Node& left = nodes[size_t(e.left)];
    if (!left.alive || left.next < 0 || left.sym.len != e.left_len) continue;
    Node& right = nodes[size_t(left.next)];
    if (right.sym.len != e.right_len) continue;
    left.sym.len += right.sym.len;
    left.sym.id = e.id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) nodes[size_t(right.next)].prev = e.left;
    try_pair(left.prev);
    try_pair(e.left);
  }
  std::vector<BpeSymbol> out;
  for (int32_t i = 0; i >= 0; i = nodes[size_t(i)].next) out.push_back(nodes[size_t(i)].sym);
  return out;
}

}  // namespace imp
