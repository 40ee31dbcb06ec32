// Prefill attention on the tensor cores (flash-attention style) over the paged device KV cache.
//
// Block (64-query tile, head h), 4 warps; warp w owns queries t0 + 16w … t0 + 16w + 15 as the
// 16 rows of mma.sync.m16n8k16 tiles (mma_f16.cuh). Key tiles of 64 keys (32 for head_dim
// > 128) go through a two-stage shared-memory ring: while the warps multiply tile i, tile
// i + 1 is in flight — f16 rows as cp.async copies straight from the cache, other KV dtypes
// decoded through registers by the device codecs (kv_codec.cuh). K and V both sit as
// [key][dim] rows of HD + 8 halfs (the pad makes the ldmatrix row reads conflict-free); the
// B fragments of S = Q·Kᵀ come from ldmatrix, those of P·V from ldmatrix.trans (the layout
// before, V transposed by scalar shared stores, was a 16-way bank conflict on every
// element). Each warp masks S only on tiles that cross its diagonal or window edge, keeps an
// FP32 online softmax (max and sum per row, exp2 with scale·log2 e folded into Q) and adds
// P·V with P rounded to f16. The heaviest query tiles (the last ones, causal) are scheduled
// first. head_dim is padded to the template's HD (64, 128, 256) with zeros, so any even
// head_dim ≤ 256 runs. Precision: q, k, v and p are f16 (10-bit mantissa), scores and the
// output accumulate in FP32 — the reduced-precision mode's tolerance; the FP32 kernel in
// attention.cu stays the exact path. The output is F32, or BF16 (the O projection GEMM's
// activation type: the same rounding f32_to_bf16 would apply to the F32 output).
#include <cmath>

#include "backends/cuda/check.h"
#include "backends/cuda/cp_async.cuh"
#include "backends/cuda/forward_kernels.h"
#include "backends/cuda/kv_codec.cuh"
#include "backends/cuda/mma_f16.cuh"
#include "backends/cuda/pdl.cuh"

