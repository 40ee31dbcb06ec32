// Prefill attention on the tensor cores (flash-attention style) over the paged device KV cache.
//
// Block (64-query tile, head h), 4 warps; warp w owns queries t0 + 16w … t0 + 16w + 15 as the
// 16 rows of mma.sync.m16n8k16 tiles (mma_f16.cuh). Per key tile (64 keys; 32 for head_dim
// > 128 so shared memory stays under 48 KB) the block decodes K rows into ks[key][dim] and V
// rows transposed into vt[dim][key], both f16, from any KV dtype through the device codecs
// (kv_codec.cuh) — f16 rows are copied as they are. Each warp computes S = Q·Kᵀ (f32
// accumulation), masks it (causal, sliding window), updates its online softmax (FP32 max and
// sum per row, exp2 with scale·log2 e folded into Q) and adds P·V with P rounded to f16.
// Rows of 8 padded elements: head_dim is padded to the template's HD (64, 128, 256) with
// zeros, so any even head_dim ≤ 256 runs. Precision: q, k, v and p are f16 (10-bit
// mantissa), scores and the output accumulate in FP32 — the reduced-precision mode's
// tolerance; the FP32 kernel in attention.cu stays the exact path.
#include <cmath>

#include "backends/cuda/check.h"
#include "backends/cuda/forward_kernels.h"
#include "backends/cuda/kv_codec.cuh"
#include "backends/cuda/mma_f16.cuh"

