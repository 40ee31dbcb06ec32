// The one-launch decode attention (IMP_CUDA_ATTN_WIDE=1; opt-in until a GPU measures it):
// a block of 16 warps per (kv head, ≤ 4 query heads, split, query), each warp walking its
// own 32-key tiles — lane j scores key j of the tile against the 4 heads, then owns head
// elements 4·lane … (P·V) — with its own online softmax, and the block's warps merged in
// shared memory at the end. A split is up to 512 keys (kWideKeys, the backend's choice of
// n_split), so a decode step at ≤ 512 keys × the cache's bucket runs one block per kv head
// and no combine launch.
//
// Why: the split kernel (attention_decode_kernel.cu) gives each block one 32-key tile that
// its four warps share through shared memory, and merges the splits in a second launch
// (combine_kernel). At 512 keys that is 16 splits: an 8B model's decode step spent ~9 µs a
// layer in the attention kernel and ~6 in the merge (H100 trace, 2026-12-07) to read 2 MB
// of K/V — dependent round trips and a launch, not bytes. Here the tiles of a split run in
// parallel warps without block barriers between them, and the merge is one barrier.
//
// Numerics: FP32 scores (q·k in four partial sums, then · scale), exp of score − running
// max, FP32 P·V — the split kernel's arithmetic, the keys merged in another order.
#include "backends/cuda/attention_decode_kernel.h"

#include <cmath>
#include <cstdint>

#include "backends/cuda/attention_decode_load.cuh"
#include "backends/cuda/check.h"
#include "backends/cuda/kv_codec.cuh"
#include "backends/cuda/l2_prefetch.cuh"
#include "backends/cuda/pdl.cuh"
#include "common/env_switch.h"

namespace imp::cuda {
namespace {

constexpr int kWarps = 16;
constexpr int kThreads = kWarps * 32;
constexpr int kTile = 32;
constexpr int kGroup = 4;  // query heads per block (a GQA group of more takes several blocks)
constexpr int kWideKeys = kWarps * kTile;
constexpr int kWidePrefetchKeys = 1024;

// Shared memory, in bytes from the start: q [kGroup][cols4] floats; each warp's tile of V row
// pointers [kWarps][kTile] and their scales; the warps' (max, sum) [kWarps][kGroup]; their
// accumulators [kWarps][kGroup][cols4]. Every piece a multiple of 16 bytes.
struct WideSmem {
  int quads;
  __host__ __device__ int cols4() const { return 4 * quads; }
  __host__ __device__ size_t rows_at() const { return size_t(kGroup) * cols4() * 4; }
  __host__ __device__ size_t scales_at() const { return rows_at() + size_t(kWarps) * kTile * sizeof(void*); }
  __host__ __device__ size_t ml_at() const { return scales_at() + size_t(kWarps) * kTile * 4; }
  __host__ __device__ size_t acc_at() const { return ml_at() + size_t(2) * kWarps * kGroup * 4; }
  __host__ __device__ size_t bytes() const { return acc_at() + size_t(kWarps) * kGroup * cols4() * 4; }
};

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xFFFFFFFFu, v, o));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
  return v;
}

// grid (n_kv_head · n_sub, n_split, n_tok), kThreads; kCols: quads per lane in P·V (head_dim
// ≤ 128 · kCols).
template <int D, int kCols>
__global__ void __launch_bounds__(kThreads) attention_decode_wide_kernel(const float* q, int n_head, KvView kv,
                                                                         int window, float scale, float* partials,
                                                                         float* out, const StepParams* step,
                                                                         bool prefetch,
                                                                         const __grid_constant__ L2Ranges next_weights) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int hd = kv.head_dim;
  const DecodeBlock B(n_head, kv, window, step, kGroup);
  const int g = B.g, h0 = B.h0, n_g = B.n_g, s = B.s, n_split = B.n_split, t = B.t, j0 = B.j0, j1 = B.j1;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const WideSmem L{(hd + 3) / 4};
  const int quads = L.quads, cols4 = L.cols4();
  float* q_s = reinterpret_cast<float*>(smem_raw);
  const uint8_t** v_rows = reinterpret_cast<const uint8_t**>(smem_raw + L.rows_at()) + warp * kTile;
  float* v_scale = reinterpret_cast<float*>(smem_raw + L.scales_at()) + warp * kTile;
  float* m_w = reinterpret_cast<float*>(smem_raw + L.ml_at());  // [kWarps][kGroup]
  float* l_w = m_w + kWarps * kGroup;
  float* acc_w = reinterpret_cast<float*>(smem_raw + L.acc_at());  // [kWarps][kGroup][cols4]

  // The prologue (the split kernel's): this split's K and V rows into L2 before the wait.
  if (prefetch) prefetch_rows_l2(kv, g, j0, max(0, min(j1 - j0, kWidePrefetchKeys)), tid, kThreads);
  if (next_weights.n > 0 && warp == kWarps - 1) {
    l2_prefetch_slice(next_weights, blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z),
                      gridDim.x * gridDim.y * gridDim.z, lane, 32);
  }

  pdl_wait();  // q and this step's cache rows come from the kernels before (pdl.cuh)
  pdl_trigger();
  for (int i = tid; i < kGroup * cols4; i += kThreads) {
    const int gi = i / cols4, e = i - gi * cols4;
    q_s[i] = gi < n_g && e < hd ? q[(int64_t(t) * n_head + h0 + gi) * hd + e] : 0.0f;
  }
  __syncthreads();

  const bool vec = (hd & 3) == 0;
  float m[kGroup], l[kGroup], acc[kGroup][4 * kCols];