namespace imp::cuda {
namespace {

using mma::f16x2_sat;
using mma::ldsm_x4;
using mma::ldsm_x4_trans;
using mma::mma_16816;

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kQueryTile = 16 * kWarps;

template <int HD>
struct PrefillTile {
  static constexpr int kKeys = HD > 128 ? 32 : 64;
  static constexpr int kStride = HD + 8;                     // halfs per K or V row in shared memory
  static constexpr int kStageHalfs = 2 * kKeys * kStride;    // one stage: K rows, then V rows
  static constexpr size_t kSmemBytes = 2 * kStageHalfs * 2;  // two stages of f16: 36, 68, 66 KB
};

// Elements d0 … d0+7 of one cache row as four f16 pairs (zeros past head_dim), decoded.
__device__ inline uint4 decode_row8(const KvView& kv, const uint8_t* row, int d0) {
  const int hd = kv.head_dim;
  const float rs = kvc::row_scale(kv.dtype, row);
  uint32_t h[4];
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const int d = d0 + 2 * e;  // head_dim is even: d < hd implies d + 1 < hd
    h[e] = d < hd ? f16x2_sat(kvc::decode_elem(kv.dtype, row, d, hd, rs), kvc::decode_elem(kv.dtype, row, d + 1, hd, rs))
                  : 0u;
  }
  return make_uint4(h[0], h[1], h[2], h[3]);
}

// Keys kb … kb + KT − 1 of kv head kvh into one stage (ks: K rows, vs: V rows); keys past
// k_hi and dims past head_dim are zeros (a zero V row keeps 0·garbage out of P·V). f16 rows
// (head_dim % 8 == 0: 16-byte aligned) are cp.async copies the caller commits; the rest is
// decoded and stored now.
template <int HD>
__device__ inline void load_tile(const KvView& kv, bool f16_rows, int kb, int k_hi, int kvh, __half* ks, __half* vs) {
  constexpr int KT = PrefillTile<HD>::kKeys, S = PrefillTile<HD>::kStride, CH = HD / 8;
  for (int idx = threadIdx.x; idx < KT * CH; idx += kThreads) {
    const int j = idx / CH, d0 = (idx % CH) * 8, key = kb + j;
    __half* kd = ks + j * S + d0;
    __half* vd = vs + j * S + d0;
    if (key > k_hi || d0 >= kv.head_dim) {
      *reinterpret_cast<uint4*>(kd) = make_uint4(0u, 0u, 0u, 0u);
      *reinterpret_cast<uint4*>(vd) = make_uint4(0u, 0u, 0u, 0u);
      continue;
    }
    const uint8_t* kr = kvc::kv_row_ptr(kv.k_pool, kv.k_table, kv.block_tokens, kv.n_kv_head, kv.row_bytes, key, kvh);
    const uint8_t* vr = kvc::kv_row_ptr(kv.v_pool, kv.v_table, kv.block_tokens, kv.n_kv_head, kv.row_bytes, key, kvh);
    if (f16_rows) {
      cp_async16(kd, kr + 2 * d0);
      cp_async16(vd, vr + 2 * d0);
    } else {
      *reinterpret_cast<uint4*>(kd) = decode_row8(kv, kr, d0);
      *reinterpret_cast<uint4*>(vd) = decode_row8(kv, vr, d0);
    }
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

// Columns (at, at + 1), at even: F32, BF16, or (f16_mma) the f16 pair at its kMma position —
// columns 4k, 4k+1 of a 16-column chunk at 2k, 2k+1 and 4k+2, 4k+3 at 8+2k, 9+2k.
template <bool kF16Mma>
__device__ inline void store2(float* out, uint16_t* out_bf16, int64_t at, float lo, float hi) {
  if (kF16Mma) {
    const int c = int(at & 15);
    *reinterpret_cast<uint32_t*>(out_bf16 + (at - c) + ((c & 2) ? 8 : 0) + 2 * (c >> 2)) = mma::f16x2_sat(lo, hi);
  } else if (out_bf16) {
    *reinterpret_cast<uint32_t*>(out_bf16 + at) = uint32_t(kvc::f32_to_bf16(lo)) | (uint32_t(kvc::f32_to_bf16(hi)) << 16);
  } else {
    *reinterpret_cast<float2*>(out + at) = make_float2(lo, hi);
  }
}

// grid (n_head, query tiles), the last query tile first; dynamic smem PrefillTile<HD>::kSmemBytes.
// kF16Mma: out_bf16 gets the f16 kMma columns (a template parameter: as a run-time flag it
// made ptxas spill the 128-dimension kernel).
template <int HD, bool kF16Mma>
__global__ void __launch_bounds__(kThreads) flash_prefill_kernel(const float* q, int n_tok, int n_head, KvView kv,
                                                                 int window, float qscale, float* out,
                                                                 uint16_t* out_bf16, const StepParams* step) {
  using Tile = PrefillTile<HD>;
  constexpr int KT = Tile::kKeys, S = Tile::kStride;
  extern __shared__ __align__(16) __half smem[];
  pdl_wait();  // q and the cache rows come from the kernels before (launch_pdl)
  pdl_trigger();

  const int t0 = int(gridDim.y - 1 - blockIdx.y) * kQueryTile, h = blockIdx.x;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c = lane & 3;
  const int hd = kv.head_dim, kvh = h / (n_head / kv.n_kv_head), pos0 = step->pos0;
  const bool f16_rows = kv.dtype == kvc::kF16 && (hd & 7) == 0;
  // Keys the block needs: up to its last query, from the first query's window start.
  const int k_hi = pos0 + min(t0 + kQueryTile, n_tok) - 1;
  const int k_lo = window > 0 ? max(0, pos0 + t0 + 1 - window) : 0;
  const int wt0 = t0 + 16 * warp;
  const int warp_hi = pos0 + min(wt0 + 15, n_tok - 1);  // < warp_lo when the warp has no queries
  const int warp_lo = window > 0 ? max(0, pos0 + wt0 + 1 - window) : 0;
  const int ta = wt0 + g, tb = ta + 8, pa = pos0 + ta, pb = pos0 + tb;
  // ldmatrix row addresses: lane → (matrix lane / 8, row lane % 8).
  const int lm = lane >> 3, lr = lane & 7;

  load_tile<HD>(kv, f16_rows, k_lo, k_hi, kvh, smem, smem + KT * S);
  cp_async_commit();

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

  int stage = 0;
  for (int kb = k_lo; kb <= k_hi; kb += KT, stage ^= 1) {
    // Stage stage ^ 1 was consumed in the previous iteration (barrier at its end): refill it.
    if (kb + KT <= k_hi) {
      __half* next = smem + (stage ^ 1) * Tile::kStageHalfs;
      load_tile<HD>(kv, f16_rows, kb + KT, k_hi, kvh, next, next + KT * S);
    }
    cp_async_commit();
    cp_async_wait<1>();  // this thread's copies of tile kb have landed
    __syncthreads();     // … and everyone else's
    const __half* ks = smem + stage * Tile::kStageHalfs;
    const __half* vs = ks + KT * S;
    if (kb <= warp_hi && kb + KT - 1 >= warp_lo) {  // else every key of the tile is masked for this warp
      float s[KT / 8][4];
#pragma unroll
      for (int n = 0; n < KT / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < HD / 16; ++kk) {
#pragma unroll
        for (int n = 0; n < KT / 8; n += 2) {
          // matrices: keys 8n…8n+7 dims 16kk…+7, +8…+15; keys 8(n+1)… likewise → b0, b1 of n, n+1
          uint32_t b[4];
          ldsm_x4(b, ks + (8 * (n + (lm >> 1)) + lr) * S + 16 * kk + 8 * (lm & 1));
          mma_16816(s[n], qa[kk][0], qa[kk][1], qa[kk][2], qa[kk][3], b[0], b[1]);
          mma_16816(s[n + 1], qa[kk][0], qa[kk][1], qa[kk][2], qa[kk][3], b[2], b[3]);
        }
      }
      float mx_a = m_a, mx_b = m_b;
      const bool masked = kb + KT - 1 > pos0 + wt0 || (window > 0 && kb + window <= pos0 + wt0 + 15);
#pragma unroll
      for (int n = 0; n < KT / 8; ++n) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          if (masked) {
            const int key = kb + 8 * n + 2 * c + e;
            if (!visible(key, pa, window)) s[n][e] = -INFINITY;
            if (!visible(key, pb, window)) s[n][2 + e] = -INFINITY;
          }
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
        for (int i = 0; i < HD / 8; i += 2) {
          // matrices: keys 16kk…+7, +8…+15 at dims 8i…8i+7, then dims 8(i+1)…: b0, b1 of i, i+1
          uint32_t b[4];
          ldsm_x4_trans(b, vs + (16 * kk + 8 * (lm & 1) + lr) * S + 8 * (i + (lm >> 1)));
          mma_16816(o[i], a0, a1, a2, a3, b[0], b[1]);
          mma_16816(o[i + 1], a0, a1, a2, a3, b[2], b[3]);
        }
      }
    }
    __syncthreads();  // every warp is done with this stage before it is refilled
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
    if (ta < n_tok) store2<kF16Mma>(out, out_bf16, (int64_t(ta) * n_head + h) * hd + d, o[i][0] * inv_a, o[i][1] * inv_a);
    if (tb < n_tok) store2<kF16Mma>(out, out_bf16, (int64_t(tb) * n_head + h) * hd + d, o[i][2] * inv_b, o[i][3] * inv_b);
  }
}

template <int HD, bool kF16Mma>
void launch_as(const float* q, int64_t n_tok, int64_t n_head, const KvView& kv, int window, float qscale, float* out,
               uint16_t* out_bf16, const StepParams* step, cudaStream_t stream) {
  constexpr size_t smem = PrefillTile<HD>::kSmemBytes;
  auto* kernel = flash_prefill_kernel<HD, kF16Mma>;
  // Above the 48 KB default: opt in (per device, so on every launch; a prefill has one per layer).
  IMP_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const dim3 grid(unsigned(n_head), unsigned((n_tok + kQueryTile - 1) / kQueryTile));
  launch_pdl(kernel, grid, dim3(kThreads), smem, stream, q, int(n_tok), int(n_head), kv, window, qscale, out, out_bf16,
             step);
  IMP_CUDA_CHECK_LAUNCH();
}
template <int HD>
void launch(const float* q, int64_t n_tok, int64_t n_head, const KvView& kv, int window, float qscale, float* out,
            uint16_t* out_bf16, bool f16_mma, const StepParams* step, cudaStream_t stream) {
  if constexpr (HD >= 128) {  // attention_prefill_writes_f16_mma
    if (f16_mma) return launch_as<HD, true>(q, n_tok, n_head, kv, window, qscale, out, out_bf16, step, stream);
  }
  launch_as<HD, false>(q, n_tok, n_head, kv, window, qscale, out, out_bf16, step, stream);
}

}  // namespace

// Not the 64-dimension kernel: its f16 kMma form spilled (~100 local loads and stores before
// the last HMMA, ptxas at its 128-register cap), the BF16 one does not.
bool attention_prefill_writes_f16_mma(int64_t head_dim) { return head_dim > 64 && head_dim <= 256; }

bool attention_prefill_mma(const float* q, int64_t n_tok, int64_t n_head, KvView kv, int64_t window, float scale,
                           float* out, uint16_t* out_bf16, const StepParams* step, cudaStream_t stream,
                           bool out16_f16_mma) {
  const int hd = kv.head_dim;
  if (hd <= 0 || hd > 256 || hd % 2 != 0) return false;
  if (out16_f16_mma && (!out_bf16 || hd % 16 != 0 || !attention_prefill_writes_f16_mma(hd))) {
    ::imp::fail("CUDA attention_prefill: no f16 kMma output for head_dim {} (multiples of 16 above 64)", hd);
  }
  const bool f16_mma = out16_f16_mma;
  if ((out == nullptr) == (out_bf16 == nullptr)) ::imp::fail("CUDA attention_prefill: give exactly one of the F32 and BF16 outputs");
  if (kv.n_kv_head <= 0 || n_head <= 0 || n_head % kv.n_kv_head != 0) {
    ::imp::fail("CUDA attention_prefill: n_head {} is not a multiple of n_kv_head {}", n_head, kv.n_kv_head);
  }
  if (!kv_dtype_supported_on_device(kv.dtype)) {
    ::imp::fail("CUDA attention_prefill: KV type {} has no device decoder", kv.dtype);
  }
  // Query tiles run on grid.y (at most 65535 of them), heads on grid.x.
  if (n_tok <= 0 || n_tok > int64_t(65535) * kQueryTile || n_head > 0x7FFFFFFF) {
    ::imp::fail("CUDA attention_prefill: {} tokens × {} heads is out of range", n_tok, n_head);
  }
  const int w = window > 0 && window < 0x7FFFFFFF ? int(window) : 0;
  const float sc = scale > 0.0f ? scale : 1.0f / std::sqrt(float(hd));
  const float qscale = sc * 1.4426950408889634f;  // log2(e): the softmax runs on exp2
  if (hd <= 64) {
    launch<64>(q, n_tok, n_head, kv, w, qscale, out, out_bf16, f16_mma, step, stream);
  } else if (hd <= 128) {
    launch<128>(q, n_tok, n_head, kv, w, qscale, out, out_bf16, f16_mma, step, stream);
  } else {
    launch<256>(q, n_tok, n_head, kv, w, qscale, out, out_bf16, f16_mma, step, stream);
  }
  return true;
}

}  // namespace imp::cuda
