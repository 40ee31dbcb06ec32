// The decode attention kernel (attention_decode_kernel.h), one instantiation per (KV type,
// output columns per thread), every loop short and rolled.
//
// Block (kv head g, subgroup of ≤ 4 query heads, split s, query t), 128 threads; keys in
// tiles of 32:
//   prologue (before pdl_wait, overlapping the QKV GEMV's tail): the split's K and V rows
//           are located through the block tables — written before the step, constant during
//           it — and prefetched into L2. L2 is the device's point of coherence, so a
//           prefetch cannot hand out stale data; the loads after pdl_wait then find the rows
//           there (~2× faster than from HBM) instead of starting the round trip.
//   rows:   threads 0..31 turn the tile's positions into K/V row pointers and row scales;
//   load:   each thread decodes quads (4 elements) of K and V to FP32 in shared memory, all
//           of its quads of the tile loaded before any is stored (K rows padded to an odd
//           number of quads: the score loop's 16-byte reads of 8 lanes then hit 8 distinct
//           bank quads);
//   scores: warp w scores head w of the subgroup, lane j key j; online softmax in FP32;
//   P·V:    thread i owns elements i (and i + 128 for head_dim > 128) of all 4 heads; the
//           probabilities of a key are one 16-byte broadcast read.
// With one split the block writes acc / l; else (max, sum, acc) partials that combine_kernel
// (attention.cu) merges.
#include "backends/cuda/attention_decode_kernel.h"
#include "backends/cuda/l2_prefetch.cuh"


#include <cmath>
#include <cstdint>

#include "backends/cuda/attention_decode_load.cuh"
#include "backends/cuda/check.h"
#include "backends/cuda/kv_codec.cuh"
#include "backends/cuda/pdl.cuh"
#include "common/env_switch.h"

namespace imp::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kTile = 32;
constexpr int kGroup = 4;  // query heads per block: one per warp in the score step
constexpr int kPrefetchKeys = 256;  // keys whose rows a block prefetches into L2 before pdl_wait

// Shared memory after the row pointers and scales, in floats: q [kGroup][cols4],
// k [kTile][k_cols4], v [kTile][cols4], p [kTile][kGroup], max / sum / correction [kGroup].
struct AttnSmem {
  int quads;  // ceil(head_dim / 4)
  __host__ __device__ int cols4() const { return 4 * quads; }
  __host__ __device__ int k_cols4() const { return 4 * (quads | 1); }
  __host__ __device__ size_t head_bytes() const { return 2 * kTile * sizeof(void*) + 2 * kTile * sizeof(float); }
  __host__ __device__ size_t bytes() const {
    return head_bytes() + sizeof(float) * (size_t(kGroup) * cols4() + size_t(kTile) * k_cols4() + size_t(kTile) * cols4() +
                                           kTile * kGroup + 3 * kGroup);
  }
};

// grid (n_kv_head · n_sub, n_split, n_tok); kCols: output columns per thread (head_dim ≤
// 128 · kCols); prefetch: the L2 prologue (IMP_CUDA_ATTN_PREFETCH=0 leaves it out).
template <int D, int kCols>
__global__ void __launch_bounds__(kThreads) attention_decode_kernel(const float* q, int n_head, KvView kv, int window,
                                                                    float scale, float* partials, float* out,
                                                                    const StepParams* step, bool prefetch,
                                                                    const __grid_constant__ L2Ranges next_weights) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int hd = kv.head_dim;
  const DecodeBlock B(n_head, kv, window, step, kGroup);
  const int g = B.g, h0 = B.h0, n_g = B.n_g, s = B.s, n_split = B.n_split, t = B.t, j0 = B.j0, j1 = B.j1;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const AttnSmem L{(hd + 3) / 4};
  const int quads = L.quads, cols4 = L.cols4(), k_cols4 = L.k_cols4();
  const uint8_t** k_rows = reinterpret_cast<const uint8_t**>(smem_raw);
  const uint8_t** v_rows = k_rows + kTile;
  float* k_scale = reinterpret_cast<float*>(v_rows + kTile);
  float* v_scale = k_scale + kTile;
  float* q_s = v_scale + kTile;
  float* k_s = q_s + kGroup * cols4;
  float* v_s = k_s + kTile * k_cols4;
  float* p_s = v_s + kTile * cols4;
  float* m_s = p_s + kTile * kGroup;
  float* l_s = m_s + kGroup;
  float* c_s = l_s + kGroup;


  // The prologue: rows 2i (K) and 2i + 1 (V) of key j0 + i, one 128-byte line at a time.
  // (Keys past the first kPrefetchKeys load from HBM.)
  if (prefetch) prefetch_rows_l2(kv, g, j0, max(0, min(j1 - j0, kPrefetchKeys)), tid, kThreads);

  // The weights the step reads next (l2_prefetch.h): the last warp issues this block's slice.
  if (next_weights.n > 0 && warp == kThreads / 32 - 1) {
    l2_prefetch_slice(next_weights, blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z),
                      gridDim.x * gridDim.y * gridDim.z, lane, 32);
  }

  pdl_wait();  // q and this step's cache rows come from the kernels before (pdl.cuh)
  pdl_trigger();
  if ((hd & 3) == 0 && (reinterpret_cast<uintptr_t>(q) & 15) == 0) {
    for (int i = tid; i < kGroup * quads; i += kThreads) {
      const int gi = i / quads, c = i - gi * quads;
      const float4 v = gi < n_g ? __ldg(reinterpret_cast<const float4*>(q + (int64_t(t) * n_head + h0 + gi) * hd) + c)
                                : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      *reinterpret_cast<float4*>(q_s + gi * cols4 + 4 * c) = v;
    }
  } else {
    for (int i = tid; i < kGroup * cols4; i += kThreads) {
      const int gi = i / cols4, e = i - gi * cols4;
      q_s[i] = gi < n_g && e < hd ? q[(int64_t(t) * n_head + h0 + gi) * hd + e] : 0.0f;
    }
  }
  if (tid < kGroup) {
    m_s[tid] = -INFINITY;
    l_s[tid] = 0.0f;
  }
  const bool vec = (hd & 3) == 0;
  // Quads per tile and thread when kThreads is a multiple of the row's quads (head_dim 16,
  // 32, 64, 128, 256: each thread keeps one quad column): all loaded before any is stored.
  constexpr int kMaxIt = 8 * kCols;
  const bool fixed_col = kThreads % quads == 0 && kThreads / quads <= kTile && kTile * quads <= kMaxIt * kThreads;
  const int step_rows = kThreads / quads, step_quads = kThreads % quads;
  float acc[kCols][kGroup];
