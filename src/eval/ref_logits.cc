#include "eval/ref_logits.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <numeric>

#include "common/error.h"
#include "eval/stats.h"

namespace imp::eval {
namespace {

constexpr char kMagic[8] = {'I', 'M', 'P', 'R', 'E', 'F', 'L', '1'};
constexpr char kTrailer[8] = {'I', 'M', 'P', 'R', 'E', 'F', 'N', 'D'};
constexpr uint64_t kFixedHeader = 8 + 5 * 4 + 8 + 4;

uint64_t record_bytes(uint32_t k) { return 8 + 4 + uint64_t(k) * 8; }

template <class T>
void put(std::vector<uint8_t>& out, T v) {
  uint8_t b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.insert(out.end(), b, b + sizeof(T));
}

template <class T>
T get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

uint64_t hash_tokens(std::span<const int32_t> tokens) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const int32_t t : tokens) {
    const uint32_t u = uint32_t(t);
    for (int i = 0; i < 4; ++i) {
      h ^= (u >> (8 * i)) & 0xffu;
      h *= 0x100000001b3ull;
    }
  }
  return h;
}

std::vector<int32_t> top_k_ids(std::span<const float> logits, int64_t k) {
  if (k <= 0 || k > int64_t(logits.size())) fail("top-k: k = {} must be in 1..{}", k, logits.size());
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  const auto before = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), before);
  ids.resize(size_t(k));
  return ids;
}

RefLogitsWriter::RefLogitsWriter(const std::string& path, const RefHeader& header) : path_(path), header_(header) {
  if (header.top_k == 0 || header.top_k > header.n_vocab) fail("--top-k {} must be in 1..{}", header.top_k, header.n_vocab);
  f_ = std::fopen(path.c_str(), "wb");
  if (!f_) fail("--save-logits: cannot create '{}'", path);
  std::vector<uint8_t> h(kMagic, kMagic + 8);
  for (const uint32_t v : {header.n_vocab, header.n_ctx, header.n_chunk, header.n_scored, header.top_k}) put(h, v);
  put(h, header.tokens_hash);
  put(h, uint32_t(header.model_name.size()));
  h.insert(h.end(), header.model_name.begin(), header.model_name.end());
  if (std::fwrite(h.data(), 1, h.size(), f_) != h.size()) fail("--save-logits: cannot write '{}'", path);
}

RefLogitsWriter::~RefLogitsWriter() {
  if (f_) std::fclose(f_);
}

void RefLogitsWriter::add(std::span<const float> logits, int32_t next) {
  if (logits.size() != header_.n_vocab) fail("reference logits row has {} entries, not n_vocab = {}", logits.size(), header_.n_vocab);
  if (next < 0 || uint32_t(next) >= header_.n_vocab) fail("next token {} is outside the vocabulary", next);
  std::vector<uint8_t> r;
  r.reserve(record_bytes(header_.top_k));
  put(r, log_sum_exp(logits));
  put(r, logits[size_t(next)]);
  const std::vector<int32_t> ids = top_k_ids(logits, header_.top_k);
  for (const int32_t id : ids) put(r, id);
  for (const int32_t id : ids) put(r, logits[size_t(id)]);
  if (std::fwrite(r.data(), 1, r.size(), f_) != r.size()) fail("--save-logits: cannot write '{}'", path_);
  ++records_;
}

void RefLogitsWriter::finish() {
  const uint64_t want = uint64_t(header_.n_chunk) * header_.n_scored;
  if (records_ != want) fail("--save-logits: wrote {} records, expected {}", records_, want);
  const bool ok = std::fwrite(kTrailer, 1, 8, f_) == 8;
  const bool closed = std::fclose(f_) == 0;
  f_ = nullptr;
  if (!ok || !closed) fail("--save-logits: cannot write '{}'", path_);
}

RefLogits RefLogits::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("--ref: cannot open '{}'", path);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < kFixedHeader || std::memcmp(bytes.data(), kMagic, 8) != 0)
    fail("--ref: '{}' is not an imp reference-logits file (bad magic or shorter than the header)", path);
  RefLogits r;
  RefHeader& h = r.header_;
  const uint8_t* p = bytes.data() + 8;
  h.n_vocab = get<uint32_t>(p);
  h.n_ctx = get<uint32_t>(p + 4);
  h.n_chunk = get<uint32_t>(p + 8);
  h.n_scored = get<uint32_t>(p + 12);
  h.top_k = get<uint32_t>(p + 16);
  h.tokens_hash = get<uint64_t>(p + 20);
  const uint32_t name_len = get<uint32_t>(p + 28);
  if (h.n_vocab == 0 || h.top_k == 0 || h.top_k > h.n_vocab || h.n_chunk == 0 || h.n_scored == 0 || h.n_scored >= h.n_ctx)
    fail("--ref: '{}' has an inconsistent header (n_vocab {}, top_k {}, n_chunk {}, n_scored {}, n_ctx {})", path,
         h.n_vocab, h.top_k, h.n_chunk, h.n_scored, h.n_ctx);
  // The size is also computed in long double so a header whose product overflows u64 is caught.
  const uint64_t n = uint64_t(h.n_chunk) * h.n_scored;
  const long double want_ld = (long double)kFixedHeader + name_len + (long double)n * record_bytes(h.top_k) + 8;
  const uint64_t want = kFixedHeader + name_len + n * record_bytes(h.top_k) + 8;
  if (want_ld != (long double)want || bytes.size() != want)
    fail("--ref: '{}' is truncated or corrupt: its header needs {} bytes, the file has {}", path, want_ld, bytes.size());
  if (std::memcmp(bytes.data() + want - 8, kTrailer, 8) != 0) fail("--ref: '{}' has no end marker (truncated or corrupt)", path);
  h.model_name.assign(reinterpret_cast<const char*>(bytes.data() + kFixedHeader), name_len);
  r.n_records_ = n;
  const uint32_t k = h.top_k;
  r.lse_.resize(n);
  r.next_logit_.resize(n);
  r.ids_.resize(n * k);
  r.logits_.resize(n * k);
  const uint8_t* rec = bytes.data() + kFixedHeader + name_len;
  for (uint64_t i = 0; i < n; ++i, rec += record_bytes(k)) {
    r.lse_[i] = get<double>(rec);
    r.next_logit_[i] = get<float>(rec + 8);
    std::memcpy(&r.ids_[i * k], rec + 12, 4 * size_t(k));
    std::memcpy(&r.logits_[i * k], rec + 12 + 4 * size_t(k), 4 * size_t(k));
    for (uint32_t j = 0; j < k; ++j) {
      const int32_t id = r.ids_[i * k + j];
      if (id < 0 || uint32_t(id) >= h.n_vocab) fail("--ref: '{}' record {} holds token id {} outside n_vocab {}", path, i, id, h.n_vocab);
    }
  }
  return r;
}

RefToken RefLogits::token(uint64_t i) const {
  if (i >= n_records_) fail("reference record {} out of range ({} records)", i, n_records_);
  const size_t k = header_.top_k;
  return {lse_[i], next_logit_[i], {ids_.data() + i * k, k}, {logits_.data() + i * k, k}};
}

}  // namespace imp::eval
