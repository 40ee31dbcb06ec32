// Causal GQA attention over the paged device KV cache (forward_kernels.h): decode (split-K)
// and the exact mode's FP32 prefill, both by the decode attention kernel
// (attention_decode_kernel.cu: a block per (kv head, ≤ 4 query heads, split, query), keys
// in tiles of 32 decoded to shared memory, online softmax in FP32).
//
// Splits: each split of a query's keys is one block; with 1 < n_split ≤ 16 the splits of a
// (kv head, subgroup) form a thread-block cluster and merge in distributed shared memory;
// with more, each writes (max, sum, acc) partials that combine_kernel below merges. (Merging
// in the last split's block instead, counted by atomics, saved the launch but cost more:
// Q4_0 8B decode step 3.00 vs 2.67 ms on an H200, 2026-12-03.)
// Key counts come from StepParams in device memory, so a captured decode graph stays valid
// as the context grows (within its split count).
#include <cmath>

#include "backends/cuda/attention_decode_kernel.h"
#include "backends/cuda/check.h"
#include "backends/cuda/forward_kernels.h"
#include "backends/cuda/pdl.cuh"

namespace imp::cuda {
namespace {

constexpr int kMaxHeadDim = 256;
constexpr int kMaxCombineSplits = 128;

// grid (n_head, n_tok), 128 threads: merges the n_split partials of one (query, head). The
// splits' (max, sum) pairs are read in parallel into shared memory and turned into one weight per split, so the per-element loop below is a
// chain of independent loads rather than three dependent passes over the partials.
__global__ void combine_kernel(const float* partials, int n_head, int n_split, int hd, float* out) {
  pdl_wait();
  pdl_trigger();
  const int h = blockIdx.x, t = blockIdx.y;
  const float* base = partials + (int64_t(t) * n_head + h) * n_split * (hd + 2);
  __shared__ float w[kMaxCombineSplits];
  __shared__ float red[32];
  float m = -INFINITY;
  for (int s = threadIdx.x; s < n_split; s += blockDim.x) {
    const float ms = base[s * (hd + 2)], ls = base[s * (hd + 2) + 1];
    w[s] = ls > 0.0f ? ms : -INFINITY;  // empty splits (no keys) weigh nothing
    m = fmaxf(m, w[s]);
  }
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xFFFFFFFFu, m, o));
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = m;
  __syncthreads();
  float M = -INFINITY;
  for (int i = 0; i < int(blockDim.x + 31) / 32; ++i) M = fmaxf(M, red[i]);
  float l = 0.0f;
  for (int s = threadIdx.x; s < n_split; s += blockDim.x) {
    const float ls = base[s * (hd + 2) + 1];
    const float e = w[s] == -INFINITY ? 0.0f : expf(w[s] - M);
    w[s] = e;
    l += ls * e;
  }
  __syncthreads();  // red[] is reused below, w[] complete
  for (int o = 16; o > 0; o >>= 1) l += __shfl_xor_sync(0xFFFFFFFFu, l, o);
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = l;
  __syncthreads();
  float L = 0.0f;
  for (int i = 0; i < int(blockDim.x + 31) / 32; ++i) L += red[i];
  for (int e = threadIdx.x; e < hd; e += blockDim.x) {
    float a = 0.0f;
#pragma unroll 8
    for (int s = 0; s < n_split; ++s) a = fmaf(base[s * (hd + 2) + 2 + e], w[s], a);
    out[(int64_t(t) * n_head + h) * hd + e] = L > 0.0f ? a / L : 0.0f;
  }
}

void check_args(int64_t n_tok, int64_t n_head, const KvView& kv, int32_t n_split, const char* op) {
  if (kv.n_kv_head <= 0 || n_head <= 0 || n_head % kv.n_kv_head != 0) {
    ::imp::fail("CUDA {}: n_head {} is not a multiple of n_kv_head {}", op, n_head, kv.n_kv_head);
  }
  if (kv.head_dim <= 0 || kv.head_dim > kMaxHeadDim) {
    ::imp::fail("CUDA {}: head_dim {} is outside 1..{}", op, kv.head_dim, kMaxHeadDim);
  }
  if (!kv_dtype_supported_on_device(kv.dtype)) ::imp::fail("CUDA {}: KV type {} has no device decoder", op, kv.dtype);
  if (n_tok <= 0 || n_tok > 65535 || n_head > 0x7FFFFFFF || n_split < 1 || n_split > 65535) {
    ::imp::fail("CUDA {}: grid {} heads × {} splits × {} tokens is out of range", op, n_head, n_split, n_tok);
  }
}

}  // namespace

void attention_decode(const float* q, int64_t n_tok, int64_t n_head, KvView kv, int64_t window, float scale,
                      int32_t n_split, float* partials, float* out, const StepParams* step, cudaStream_t stream) {
  check_args(n_tok, n_head, kv, n_split, "attention_decode");
  if (n_split > kMaxCombineSplits) ::imp::fail("CUDA attention_decode: {} splits (at most {})", n_split, kMaxCombineSplits);
  const bool combine = n_split > 1 && !attention_cluster_merges(n_split, kv.head_dim);
  if (combine && !partials) ::imp::fail("CUDA attention_decode: {} splits need a partials buffer", n_split);
  const int w = window > 0 && window < 0x7FFFFFFF ? int(window) : 0;
  const float sc = scale > 0.0f ? scale : 1.0f / std::sqrt(float(kv.head_dim));
  launch_attention_decode_kernel(q, n_tok, n_head, kv, w, sc, n_split, partials, out, step, stream);
  if (combine) {
    launch_pdl(combine_kernel, dim3(unsigned(n_head), unsigned(n_tok)), dim3(128), 0, stream, partials, int(n_head),
               n_split, int(kv.head_dim), out);
  }
}

void attention_prefill(const float* q, int64_t n_tok, int64_t n_head, KvView kv, int64_t window, float scale,
                       float* out, const StepParams* step, cudaStream_t stream) {
  attention_decode(q, n_tok, n_head, kv, window, scale, 1, nullptr, out, step, stream);
}

}  // namespace imp::cuda
