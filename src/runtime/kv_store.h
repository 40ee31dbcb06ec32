// KvStore — the key/value cache of one sequence, wherever its memory lives.
//
// Why an interface: the CPU keeps its paged cache in host memory (runtime/kv_cache.h,
// class KvCache), the CUDA backend keeps the same paged byte layout in device memory
// (backends/cuda/cuda_kv_cache.h). The model and the generation loop only need the
// bookkeeping below; the bytes are read and written solely by the backend that created
// the store (Backend::create_kv_cache, Backend::kv_write, Backend::attention), which
// checks that a store handed to it is its own kind.
//
// Rows are encoded per formats/kv_type.h on every backend, so a row written on the GPU
// and one written on the CPU are byte-identical for the same input floats (up to the
// backend's rounding of x / s, documented per KV type in the CUDA encoder).
#pragma once

#include <cstdint>

#include "formats/kv_type.h"

namespace imp {

struct KvCacheConfig {
  int64_t n_layer = 0;
  int64_t n_kv_head = 0;
  int64_t head_dim = 0;
  int64_t max_tokens = 0;  // context length: writes past it are an error
  int64_t block_tokens = 16;
  KvType dtype = KvType::F16;
};

class KvStore {
 public:
  virtual ~KvStore() = default;

  virtual const KvCacheConfig& config() const = 0;
  // Positions 0 .. n_tokens() − 1 hold valid rows in every layer.
  virtual int64_t n_tokens() const = 0;
  // Marks positions < n as valid (after a forward step; also cuts a cache back to a prefix).
  virtual void set_n_tokens(int64_t n) = 0;
  // Forgets every token.
  virtual void clear() = 0;
  // Bytes of cache memory holding the current tokens (allocated blocks).
  virtual int64_t bytes_in_use() const = 0;
};

}  // namespace imp
