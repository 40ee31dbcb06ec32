#include "backends/cuda/cuda_kv_cache.h"

#include <atomic>
#include <vector>

#include "backends/cuda/check.h"

namespace imp::cuda {
namespace {
std::atomic<uint64_t> g_next_id{1};
}

int64_t CudaKvCache::device_bytes_for(const KvCacheConfig& c) {
  const int64_t blocks = (c.max_tokens + c.block_tokens - 1) / c.block_tokens;
  return 2 * c.n_layer * blocks * c.block_tokens * c.n_kv_head * kv_row_bytes(c.dtype, c.head_dim) +
         c.n_layer * blocks * 4;
}

CudaKvCache::CudaKvCache(const KvCacheConfig& c) : config_(c), id_(g_next_id++) {
  if (c.n_layer <= 0 || c.n_kv_head <= 0 || c.head_dim <= 0 || c.max_tokens <= 0 || c.block_tokens <= 0) {
    fail("CUDA KV cache: invalid shape (layers {}, kv heads {}, head_dim {}, max tokens {}, block {})", c.n_layer,
         c.n_kv_head, c.head_dim, c.max_tokens, c.block_tokens);
  }
  row_bytes_ = kv_row_bytes(c.dtype, c.head_dim);
  if (!kv_dtype_supported_on_device(int32_t(c.dtype))) {
    fail("CUDA KV cache: type {} has no device kernel (f32, f16, bf16, fp8_e4m3, int8, int4, nvfp4 do)", kv_type_name(c.dtype));
  }
  if (c.head_dim > 256 || c.head_dim % 2 != 0) {
    fail("CUDA KV cache: head_dim {} is not supported (even, at most 256: the attention kernel keeps 8 per lane)",
         c.head_dim);
  }
  block_bytes_ = c.block_tokens * c.n_kv_head * row_bytes_;
  blocks_per_layer_ = (c.max_tokens + c.block_tokens - 1) / c.block_tokens;
  pool_bytes_ = c.n_layer * blocks_per_layer_ * block_bytes_;
  IMP_CUDA_CHECK(cudaMalloc(&k_pool_, size_t(pool_bytes_)));
  IMP_CUDA_CHECK(cudaMalloc(&v_pool_, size_t(pool_bytes_)));
  IMP_CUDA_CHECK(cudaMemset(k_pool_, 0, size_t(pool_bytes_)));
  IMP_CUDA_CHECK(cudaMemset(v_pool_, 0, size_t(pool_bytes_)));
  std::vector<int32_t> table(size_t(c.n_layer * blocks_per_layer_));
  for (size_t i = 0; i < table.size(); ++i) table[i] = int32_t(i);  // identity: layer l owns its own range
  IMP_CUDA_CHECK(cudaMalloc(&table_, table.size() * sizeof(int32_t)));
  IMP_CUDA_CHECK(cudaMemcpy(table_, table.data(), table.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
}

CudaKvCache::~CudaKvCache() {
  cudaFree(k_pool_);
  cudaFree(v_pool_);
  cudaFree(table_);
}

void CudaKvCache::set_n_tokens(int64_t n) {
  if (n < 0 || n > config_.max_tokens) fail("CUDA KV cache: {} tokens exceed the context length {}", n, config_.max_tokens);
  n_tokens_ = n;
}

int64_t CudaKvCache::bytes_in_use() const {
  return 2 * config_.n_layer * ((n_tokens_ + config_.block_tokens - 1) / config_.block_tokens) * block_bytes_;
}

KvView CudaKvCache::layer(int64_t l) const {
  if (l < 0 || l >= config_.n_layer) fail("CUDA KV cache: layer {} out of range", l);
  KvView v;
  v.k_pool = k_pool_;
  v.v_pool = v_pool_;
  v.k_table = table_ + l * blocks_per_layer_;
  v.v_table = v.k_table;
  v.block_tokens = int32_t(config_.block_tokens);
  v.n_kv_head = int32_t(config_.n_kv_head);
  v.head_dim = int32_t(config_.head_dim);
  v.row_bytes = int32_t(row_bytes_);
  v.dtype = int32_t(config_.dtype);
  return v;
}

void CudaKvCache::copy_block_to_host(int64_t l, int64_t block, bool values, uint8_t* dst) const {
  if (l < 0 || l >= config_.n_layer || block < 0 || block >= blocks_per_layer_) {
    fail("CUDA KV cache: block {} of layer {} out of range", block, l);
  }
  const uint8_t* src = (values ? v_pool_ : k_pool_) + (l * blocks_per_layer_ + block) * block_bytes_;
  IMP_CUDA_CHECK(cudaMemcpy(dst, src, size_t(block_bytes_), cudaMemcpyDeviceToHost));
}

}  // namespace imp::cuda