#pragma unroll
  for (int gi = 0; gi < kGroup; ++gi) {
    m[gi] = -INFINITY;
    l[gi] = 0.0f;
#pragma unroll
    for (int c = 0; c < 4 * kCols; ++c) acc[gi][c] = 0.0f;
  }

  for (int base = j0 + warp * kTile; base < j1; base += kWarps * kTile) {
    const int n_keys = min(kTile, j1 - base);
    const bool valid = lane < n_keys;
    const uint8_t* kr = nullptr;
    float ks = 1.0f;
    if (valid) {
      kr = kvc::kv_row_ptr(kv.k_pool, kv.k_table, kv.block_tokens, kv.n_kv_head, kv.row_bytes, base + lane, g);
      ks = row_scale_of<D>(kr);
      const uint8_t* vr = kvc::kv_row_ptr(kv.v_pool, kv.v_table, kv.block_tokens, kv.n_kv_head, kv.row_bytes, base + lane, g);
      v_rows[lane] = vr;
      v_scale[lane] = row_scale_of<D>(vr);
    }
    __syncwarp();
    // Scores: lane = key, its K row against the group's q rows (broadcast reads).
    float d[kGroup][4];
#pragma unroll
    for (int gi = 0; gi < kGroup; ++gi) d[gi][0] = d[gi][1] = d[gi][2] = d[gi][3] = 0.0f;
    if (valid) {
#pragma unroll 4
      for (int c = 0; c < quads; ++c) {
        const float4 k4 = load_quad<D>(kr, 4 * c, hd, ks, vec);
#pragma unroll
        for (int gi = 0; gi < kGroup; ++gi) {
          const float4 a = *reinterpret_cast<const float4*>(q_s + gi * cols4 + 4 * c);
          d[gi][0] = fmaf(a.x, k4.x, d[gi][0]);
          d[gi][1] = fmaf(a.y, k4.y, d[gi][1]);
          d[gi][2] = fmaf(a.z, k4.z, d[gi][2]);
          d[gi][3] = fmaf(a.w, k4.w, d[gi][3]);
        }
      }
    }
    // The online softmax of this warp, per head (the tile has at least one key: finite max).
    float p[kGroup];
#pragma unroll
    for (int gi = 0; gi < kGroup; ++gi) {
      const float sc = valid ? ((d[gi][0] + d[gi][1]) + (d[gi][2] + d[gi][3])) * scale : -INFINITY;
      const float m_new = fmaxf(m[gi], warp_max(sc));
      p[gi] = valid ? expf(sc - m_new) : 0.0f;
      const float corr = expf(m[gi] - m_new);  // 0 on the warp's first tile (m = −inf)
      l[gi] = l[gi] * corr + warp_sum(p[gi]);
      m[gi] = m_new;
#pragma unroll
      for (int c = 0; c < 4 * kCols; ++c) acc[gi][c] *= corr;
    }
    // P·V: lane owns quads lane + 32 r of every head; the keys' V rows from the warp's slots.
#pragma unroll 4
    for (int kk = 0; kk < n_keys; ++kk) {
      const uint8_t* vr = v_rows[kk];
      const float vs = v_scale[kk];
      float pk[kGroup];
#pragma unroll
      for (int gi = 0; gi < kGroup; ++gi) pk[gi] = __shfl_sync(0xFFFFFFFFu, p[gi], kk);
#pragma unroll
      for (int r = 0; r < kCols; ++r) {
        const int c = lane + 32 * r;
        if (c < quads) {
          const float4 v4 = load_quad<D>(vr, 4 * c, hd, vs, vec);
#pragma unroll
          for (int gi = 0; gi < kGroup; ++gi) {
            acc[gi][4 * r + 0] = fmaf(pk[gi], v4.x, acc[gi][4 * r + 0]);
            acc[gi][4 * r + 1] = fmaf(pk[gi], v4.y, acc[gi][4 * r + 1]);
            acc[gi][4 * r + 2] = fmaf(pk[gi], v4.z, acc[gi][4 * r + 2]);
            acc[gi][4 * r + 3] = fmaf(pk[gi], v4.w, acc[gi][4 * r + 3]);
          }
        }
      }
    }
    __syncwarp();  // the slots are rewritten by the next tile
  }

  // The merge: every warp's (max, sum, acc) into shared memory; one thread per output element
  // weighs the warps by exp(m_w − M) (an empty warp, m_w = −inf, weighs nothing).
  if (lane == 0) {
#pragma unroll
    for (int gi = 0; gi < kGroup; ++gi) {
      m_w[warp * kGroup + gi] = m[gi];
      l_w[warp * kGroup + gi] = l[gi];
    }
  }
