// KvCache — paged key/value cache for one sequence.
//
// Storage: a pool of blocks, each holding block_tokens tokens of one layer's K and V:
//   K block (block_tokens, n_kv_head, head_dim) in `dtype`, rows of kv_row_bytes(dtype, head_dim);
//   V block likewise.
// A sequence owns a block table per layer (logical block → physical block). Blocks are
// taken from the pool as the sequence grows, so memory follows the tokens actually cached,
// and the layout is the one a later multi-sequence scheduler shares blocks in.
//
// dtype is a KvType (formats/kv_type.h: f32, f16, bf16, fp8_e4m3, int8, int4, nvfp4): rows
// are written with its encoder and read through its decoder (backends/cpu KvLayerView);
// every row carries its own scales, so each token·head row decodes on its own.
//
// This is the host (CPU backend) implementation of KvStore (runtime/kv_store.h); the CUDA
// backend keeps the same row layout in device memory behind the same interface.
#pragma once

#include <cstdint>
#include <vector>

#include "backends/cpu/ops.h"
#include "formats/kv_type.h"
#include "runtime/kv_store.h"

namespace imp {

class KvCache final : public KvStore {
 public:
  explicit KvCache(const KvCacheConfig& config);

  const KvCacheConfig& config() const override { return config_; }
  int64_t n_tokens() const override { return n_tokens_; }
  int64_t blocks_in_use() const;
  int64_t bytes_in_use() const override;

  // Writes K and V of n_tok consecutive tokens starting at position pos (≤ n_tokens())
  // for one layer; k, v are (n_tok, n_kv_head, head_dim) floats. Throws past max_tokens.
  void write(int64_t layer, int64_t pos, int64_t n_tok, const float* k, const float* v);
  // Marks positions < n as valid (call once per forward step, after every layer wrote).
  void set_n_tokens(int64_t n) override;
  // Forgets every token (blocks go back to the pool).
  void clear() override;

  KvLayerView layer_view(int64_t layer) const;

 private:
  void ensure_blocks(int64_t layer, int64_t n_tokens);

  KvCacheConfig config_;
  int64_t row_bytes_ = 0;
  int64_t block_bytes_ = 0;
  int64_t n_tokens_ = 0;
  std::vector<std::vector<uint8_t>> pool_;              // physical blocks (K or V)
  std::vector<int32_t> free_;                           // free physical blocks
  std::vector<std::vector<int32_t>> k_table_, v_table_; // per layer
  std::vector<std::vector<const uint8_t*>> k_ptr_, v_ptr_;
};

}  // namespace imp
