// Causal GQA attention over the paged device KV cache (forward_kernels.h): decode (split-K)
// and the exact mode's FP32 prefill.
//
// Block (kv head g, head subgroup, split s, query t), 128 threads. The block serves the
// query heads of one kv head together (GQA: up to kMaxGroup heads), so each K/V row is
// read and decoded once for all of them. Its keys are walked in tiles of kTile = 32:
//   1. rows: 32 threads look up the tile's block-table entries → row pointers (smem);
//   2. load: all threads decode the tile's K and V rows to FP32 in shared memory with
//      independent (vector, where the type allows) loads, so the tile costs one memory
//      round trip rather than one per key;
//   3. scores: warp w takes heads w, w+4, …; lane j scores key j against the head's q
//      (smem), then the warp updates the head's running (max, sum) — online softmax, FP32;
//   4. P·V: thread i owns output elements i, i+128, … of the subgroup's heads, rescales
//      them by the tile's correction and accumulates its 32 keys.
// Why: a warp per key chain (the previous kernel) left each block waiting on a dependent
// load chain per key; a llama3.1-8b decode step spent 1.2 ms of 3.3 in attention at
// 640 tokens (imp bench --trace-kernels, 2026-12-03).
// With one split the block writes acc / l; else (max, sum, acc) partials per head that
// combine_kernel merges. (Merging in the last split's block instead, counted by atomics,
// saved the launch but cost more: Q4_0 8B decode step 3.00 vs 2.67 ms, 2026-12-03.)
// Key counts come from StepParams in device memory, so a captured decode graph stays valid
// as the context grows (within its split count).
#include <cmath>

#include "backends/cuda/attention_typed.h"
#include "backends/cuda/check.h"
#include "backends/cuda/forward_kernels.h"
#include "backends/cuda/kv_codec.cuh"
#include "backends/cuda/pdl.cuh"

namespace imp::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kTile = 32;          // keys per tile: one per lane in the score step
constexpr int kMaxGroup = 8;       // query heads per block (larger GQA groups: several subgroups)
constexpr int kMaxHeadDim = 256;
constexpr int kMaxAcc = kMaxGroup * kMaxHeadDim / kThreads;  // output elements per thread
constexpr int kMaxCombineSplits = 128;

// Shared memory of one block, in floats after the row pointers: q [group][hd],
// k [kTile][hd + 1] (odd stride: lane j reads row j, conflict-free), v [kTile][hd],
// p [group][kTile], and the running max / sum / tile correction per head.
struct AttnSmem {
  int hd, group;
  __host__ __device__ int k_stride() const { return hd + 1; }
  __host__ __device__ size_t bytes() const {
    return 2 * kTile * sizeof(void*) +
           sizeof(float) * (size_t(group) * hd + kTile * k_stride() + kTile * hd + group * kTile + 3 * group);
  }
};

// Elements e .. e+3 of a row (decode_elem's values, bit for bit). `vec`: head_dim % 4 == 0,
// so the 4-, 8- and 16-byte loads below are aligned (row sizes are multiples of 4, 8, 16).
__device__ __forceinline__ void decode_quad(int32_t dtype, const uint8_t* row, int e, int hd, float scale, bool vec,
                                            float out[4]) {
  if (vec) {
    switch (dtype) {
      case kvc::kF32: {
        const float4 v = *reinterpret_cast<const float4*>(row + 4 * e);
        out[0] = v.x, out[1] = v.y, out[2] = v.z, out[3] = v.w;
        return;
      }
      case kvc::kF16:
      case kvc::kBF16: {
        const uint2 v = *reinterpret_cast<const uint2*>(row + 2 * e);
        const uint16_t h[4] = {uint16_t(v.x), uint16_t(v.x >> 16), uint16_t(v.y), uint16_t(v.y >> 16)};
#pragma unroll
        for (int i = 0; i < 4; ++i) out[i] = dtype == kvc::kF16 ? kvc::f16_to_f32(h[i]) : kvc::bf16_to_f32(h[i]);
        return;
      }
      case kvc::kFP8:
      case kvc::kINT8: {
        const uint32_t v = *reinterpret_cast<const uint32_t*>(row + 4 + e);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const uint8_t b = uint8_t(v >> (8 * i));
          out[i] = __fmul_rn(dtype == kvc::kFP8 ? kvc::e4m3_to_f32(b) : float(int8_t(b)), scale);
        }
        return;
      }
      default: break;
    }
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) out[i] = e + i < hd ? kvc::decode_elem(dtype, row, e + i, hd, scale) : 0.0f;
}

