// Causal GQA attention over the paged device KV cache (forward_kernels.h).
//
// Block (head h, split s, query t), 4 warps. Lane l holds q elements l, l+32, … (head_dim
// ≤ 256: 8 per lane). The split's keys are dealt round-robin to the warps; per key the
// warp decodes its K row, reduces the dot with shuffles, and updates its running
// (max m, sum l, acc[]) — the online softmax in FP32. The 4 warps merge through shared
// memory; with one split the block writes acc / l, else (m, l, acc) partials that the last
// split's block to finish merges (combine_splits; combine_kernel when no counters are
// given). Key counts come from StepParams in device memory, so a captured decode graph
// stays valid as the context grows (within its split count).
#include <cmath>

#include "backends/cuda/check.h"
#include "backends/cuda/forward_kernels.h"
#include "backends/cuda/kv_codec.cuh"
#include "backends/cuda/pdl.cuh"

namespace imp::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kMaxPerLane = 8;  // head_dim ≤ 256

// Merges the n_split partials of (query t, head h) into out: the block (128 threads) of the
// combine kernel, or the last split's block of attention_kernel. load(p) reads a partial.
constexpr int kMaxCombineSplits = 128;

// The splits' (max, sum) pairs are read in parallel into shared memory and turned into one
// weight per split, so the per-element loop below is a chain of independent loads rather
// than three dependent passes over the partials.
template <class Load>
__device__ __forceinline__ void combine_splits(const float* partials, int n_head, int n_split, int hd, float* out, int h,
                                               int t, Load load) {
  const float* base = partials + (int64_t(t) * n_head + h) * n_split * (hd + 2);
  __shared__ float w[kMaxCombineSplits];
  __shared__ float red[32];
  float m = -INFINITY;
  for (int s = threadIdx.x; s < n_split; s += blockDim.x) {
    const float ms = load(base + s * (hd + 2)), ls = load(base + s * (hd + 2) + 1);
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
    const float ls = load(base + s * (hd + 2) + 1);
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
    for (int s = 0; s < n_split; ++s) a = fmaf(load(base + s * (hd + 2) + 2 + e), w[s], a);
    out[(int64_t(t) * n_head + h) * hd + e] = L > 0.0f ? a / L : 0.0f;
  }
}

// grid (n_head, n_tok), 128 threads: the separate combine (IMP_CUDA_ATTN_COMBINE=kernel).
__global__ void combine_kernel(const float* partials, int n_head, int n_split, int hd, float* out) {
  pdl_wait();
  pdl_trigger();
  combine_splits(partials, n_head, n_split, hd, out, blockIdx.x, blockIdx.y, [](const float* p) { return *p; });
}

__global__ void attention_kernel(const float* q, int n_head, KvView kv, int window, float scale, float* partials,
                                 unsigned* counters, float* out, const StepParams* step) {
  pdl_wait();  // q and the cache rows come from the kernels before (pdl.cuh)
  pdl_trigger();
  const int h = blockIdx.x, s = blockIdx.y, n_split = gridDim.y, t = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int hd = kv.head_dim, group = n_head / kv.n_kv_head, g = h / group;
  const int pos = step->pos0 + t;
  const int lo = window > 0 ? max(0, pos + 1 - window) : 0;
  const int len = pos - lo + 1;
  const int chunk = (len + n_split - 1) / n_split;
  const int j0 = lo + s * chunk, j1 = min(pos + 1, j0 + chunk);

  float qv[kMaxPerLane], acc[kMaxPerLane];
  const float* qh = q + (int64_t(t) * n_head + h) * hd;
#pragma unroll
  for (int i = 0; i < kMaxPerLane; ++i) {
    const int e = lane + 32 * i;
    qv[i] = e < hd ? qh[e] : 0.0f;
    acc[i] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int j = j0 + warp; j < j1; j += kWarps) {
    const uint8_t* kr = kvc::kv_row_ptr(kv.k_pool, kv.k_table, kv.block_tokens, kv.n_kv_head, kv.row_bytes, j, g);
    const float ks = kvc::row_scale(kv.dtype, kr);
    float dot = 0.0f;
#pragma unroll
    for (int i = 0; i < kMaxPerLane; ++i) {
      const int e = lane + 32 * i;
      if (e < hd) dot = fmaf(qv[i], kvc::decode_elem(kv.dtype, kr, e, hd, ks), dot);
    }
    for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xFFFFFFFFu, dot, o);
    const float sc = dot * scale;
    const float m_new = fmaxf(m, sc);
    const float corr = expf(m - m_new);  // 0 on the first key (m = −inf)
    const float p = expf(sc - m_new);
    l = l * corr + p;
    const uint8_t* vr = kvc::kv_row_ptr(kv.v_pool, kv.v_table, kv.block_tokens, kv.n_kv_head, kv.row_bytes, j, g);
    const float vs = kvc::row_scale(kv.dtype, vr);
#pragma unroll
    for (int i = 0; i < kMaxPerLane; ++i) {
      const int e = lane + 32 * i;
      if (e < hd) acc[i] = acc[i] * corr + p * kvc::decode_elem(kv.dtype, vr, e, hd, vs);
    }
    m = m_new;
  }

  // Merge the warps.
  __shared__ float sm_m[kWarps], sm_l[kWarps];
  __shared__ float sm_acc[kWarps][32 * kMaxPerLane];
  if (lane == 0) {
    sm_m[warp] = m;
    sm_l[warp] = l;
  }