namespace imp::cuda {
namespace {

using mma::f16x2_sat;
using mma::mma_16816;

constexpr int kWarps = 4;
constexpr int kQueryTile = 16 * kWarps;

template <int HD>
struct PrefillTile {
  static constexpr int kKeys = HD > 128 ? 32 : 64;
  static constexpr int kKStride = HD + 8;     // halfs per ks row: +8 makes the B-fragment reads conflict-free
  static constexpr int kVStride = kKeys + 8;  // halfs per vt row, same reason
};

// Elements d0 … d0+7 of one cache row as four f16 pairs (zeros past head_dim).
__device__ inline void load_row8(const KvView& kv, const uint8_t* row, int d0, uint32_t (&h)[4]) {
  const int hd = kv.head_dim;
  if (kv.dtype == kvc::kF16 && (hd & 7) == 0) {  // rows are 16-byte aligned: copy the bits
    const uint4 v = *reinterpret_cast<const uint4*>(row + 2 * d0);
    h[0] = v.x, h[1] = v.y, h[2] = v.z, h[3] = v.w;
    return;
  }
  const float rs = kvc::row_scale(kv.dtype, row);
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const int d = d0 + 2 * e;  // head_dim is even: d < hd implies d + 1 < hd
    h[e] = d < hd ? f16x2_sat(kvc::decode_elem(kv.dtype, row, d, hd, rs), kvc::decode_elem(kv.dtype, row, d + 1, hd, rs))
                  : 0u;
  }
}

// f16 pair of q elements (d, d+1) of token t, times qscale; zero outside the tile / head.
__device__ inline uint32_t load_q2(const float* q, int t, int n_tok, int n_head, int h, int hd, int d, float qscale) {
  if (t >= n_tok || d >= hd) return 0u;
  const float2 v = *reinterpret_cast<const float2*>(q + (int64_t(t) * n_head + h) * hd + d);
  return f16x2_sat(v.x * qscale, v.y * qscale);
}

__device__ inline bool visible(int key, int pos, int window) {
  return key <= pos && (window <= 0 || key > pos - window);
}

template <int HD>
__global__ void __launch_bounds__(32 * kWarps) flash_prefill_kernel(const float* q, int n_tok, int n_head, KvView kv,
                                                                    int window, float qscale, float* out,
                                                                    const StepParams* step) {
  using Tile = PrefillTile<HD>;
  constexpr int KT = Tile::kKeys, KS = Tile::kKStride, VS = Tile::kVStride;
  __shared__ __align__(16) __half ks[KT * KS];
  __shared__ __align__(16) __half vt[HD * VS];

  const int t0 = blockIdx.x * kQueryTile, h = blockIdx.y;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c = lane & 3;
  const int hd = kv.head_dim, kvh = h / (n_head / kv.n_kv_head), pos0 = step->pos0;
  // Keys the block needs: up to its last query, from the first query's window start.
  const int k_hi = pos0 + min(t0 + kQueryTile, n_tok) - 1;
  const int k_lo = window > 0 ? max(0, pos0 + t0 + 1 - window) : 0;
  const int wt0 = t0 + 16 * warp;
  const int warp_hi = pos0 + min(wt0 + 15, n_tok - 1);  // < warp_lo when the warp has no queries
  const int warp_lo = window > 0 ? max(0, pos0 + wt0 + 1 - window) : 0;
  const int ta = wt0 + g, tb = ta + 8, pa = pos0 + ta, pb = pos0 + tb;

  uint32_t qa[HD / 16][4];
#pragma unroll
  for (int s = 0; s < HD / 16; ++s) {
    const int d = 16 * s + 2 * c;
    qa[s][0] = load_q2(q, ta, n_tok, n_head, h, hd, d, qscale);
    qa[s][1] = load_q2(q, tb, n_tok, n_head, h, hd, d, qscale);
    qa[s][2] = load_q2(q, ta, n_tok, n_head, h, hd, d + 8, qscale);
    qa[s][3] = load_q2(q, tb, n_tok, n_head, h, hd, d + 8, qscale);
  }
  float o[HD / 8][4];
#pragma unroll
  for (int i = 0; i < HD / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.0f, l_b = 0.0f;

  for (int kb = k_lo; kb <= k_hi; kb += KT) {
    __syncthreads();  // the previous tile is consumed
    for (int idx = threadIdx.x; idx < KT * (HD / 8); idx += 32 * kWarps) {
      const int j = idx / (HD / 8), d0 = (idx % (HD / 8)) * 8, key = kb + j;
      uint32_t kh[4] = {0u, 0u, 0u, 0u}, vh[4] = {0u, 0u, 0u, 0u};
      if (key <= k_hi && d0 < hd) {
        load_row8(kv, kvc::kv_row_ptr(kv.k_pool, kv.k_table, kv.block_tokens, kv.n_kv_head, kv.row_bytes, key, kvh),
                  d0, kh);
        load_row8(kv, kvc::kv_row_ptr(kv.v_pool, kv.v_table, kv.block_tokens, kv.n_kv_head, kv.row_bytes, key, kvh),
                  d0, vh);
      }
      *reinterpret_cast<uint4*>(&ks[j * KS + d0]) = make_uint4(kh[0], kh[1], kh[2], kh[3]);
      const __half* v8 = reinterpret_cast<const __half*>(vh);
#pragma unroll
      for (int e = 0; e < 8; ++e) vt[(d0 + e) * VS + j] = v8[e];
    }
    __syncthreads();
    if (kb > warp_hi || kb + KT - 1 < warp_lo) continue;  // every key of the tile is masked for this warp

    float s[KT / 8][4];
#pragma unroll
    for (int n = 0; n < KT / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < HD / 16; ++kk) {
#pragma unroll
      for (int n = 0; n < KT / 8; ++n) {
        const __half* kr = &ks[(8 * n + g) * KS + 16 * kk + 2 * c];
        mma_16816(s[n], qa[kk][0], qa[kk][1], qa[kk][2], qa[kk][3], *reinterpret_cast<const uint32_t*>(kr),
                  *reinterpret_cast<const uint32_t*>(kr + 8));
      }
    }
    float mx_a = m_a, mx_b = m_b;
#pragma unroll
    for (int n = 0; n < KT / 8; ++n) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int key = kb + 8 * n + 2 * c + e;
        if (!visible(key, pa, window)) s[n][e] = -INFINITY;
        if (!visible(key, pb, window)) s[n][2 + e] = -INFINITY;
        mx_a = fmaxf(mx_a, s[n][e]);
        mx_b = fmaxf(mx_b, s[n][2 + e]);
      }
    }
    // The quad (lanes 4g … 4g+3) holds one row: reduce its max across the four lanes.
    mx_a = fmaxf(mx_a, __shfl_xor_sync(0xFFFFFFFFu, mx_a, 1));
    mx_a = fmaxf(mx_a, __shfl_xor_sync(0xFFFFFFFFu, mx_a, 2));
    mx_b = fmaxf(mx_b, __shfl_xor_sync(0xFFFFFFFFu, mx_b, 1));
    mx_b = fmaxf(mx_b, __shfl_xor_sync(0xFFFFFFFFu, mx_b, 2));
    // A row with no visible key yet keeps max −inf: subtract 0 so exp2(−inf) = 0, not NaN.
    const float base_a = mx_a == -INFINITY ? 0.0f : mx_a, base_b = mx_b == -INFINITY ? 0.0f : mx_b;
    const float corr_a = exp2f(m_a - base_a), corr_b = exp2f(m_b - base_b);
    m_a = mx_a;
    m_b = mx_b;
    l_a *= corr_a;
    l_b *= corr_b;
#pragma unroll
    for (int n = 0; n < KT / 8; ++n) {
      s[n][0] = exp2f(s[n][0] - base_a);
      s[n][1] = exp2f(s[n][1] - base_a);
      s[n][2] = exp2f(s[n][2] - base_b);
      s[n][3] = exp2f(s[n][3] - base_b);
      l_a += s[n][0] + s[n][1];
      l_b += s[n][2] + s[n][3];
    }
#pragma unroll
    for (int i = 0; i < HD / 8; ++i) {
      o[i][0] *= corr_a;
      o[i][1] *= corr_a;
      o[i][2] *= corr_b;
      o[i][3] *= corr_b;
    }
    // P (16 × KT) as A fragments: the accumulators of key tiles 2kk and 2kk+1 are exactly
    // the A registers of k-step kk.
#pragma unroll
    for (int kk = 0; kk < KT / 16; ++kk) {
      const uint32_t a0 = f16x2_sat(s[2 * kk][0], s[2 * kk][1]), a1 = f16x2_sat(s[2 * kk][2], s[2 * kk][3]);
      const uint32_t a2 = f16x2_sat(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                     a3 = f16x2_sat(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
      for (int i = 0; i < HD / 8; ++i) {
        const __half* vr = &vt[(8 * i + g) * VS + 16 * kk + 2 * c];
        mma_16816(o[i], a0, a1, a2, a3, *reinterpret_cast<const uint32_t*>(vr),
                  *reinterpret_cast<const uint32_t*>(vr + 8));
      }
    }
  }

  l_a += __shfl_xor_sync(0xFFFFFFFFu, l_a, 1);
  l_a += __shfl_xor_sync(0xFFFFFFFFu, l_a, 2);
  l_b += __shfl_xor_sync(0xFFFFFFFFu, l_b, 1);
  l_b += __shfl_xor_sync(0xFFFFFFFFu, l_b, 2);
  const float inv_a = l_a > 0.0f ? 1.0f / l_a : 0.0f, inv_b = l_b > 0.0f ? 1.0f / l_b : 0.0f;
#pragma unroll
  for (int i = 0; i < HD / 8; ++i) {
    const int d = 8 * i + 2 * c;
    if (d >= hd) continue;
    if (ta < n_tok) {
      *reinterpret_cast<float2*>(out + (int64_t(ta) * n_head + h) * hd + d) = make_float2(o[i][0] * inv_a, o[i][1] * inv_a);
    }
    if (tb < n_tok) {
      *reinterpret_cast<float2*>(out + (int64_t(tb) * n_head + h) * hd + d) = make_float2(o[i][2] * inv_b, o[i][3] * inv_b);
    }
  }
}

template <int HD>
void launch(const float* q, int64_t n_tok, int64_t n_head, const KvView& kv, int window, float qscale, float* out,
            const StepParams* step, cudaStream_t stream) {
  const dim3 grid(unsigned((n_tok + kQueryTile - 1) / kQueryTile), unsigned(n_head));
  flash_prefill_kernel<HD><<<grid, 32 * kWarps, 0, stream>>>(q, int(n_tok), int(n_head), kv, window, qscale, out, step);
  IMP_CUDA_CHECK_LAUNCH();
}

}  // namespace

bool attention_prefill_mma(const float* q, int64_t n_tok, int64_t n_head, KvView kv, int64_t window, float scale,
                           float* out, const StepParams* step, cudaStream_t stream) {
  const int hd = kv.head_dim;
  if (hd <= 0 || hd > 256 || hd % 2 != 0) return false;
  if (kv.n_kv_head <= 0 || n_head <= 0 || n_head % kv.n_kv_head != 0) {
    ::imp::fail("CUDA attention_prefill: n_head {} is not a multiple of n_kv_head {}", n_head, kv.n_kv_head);
  }
  if (!kv_dtype_supported_on_device(kv.dtype)) {
    ::imp::fail("CUDA attention_prefill: KV type {} has no device decoder", kv.dtype);
  }
  if (n_tok <= 0 || n_tok > 0x7FFFFFFF - kQueryTile || n_head > 65535) {
    ::imp::fail("CUDA attention_prefill: {} tokens × {} heads is out of range", n_tok, n_head);
  }
  const int w = window > 0 && window < 0x7FFFFFFF ? int(window) : 0;
  const float sc = scale > 0.0f ? scale : 1.0f / std::sqrt(float(hd));
  const float qscale = sc * 1.4426950408889634f;  // log2(e): the softmax runs on exp2
  if (hd <= 64) {
    launch<64>(q, n_tok, n_head, kv, w, qscale, out, step, stream);
  } else if (hd <= 128) {
    launch<128>(q, n_tok, n_head, kv, w, qscale, out, step, stream);
  } else {
    launch<256>(q, n_tok, n_head, kv, w, qscale, out, step, stream);
  }
  return true;
}

}  // namespace imp::cuda