#pragma unroll
  for (int r = 0; r < kCols; ++r) {
#pragma unroll
    for (int gi = 0; gi < kGroup; ++gi) acc[r][gi] = 0.0f;
  }

  for (int base = j0; base < j1; base += kTile) {
    const int n_keys = min(kTile, j1 - base);
    __syncthreads();  // the previous tile is consumed (and q_s, m_s are written)
    if (tid < kTile) {
      const uint8_t* kr = nullptr;
      const uint8_t* vr = nullptr;
      if (tid < n_keys) {
        kr = kvc::kv_row_ptr(kv.k_pool, kv.k_table, kv.block_tokens, kv.n_kv_head, kv.row_bytes, base + tid, g);
        vr = kvc::kv_row_ptr(kv.v_pool, kv.v_table, kv.block_tokens, kv.n_kv_head, kv.row_bytes, base + tid, g);
        k_scale[tid] = row_scale_of<D>(kr);
        v_scale[tid] = row_scale_of<D>(vr);
      }
      k_rows[tid] = kr;
      v_rows[tid] = vr;
    }
    __syncthreads();
    if (fixed_col) {
      const int c = tid % quads, jt = tid / quads, n_it = kTile / step_rows;
      float4 kq[kMaxIt], vq[kMaxIt];
#pragma unroll
      for (int it = 0; it < kMaxIt; ++it) {
        const int j = jt + it * step_rows;
        kq[it] = vq[it] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (it < n_it && j < n_keys) {  // keys past the tile's end stay zero: p = 0 must not meet NaN
          kq[it] = load_quad<D>(k_rows[j], 4 * c, hd, k_scale[j], vec);
          vq[it] = load_quad<D>(v_rows[j], 4 * c, hd, v_scale[j], vec);
        }
      }
#pragma unroll
      for (int it = 0; it < kMaxIt; ++it) {
        const int j = jt + it * step_rows;
        if (it < n_it) {
          *reinterpret_cast<float4*>(k_s + j * k_cols4 + 4 * c) = kq[it];
          *reinterpret_cast<float4*>(v_s + j * cols4 + 4 * c) = vq[it];
        }
      }
    } else {
      int j = tid / quads, c = tid - j * quads;
#pragma unroll 4
      for (; j < kTile; j += step_rows, c += step_quads) {
        if (c >= quads) {
          c -= quads;
          ++j;
          if (j >= kTile) break;
        }
        float4 kq = make_float4(0.0f, 0.0f, 0.0f, 0.0f), vq = kq;
        if (j < n_keys) {
          kq = load_quad<D>(k_rows[j], 4 * c, hd, k_scale[j], vec);
          vq = load_quad<D>(v_rows[j], 4 * c, hd, v_scale[j], vec);
        }
        *reinterpret_cast<float4*>(k_s + j * k_cols4 + 4 * c) = kq;
        *reinterpret_cast<float4*>(v_s + j * cols4 + 4 * c) = vq;
      }
    }
    __syncthreads();
    // Scores and the online softmax: warp = head of the subgroup, lane = key.
    {
      float p = 0.0f;
      if (warp < n_g) {
        const float4* q4 = reinterpret_cast<const float4*>(q_s + warp * cols4);
        const float4* k4 = reinterpret_cast<const float4*>(k_s + lane * k_cols4);
        float dx = 0.0f, dy = 0.0f, dz = 0.0f, dw = 0.0f;
#pragma unroll 4
        for (int i = 0; i < quads; ++i) {
          const float4 a = q4[i], b = k4[i];
          dx = fmaf(a.x, b.x, dx);
          dy = fmaf(a.y, b.y, dy);
          dz = fmaf(a.z, b.z, dz);
          dw = fmaf(a.w, b.w, dw);
        }
        const bool valid = lane < n_keys;
        const float sc = valid ? ((dx + dy) + (dz + dw)) * scale : -INFINITY;
        float mt = sc;
        for (int o = 16; o > 0; o >>= 1) mt = fmaxf(mt, __shfl_xor_sync(0xFFFFFFFFu, mt, o));
        const float m_old = m_s[warp];
        const float m_new = fmaxf(m_old, mt);  // finite: the tile has at least one key
        p = valid ? expf(sc - m_new) : 0.0f;
        float sum = p;
        for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xFFFFFFFFu, sum, o);
        if (lane == 0) {
          const float corr = expf(m_old - m_new);  // 0 on the first tile (m_old = −inf)
          c_s[warp] = corr;
          l_s[warp] = l_s[warp] * corr + sum;
          m_s[warp] = m_new;
        }
      } else if (lane == 0) {
        c_s[warp] = 1.0f;  // heads past the subgroup: p = 0, acc stays 0
      }
      p_s[lane * kGroup + warp] = p;
    }
    __syncthreads();
    // P·V: columns e = tid + 128 r of the 4 heads, over the tile's keys.
    float corr[kGroup];