// grid (n_head, n_tok), 128 threads: merges the n_split partials of one (query, head). The splits' (max, sum) pairs are read in parallel into
// shared memory and turned into one weight per split, so the per-element loop below is a
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

// grid (n_kv_head · n_sub, n_split, n_tok); `group` heads per block (the last subgroup of a
// kv head may have fewer: n_head / n_kv_head − sub · group).
__global__ void __launch_bounds__(kThreads) attention_kernel(const float* q, int n_head, KvView kv, int window,
                                                             float scale, int group, float* partials,
                                                             float* out, const StepParams* step) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int hd = kv.head_dim, G = n_head / kv.n_kv_head;
  const int n_sub = (G + group - 1) / group;
  const int g = blockIdx.x / n_sub, sub = blockIdx.x % n_sub;
  const int h0 = g * G + sub * group, n_g = min(group, G - sub * group);
  const int s = blockIdx.y, n_split = gridDim.y, t = blockIdx.z;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const AttnSmem L{hd, group};
  const uint8_t** k_rows = reinterpret_cast<const uint8_t**>(smem_raw);
  const uint8_t** v_rows = k_rows + kTile;
  float* q_s = reinterpret_cast<float*>(v_rows + kTile);
  float* k_s = q_s + group * hd;
  float* v_s = k_s + kTile * L.k_stride();
  float* p_s = v_s + kTile * hd;
  float* m_s = p_s + group * kTile;
  float* l_s = m_s + group;
  float* c_s = l_s + group;
  __shared__ float k_scale[kTile], v_scale[kTile];

  // The step's key range: StepParams was written before the step's first kernel.
  const int pos = step->pos0 + t;
  const int lo = window > 0 ? max(0, pos + 1 - window) : 0;
  const int len = pos - lo + 1;
  const int chunk = (len + n_split - 1) / n_split;
  const int j0 = lo + s * chunk, j1 = min(pos + 1, j0 + chunk);

  pdl_wait();  // q and this step's cache rows come from the kernels before (pdl.cuh)
  pdl_trigger();
  for (int i = tid; i < n_g * hd; i += kThreads) q_s[i] = q[(int64_t(t) * n_head + h0) * hd + i];
  if (tid < group) {
    m_s[tid] = -INFINITY;
    l_s[tid] = 0.0f;
  }
  const bool vec = (hd & 3) == 0;
  const int quads = (hd + 3) / 4;
  const int n_out = n_g * hd;
  float acc[kMaxAcc];
#pragma unroll
  for (int r = 0; r < kMaxAcc; ++r) acc[r] = 0.0f;

  for (int base = j0; base < j1; base += kTile) {
    const int n_keys = min(kTile, j1 - base);
    __syncthreads();  // the previous tile's k/v/p are consumed (and q_s, m_s written)
    if (tid < kTile) {
      const uint8_t* kr = nullptr;
      const uint8_t* vr = nullptr;
      if (tid < n_keys) {
        kr = kvc::kv_row_ptr(kv.k_pool, kv.k_table, kv.block_tokens, kv.n_kv_head, kv.row_bytes, base + tid, g);
        vr = kvc::kv_row_ptr(kv.v_pool, kv.v_table, kv.block_tokens, kv.n_kv_head, kv.row_bytes, base + tid, g);
        k_scale[tid] = kvc::row_scale(kv.dtype, kr);
        v_scale[tid] = kvc::row_scale(kv.dtype, vr);
      }
      k_rows[tid] = kr;
      v_rows[tid] = vr;
    }
    __syncthreads();
    // K and V of the tile, FP32; keys past the tile's end are zeros (p = 0 must not meet NaN).
    for (int i = tid; i < kTile * quads; i += kThreads) {
      const int j = i / quads, e = (i - j * quads) * 4;
      float kq[4] = {0.0f, 0.0f, 0.0f, 0.0f}, vq[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      if (j < n_keys) {
        decode_quad(kv.dtype, k_rows[j], e, hd, k_scale[j], vec, kq);
        decode_quad(kv.dtype, v_rows[j], e, hd, v_scale[j], vec, vq);
      }
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        if (e + c < hd) {
          k_s[j * L.k_stride() + e + c] = kq[c];
          v_s[j * hd + e + c] = vq[c];
        }
      }
    }
    __syncthreads();
    // Scores and the online softmax, one warp per head; lane = key.
    for (int gi = warp; gi < n_g; gi += kWarps) {
      const float* qh = q_s + gi * hd;
      const float* kr = k_s + lane * L.k_stride();
      float dot = 0.0f;
      for (int e = 0; e < hd; ++e) dot = fmaf(qh[e], kr[e], dot);
      const bool valid = lane < n_keys;
      const float sc = valid ? dot * scale : -INFINITY;
      float mt = sc;
      for (int o = 16; o > 0; o >>= 1) mt = fmaxf(mt, __shfl_xor_sync(0xFFFFFFFFu, mt, o));
      const float m_old = m_s[gi];
      const float m_new = fmaxf(m_old, mt);  // finite: the tile has at least one key
      const float p = valid ? expf(sc - m_new) : 0.0f;
      float sum = p;
      for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xFFFFFFFFu, sum, o);
      p_s[gi * kTile + lane] = p;
      __syncwarp();
      if (lane == 0) {
        const float corr = expf(m_old - m_new);  // 0 on the first tile (m_old = −inf)
        c_s[gi] = corr;
        l_s[gi] = l_s[gi] * corr + sum;
        m_s[gi] = m_new;
      }
    }
    __syncthreads();
    // P·V: output element idx = tid + r · 128 of the subgroup (head idx / hd, element idx % hd).
