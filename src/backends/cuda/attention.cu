// Causal GQA attention over the paged device KV cache (forward_kernels.h): decode (split-K)
// and the exact mode's FP32 prefill, both by the decode attention kernel
// (attention_decode_kernel.cu: a block per (kv head, ≤ 4 query heads, split, query), keys
// in tiles of 32 decoded to shared memory, online softmax in FP32), or with
// IMP_CUDA_ATTN_WIDE=1 by the one-launch kernel (attention_decode_wide.cu: 16 warps per split
// of up to 512 keys, merged in shared memory).
//
// With one split the block writes the output; else (max, sum, acc) partials per head that
// combine_kernel below merges. (Measured and dropped, Q4_0 8B decode: merging in the last
// split's block, counted by atomics — step 3.00 vs 2.67 ms on an H200, 2026-12-03 — and
// merging the ≤ 16 splits of a kv head inside a thread-block cluster through distributed
// shared memory — attention 665 µs per step against 499 + 109 for kernel + combine on an
// H100, 2026-12-07.)
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

constexpr int kCombineThreads = 128;  // ≥ kMaxCombineSplits: one split's (max, sum) per thread
constexpr int kCombineWarps = kCombineThreads / 32;
static_assert(kCombineThreads >= kMaxCombineSplits, "one split per thread in the weight step");

constexpr int kCombineChunk = 32;  // output elements per block: one per lane

// grid (n_head · ceil(hd / 32), n_tok), 128 threads: merges the n_split partials of 32
// output elements of one (query, head).
// 1. thread s reads split s's (max, sum): the block's max M, the weights exp(m_s − M) (empty
//    splits weigh nothing) and L = Σ sum_s · weight_s;
// 2. warp w sums splits w, w + 4, … of the element its lane owns (each split's 32 elements
//    one 128-byte read, eight splits in flight); the four warps' sums are added in warp order.
// Why: one block per head left 32 blocks each reading every split of 128 elements; the merge
// cost ~6 µs per layer of a Q4_0 8B decode step (H100 kernel trace, 2026-12-07) against the
// attention kernel's ~9.
__global__ void __launch_bounds__(kCombineThreads) combine_kernel(const float* partials, int n_head, int n_split, int hd,
                                                                  float* out) {
  pdl_wait();
  pdl_trigger();
  const int chunks = (hd + kCombineChunk - 1) / kCombineChunk;
  const int h = blockIdx.x / chunks, e = (blockIdx.x % chunks) * kCombineChunk + (threadIdx.x & 31);
  const int t = blockIdx.y, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int stride = hd + 2;
  const float* base = partials + (int64_t(t) * n_head + h) * n_split * stride;
  __shared__ float w[kMaxCombineSplits];
  __shared__ float red[2][kCombineWarps];
  __shared__ float sums[kCombineWarps][kCombineChunk];
  float ms = -INFINITY, ls = 0.0f;
  if (tid < n_split) {
    ms = base[tid * stride];
    ls = base[tid * stride + 1];
    if (!(ls > 0.0f)) ms = -INFINITY, ls = 0.0f;
  }
  float m = ms;
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xFFFFFFFFu, m, o));
  if (lane == 0) red[0][warp] = m;
  __syncthreads();
  float M = red[0][0];
#pragma unroll
  for (int i = 1; i < kCombineWarps; ++i) M = fmaxf(M, red[0][i]);
  const float wt = ms == -INFINITY ? 0.0f : expf(ms - M);
  if (tid < n_split) w[tid] = wt;
  float l = ls * wt;
  for (int o = 16; o > 0; o >>= 1) l += __shfl_xor_sync(0xFFFFFFFFu, l, o);
  if (lane == 0) red[1][warp] = l;
  __syncthreads();  // w[] and red[1] complete
  float L = 0.0f;
#pragma unroll
  for (int i = 0; i < kCombineWarps; ++i) L += red[1][i];
  float a = 0.0f;
  if (e < hd) {
#pragma unroll 8
    for (int s = warp; s < n_split; s += kCombineWarps) a = fmaf(base[s * stride + 2 + e], w[s], a);
  }
  sums[warp][lane] = a;
  __syncthreads();
  if (tid < kCombineChunk && e < hd) {
    float total = sums[0][tid];
#pragma unroll
    for (int k = 1; k < kCombineWarps; ++k) total += sums[k][tid];
    out[(int64_t(t) * n_head + h) * hd + e] = L > 0.0f ? total / L : 0.0f;
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
                      int32_t n_split, float* partials, float* out, const StepParams* step, cudaStream_t stream,
                      const L2Ranges& next_weights) {
  check_args(n_tok, n_head, kv, n_split, "attention_decode");
  if (n_split > kMaxCombineSplits) ::imp::fail("CUDA attention_decode: {} splits (at most {})", n_split, kMaxCombineSplits);
  const bool combine = n_split > 1;
  if (combine && !partials) ::imp::fail("CUDA attention_decode: {} splits need a partials buffer", n_split);
  const int w = window > 0 && window < 0x7FFFFFFF ? int(window) : 0;
  const float sc = scale > 0.0f ? scale : 1.0f / std::sqrt(float(kv.head_dim));
  if (attention_wide_enabled()) {
    launch_attention_decode_wide(q, n_tok, n_head, kv, w, sc, n_split, partials, out, step, stream, next_weights);
  } else {
    launch_attention_decode_kernel(q, n_tok, n_head, kv, w, sc, n_split, partials, out, step, stream, next_weights);
  }
  if (combine) {
    const int64_t chunks = (kv.head_dim + kCombineChunk - 1) / kCombineChunk;
    launch_pdl(combine_kernel, dim3(unsigned(n_head * chunks), unsigned(n_tok)), dim3(kCombineThreads), 0, stream,
               partials, int(n_head), n_split, int(kv.head_dim), out);
  }
}

void attention_prefill(const float* q, int64_t n_tok, int64_t n_head, KvView kv, int64_t window, float scale,
                       float* out, const StepParams* step, cudaStream_t stream) {
  attention_decode(q, n_tok, n_head, kv, window, scale, 1, nullptr, out, step, stream, L2Ranges{});
}

}  // namespace imp::cuda
