#include "runtime/kv_cache.h"

#include "common/error.h"
#include "formats/kv_type.h"

namespace imp {

KvCache::KvCache(const KvCacheConfig& c) : config_(c) {
  if (c.n_layer <= 0 || c.n_kv_head <= 0 || c.head_dim <= 0 || c.max_tokens <= 0 || c.block_tokens <= 0) {
    fail("KV cache: invalid shape (layers {}, kv heads {}, head_dim {}, max tokens {}, block {})", c.n_layer,
         c.n_kv_head, c.head_dim, c.max_tokens, c.block_tokens);
  }
  row_bytes_ = kv_row_bytes(c.dtype, c.head_dim);  // fails where the type does not fit head_dim
  block_bytes_ = row_bytes_ * c.n_kv_head * c.block_tokens;
  k_table_.resize(size_t(c.n_layer));
  v_table_.resize(size_t(c.n_layer));
  k_ptr_.resize(size_t(c.n_layer));
  v_ptr_.resize(size_t(c.n_layer));
}

int64_t KvCache::blocks_in_use() const { return int64_t(pool_.size() - free_.size()); }
int64_t KvCache::bytes_in_use() const { return blocks_in_use() * block_bytes_; }

void KvCache::ensure_blocks(int64_t layer, int64_t n_tokens) {
  const size_t need = size_t((n_tokens + config_.block_tokens - 1) / config_.block_tokens);
  for (auto* table : {&k_table_[size_t(layer)], &v_table_[size_t(layer)]}) {
    auto& ptrs = table == &k_table_[size_t(layer)] ? k_ptr_[size_t(layer)] : v_ptr_[size_t(layer)];
    while (table->size() < need) {
      int32_t id;
      if (!free_.empty()) {
        id = free_.back();
        free_.pop_back();
      } else {
        id = int32_t(pool_.size());
        pool_.emplace_back(size_t(block_bytes_));
      }
      table->push_back(id);
      ptrs.push_back(pool_[size_t(id)].data());
    }
  }
}

void KvCache::write(int64_t layer, int64_t pos, int64_t n_tok, const float* k, const float* v) {
  if (layer < 0 || layer >= config_.n_layer) fail("KV cache: layer {} out of range", layer);
  if (pos < 0 || pos > n_tokens_) fail("KV cache: write at position {} leaves a gap after {} tokens", pos, n_tokens_);
  if (pos + n_tok > config_.max_tokens) {
    fail("context full: {} tokens exceed the context length {}", pos + n_tok, config_.max_tokens);
  }
  ensure_blocks(layer, pos + n_tok);
  const KvEncodeRowFn encode_row = kv_encode_row_fn(config_.dtype);
  const int64_t hd = config_.head_dim, nkv = config_.n_kv_head, bt = config_.block_tokens;
  for (int64_t t = 0; t < n_tok; ++t) {
    const int64_t p = pos + t;
    for (int64_t g = 0; g < nkv; ++g) {
      const int64_t offset = ((p % bt) * nkv + g) * row_bytes_;
      uint8_t* dk = pool_[size_t(k_table_[size_t(layer)][size_t(p / bt)])].data() + offset;
      uint8_t* dv = pool_[size_t(v_table_[size_t(layer)][size_t(p / bt)])].data() + offset;
      encode_row(k + (t * nkv + g) * hd, dk, hd);
      encode_row(v + (t * nkv + g) * hd, dv, hd);
    }
  }
}

void KvCache::set_n_tokens(int64_t n) {
  if (n < 0 || n > config_.max_tokens) fail("KV cache: {} tokens exceed the context length {}", n, config_.max_tokens);
  n_tokens_ = n;
}

void KvCache::clear() {
  for (size_t l = 0; l < k_table_.size(); ++l) {
    for (int32_t id : k_table_[l]) free_.push_back(id);
    for (int32_t id : v_table_[l]) free_.push_back(id);
    k_table_[l].clear();
    v_table_[l].clear();
    k_ptr_[l].clear();
    v_ptr_[l].clear();
  }
  n_tokens_ = 0;
}

KvLayerView KvCache::layer_view(int64_t layer) const {
  return {config_.dtype, config_.n_kv_head, config_.head_dim, config_.block_tokens, row_bytes_,
          k_ptr_[size_t(layer)], v_ptr_[size_t(layer)]};
}

}  // namespace imp