#pragma unroll
    for (int r = 0; r < kMaxAcc; ++r) {
      const int idx = tid + r * kThreads;
      if (idx < n_out) {
        const int gi = idx / hd, e = idx - gi * hd;
        const float* p = p_s + gi * kTile;
        float a = acc[r] * c_s[gi];
#pragma unroll 8
        for (int j = 0; j < kTile; ++j) a = fmaf(p[j], v_s[j * hd + e], a);
        acc[r] = a;
      }
    }
  }
  __syncthreads();  // m_s / l_s final (a block with no keys keeps −inf / 0)

  const int64_t row0 = int64_t(t) * n_head + h0;  // (token, head) row of the subgroup's first head
#pragma unroll
  for (int r = 0; r < kMaxAcc; ++r) {
    const int idx = tid + r * kThreads;
    if (idx < n_out) {
      const int gi = idx / hd, e = idx - gi * hd;
      if (n_split == 1) {
        const float l = l_s[gi];
        out[(row0 + gi) * hd + e] = l > 0.0f ? acc[r] / l : 0.0f;
      } else {
        partials[((row0 + gi) * n_split + s) * (hd + 2) + 2 + e] = acc[r];
      }
    }
  }
  if (n_split == 1) return;
  if (tid < n_g) {
    partials[((row0 + tid) * n_split + s) * (hd + 2)] = m_s[tid];
    partials[((row0 + tid) * n_split + s) * (hd + 2) + 1] = l_s[tid];
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
  if (n_split > 1 && !partials) ::imp::fail("CUDA attention_decode: {} splits need a partials buffer", n_split);
  if (n_split > kMaxCombineSplits) ::imp::fail("CUDA attention_decode: {} splits (at most {})", n_split, kMaxCombineSplits);
  const int w = window > 0 && window < 0x7FFFFFFF ? int(window) : 0;
  const float sc = scale > 0.0f ? scale : 1.0f / std::sqrt(float(kv.head_dim));
  // GQA group split into the fewest subgroups of ≤ kMaxGroup heads, balanced.
  const int G = int(n_head / kv.n_kv_head);
  const int n_sub = (G + kMaxGroup - 1) / kMaxGroup;
  const int group = (G + n_sub - 1) / n_sub;
  const size_t smem = AttnSmem{kv.head_dim, group}.bytes();
  static bool attr_set = false;  // the largest (hd 256, 8 heads) needs ~76 KB
  if (!attr_set) {
    IMP_CUDA_CHECK(cudaFuncSetAttribute(attention_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        int(AttnSmem{kMaxHeadDim, kMaxGroup}.bytes())));
    attr_set = true;
  }
  if (attention_typed_enabled()) {
    launch_attention_typed(q, n_tok, n_head, kv, w, sc, n_split, partials, out, step, stream);
  } else {
    launch_pdl(attention_kernel, dim3(unsigned(kv.n_kv_head * n_sub), unsigned(n_split), unsigned(n_tok)),
               dim3(kThreads), smem, stream, q, int(n_head), kv, w, sc, group, partials, out, step);
  }
  if (n_split > 1) {
    launch_pdl(combine_kernel, dim3(unsigned(n_head), unsigned(n_tok)), dim3(128), 0, stream, partials, int(n_head),
               n_split, int(kv.head_dim), out);
  }
}

void attention_prefill(const float* q, int64_t n_tok, int64_t n_head, KvView kv, int64_t window, float scale,
                       float* out, const StepParams* step, cudaStream_t stream) {
  attention_decode(q, n_tok, n_head, kv, window, scale, 1, nullptr, out, step, stream);
}

}  // namespace imp::cuda