#pragma unroll
  for (int r = 0; r < kCols; ++r) {
    const int c = lane + 32 * r;
    if (c < quads) {
#pragma unroll
      for (int gi = 0; gi < kGroup; ++gi) {
        *reinterpret_cast<float4*>(acc_w + (warp * kGroup + gi) * cols4 + 4 * c) =
            make_float4(acc[gi][4 * r], acc[gi][4 * r + 1], acc[gi][4 * r + 2], acc[gi][4 * r + 3]);
      }
    }
  }
  __syncthreads();
  const int64_t row0 = int64_t(t) * n_head + h0;
  for (int i = tid; i < kGroup * cols4; i += kThreads) {
    const int gi = i / cols4, e = i - gi * cols4;
    if (gi >= n_g || e >= hd) continue;
    float M = -INFINITY;
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, m_w[w * kGroup + gi]);
    float sum = 0.0f, a = 0.0f;
    if (M != -INFINITY) {
      for (int w = 0; w < kWarps; ++w) {
        const float mw = m_w[w * kGroup + gi];
        const float wt = mw == -INFINITY ? 0.0f : expf(mw - M);
        sum = fmaf(l_w[w * kGroup + gi], wt, sum);
        a = fmaf(acc_w[(w * kGroup + gi) * cols4 + e], wt, a);
      }
    }
    if (n_split == 1) {
      out[(row0 + gi) * hd + e] = sum > 0.0f ? a / sum : 0.0f;
    } else {
      float* part = partials + ((row0 + gi) * n_split + s) * (hd + 2);
      part[2 + e] = a;
      if (e == 0) {
        part[0] = M;
        part[1] = sum;
      }
    }
  }
}

struct WideKernels {
  template <int D, int kCols>
  static auto fn() {
    return attention_decode_wide_kernel<D, kCols>;
  }
};

int& wide_flag() {
  static int on = [] {
    const char* e = std::getenv("IMP_CUDA_ATTN_WIDE");
    return e && e[0] == '1' && e[1] == '\0' ? 1 : 0;
  }();
  return on;
}

}  // namespace

bool attention_wide_enabled() { return wide_flag() != 0; }
void set_attention_wide(bool on) { wide_flag() = on ? 1 : 0; }
int attention_decode_keys_per_split() { return attention_wide_enabled() ? kWideKeys : kTile; }

void launch_attention_decode_wide(const float* q, int64_t n_tok, int64_t n_head, KvView kv, int window, float scale,
                                  int32_t n_split, float* partials, float* out, const StepParams* step,
                                  cudaStream_t stream, const L2Ranges& next_weights) {
  launch_decode_attention<WideKernels, WideSmem>(kThreads, kGroup, q, n_tok, n_head, kv, window, scale, n_split,
                                                 partials, out, step, stream, next_weights);
}

}  // namespace imp::cuda