#pragma unroll
  for (int i = 0; i < kMaxPerLane; ++i) sm_acc[warp][lane + 32 * i] = acc[i];
  __syncthreads();
  float M = -INFINITY;
  for (int w = 0; w < kWarps; ++w) M = fmaxf(M, sm_m[w]);
  float L = 0.0f;
  float wgt[kWarps];
  for (int w = 0; w < kWarps; ++w) {
    wgt[w] = sm_l[w] > 0.0f ? expf(sm_m[w] - M) : 0.0f;
    L += sm_l[w] * wgt[w];
  }
  const int64_t slot = (int64_t(t) * n_head + h) * n_split + s;
  for (int e = threadIdx.x; e < hd; e += blockDim.x) {
    float a = 0.0f;
    for (int w = 0; w < kWarps; ++w) a += sm_acc[w][e] * wgt[w];
    if (n_split == 1) {
      out[(int64_t(t) * n_head + h) * hd + e] = L > 0.0f ? a / L : 0.0f;
    } else {
      partials[slot * (hd + 2) + 2 + e] = a;
    }
  }
  if (n_split > 1 && threadIdx.x == 0) {
    partials[slot * (hd + 2)] = M;
    partials[slot * (hd + 2) + 1] = L;
  }
  if (n_split > 1 && counters) {
    // The last split of (t, h) to finish merges them all (threadFenceReduction): one launch
    // fewer per layer. Its reads skip L1 (__ldcg): other SMs wrote the partials.
    __shared__ bool last;
    __threadfence();
    __syncthreads();
    unsigned* const count = counters + int64_t(t) * n_head + h;
    if (threadIdx.x == 0) last = atomicAdd(count, 1u) == unsigned(n_split - 1);
    __syncthreads();
    if (last) {
      __threadfence();
      combine_splits(partials, n_head, n_split, hd, out, h, t, [](const float* p) { return __ldcg(p); });
      if (threadIdx.x == 0) *count = 0;  // zero again for the next step (and graph replay)
    }
  }
}

void check_args(int64_t n_tok, int64_t n_head, const KvView& kv, int32_t n_split, const char* op) {
  if (kv.n_kv_head <= 0 || n_head <= 0 || n_head % kv.n_kv_head != 0) {
    ::imp::fail("CUDA {}: n_head {} is not a multiple of n_kv_head {}", op, n_head, kv.n_kv_head);
  }
  if (kv.head_dim <= 0 || kv.head_dim > 32 * kMaxPerLane) {
    ::imp::fail("CUDA {}: head_dim {} is outside 1..{}", op, kv.head_dim, 32 * kMaxPerLane);
  }
  if (!kv_dtype_supported_on_device(kv.dtype)) ::imp::fail("CUDA {}: KV type {} has no device decoder", op, kv.dtype);
  if (n_tok <= 0 || n_tok > 65535 || n_head > 0x7FFFFFFF || n_split < 1 || n_split > 65535) {
    ::imp::fail("CUDA {}: grid {} heads × {} splits × {} tokens is out of range", op, n_head, n_split, n_tok);
  }
}

}  // namespace

void attention_decode(const float* q, int64_t n_tok, int64_t n_head, KvView kv, int64_t window, float scale,
                      int32_t n_split, float* partials, unsigned* counters, float* out, const StepParams* step,
                      cudaStream_t stream) {
  check_args(n_tok, n_head, kv, n_split, "attention_decode");
  if (n_split > 1 && !partials) ::imp::fail("CUDA attention_decode: {} splits need a partials buffer", n_split);
  if (n_split > kMaxCombineSplits) ::imp::fail("CUDA attention_decode: {} splits (at most {})", n_split, kMaxCombineSplits);
  const int w = window > 0 && window < 0x7FFFFFFF ? int(window) : 0;
  const float sc = scale > 0.0f ? scale : 1.0f / std::sqrt(float(kv.head_dim));
  launch_pdl(attention_kernel, dim3(unsigned(n_head), unsigned(n_split), unsigned(n_tok)), dim3(32 * kWarps), 0, stream,
             q, int(n_head), kv, w, sc, partials, counters, out, step);
  if (n_split > 1 && !counters) {
    launch_pdl(combine_kernel, dim3(unsigned(n_head), unsigned(n_tok)), dim3(128), 0, stream, partials, int(n_head),
               n_split, int(kv.head_dim), out);
  }
}

void attention_prefill(const float* q, int64_t n_tok, int64_t n_head, KvView kv, int64_t window, float scale,
                       float* out, const StepParams* step, cudaStream_t stream) {
  attention_decode(q, n_tok, n_head, kv, window, scale, 1, nullptr, nullptr, out, step, stream);
}

}  // namespace imp::cuda
