// CudaKvCache — the KvStore of the CUDA backend: the paged KV cache in device memory.
//
// Same row bytes and block geometry as the host KvCache (runtime/kv_cache.h,
// formats/kv_type.h): rows (block_tokens, n_kv_head) per block, so a test can copy a
// device block to the host and compare it with the CPU cache byte for byte. All blocks for
// max_tokens are allocated up front (a decode step never allocates) and every layer has a
// logical → physical block table in device memory, which the kernels index through; a
// single sequence uses the identity assignment, a multi-sequence scheduler would fill the
// tables from a shared pool. No cudaMallocManaged: plain cudaMalloc.
#pragma once

#include <cstdint>

#include "backends/cuda/forward_kernels.h"
#include "runtime/kv_store.h"

namespace imp::cuda {

class CudaKvCache final : public KvStore {
 public:
  // Fails (naming the type) for KV types without a device codec, and when cudaMalloc fails.
  explicit CudaKvCache(const KvCacheConfig& config);
  ~CudaKvCache() override;
  CudaKvCache(const CudaKvCache&) = delete;
  CudaKvCache& operator=(const CudaKvCache&) = delete;

  const KvCacheConfig& config() const override { return config_; }
  int64_t n_tokens() const override { return n_tokens_; }
  void set_n_tokens(int64_t n) override;
  void clear() override { n_tokens_ = 0; }
  int64_t bytes_in_use() const override;

  // Unique per cache object for the backend's lifetime (graphs are keyed by it).
  uint64_t id() const { return id_; }
  int64_t row_bytes() const { return row_bytes_; }
  int64_t device_bytes() const { return 2 * pool_bytes_; }
  KvView layer(int64_t layer) const;
  // Device → host copy of one physical block (block_tokens · n_kv_head rows) for tests.
  void copy_block_to_host(int64_t layer, int64_t block, bool values, uint8_t* dst) const;

  // Bytes the cache of `config` allocates on the device (both pools and the tables).
  static int64_t device_bytes_for(const KvCacheConfig& config);

 private:
  KvCacheConfig config_;
  uint64_t id_ = 0;
  int64_t row_bytes_ = 0, block_bytes_ = 0, blocks_per_layer_ = 0, pool_bytes_ = 0;
  int64_t n_tokens_ = 0;
  uint8_t* k_pool_ = nullptr;
  uint8_t* v_pool_ = nullptr;
  int32_t* table_ = nullptr;  // n_layer × blocks_per_layer
};

}  // namespace imp::cuda