#pragma unroll
    for (int gi = 0; gi < kGroup; ++gi) corr[gi] = c_s[gi];
#pragma unroll
    for (int r = 0; r < kCols; ++r) {
#pragma unroll
      for (int gi = 0; gi < kGroup; ++gi) acc[r][gi] *= corr[gi];
    }
#pragma unroll 4
    for (int jj = 0; jj < n_keys; ++jj) {
      const float4 p4 = *reinterpret_cast<const float4*>(p_s + jj * kGroup);
#pragma unroll
      for (int r = 0; r < kCols; ++r) {
        const int e = tid + r * kThreads;
        const float v = e < cols4 ? v_s[jj * cols4 + e] : 0.0f;
        acc[r][0] = fmaf(p4.x, v, acc[r][0]);
        acc[r][1] = fmaf(p4.y, v, acc[r][1]);
        acc[r][2] = fmaf(p4.z, v, acc[r][2]);
        acc[r][3] = fmaf(p4.w, v, acc[r][3]);
      }
    }
  }
  __syncthreads();  // m_s / l_s final (a block with no keys keeps −inf / 0)

  const int64_t row0 = int64_t(t) * n_head + h0;
#pragma unroll
  for (int r = 0; r < kCols; ++r) {
    const int e = tid + r * kThreads;
    if (e >= hd) continue;
#pragma unroll
    for (int gi = 0; gi < kGroup; ++gi) {
      if (gi >= n_g) break;
      if (n_split == 1) {
        const float l = l_s[gi];
        out[(row0 + gi) * hd + e] = l > 0.0f ? acc[r][gi] / l : 0.0f;
      } else {
        partials[((row0 + gi) * n_split + s) * (hd + 2) + 2 + e] = acc[r][gi];
      }
    }
  }
  if (n_split > 1 && tid < n_g) {
    partials[((row0 + tid) * n_split + s) * (hd + 2)] = m_s[tid];
    partials[((row0 + tid) * n_split + s) * (hd + 2) + 1] = l_s[tid];
  }
}

struct SplitKernels {
  template <int D, int kCols>
  static auto fn() {
    return attention_decode_kernel<D, kCols>;
  }
};

bool& prefetch_flag() {
  static bool on = env_switch_on("IMP_CUDA_ATTN_PREFETCH");
  return on;
}

}  // namespace

bool attention_prefetch_enabled() { return prefetch_flag(); }
void set_attention_prefetch(bool on) { prefetch_flag() = on; }

void launch_attention_decode_kernel(const float* q, int64_t n_tok, int64_t n_head, KvView kv, int window, float scale,
                                    int32_t n_split, float* partials, float* out, const StepParams* step,
                                    cudaStream_t stream, const L2Ranges& next_weights) {
  launch_decode_attention<SplitKernels, AttnSmem>(kThreads, kGroup, q, n_tok, n_head, kv, window, scale, n_split,
                                                  partials, out, step, stream, next_weights);
}

}  // namespace imp::cuda
