// Device pieces shared by the tensor-core decode GEMV kernels (gemv_mma.cu: register-x and
// shared-x; gemv_mma_bulk.cu: bulk-copy): the per-unit work item and its MMAs, the tile's
// row map (QKV parts, SwiGLU pairs, half-split RoPE pairs), the x → f16 prologue with the
// optional RMSNorm, and the tile epilogue (SwiGLU, RoPE + KV write, or y). Keeping one copy
// keeps the kernels bit-identical to each other: each row's sum is the same per-warp walk
// over the same units, reduced over warps in warp order.
// Internal header of gemv_mma.cu and gemv_mma_bulk.cu.
#pragma once

#include "backends/cuda/gemv_kernel.cuh"
#include "backends/cuda/gemv_mma_job.h"
#include "backends/cuda/gemv_mma_layout.h"
#include "backends/cuda/gemv_mma_ops.cuh"
#include "backends/cuda/kv_codec.cuh"
#include "backends/cuda/rope.cuh"

namespace imp::cuda::detail {
namespace {

// One item = one unit of the thread's 2·kTiles rows: a 16-byte payload load (Q6_K: and an
// 8-byte one from the high-bit plane) and a scale load per row.
template <class Op, int kRows>
struct Item {
  typename SliceOf<Op>::type q[kRows];
  typename Op::ScaleSlot s[kRows];
};

// hi_off: bytes from a thread's payload pointer (row + 16c) to its high-bit slice of unit 0
// (row + cols/2 + 4·kHiBits·c; Q5_K and Q6_K, gemv_mma_layout.h).
template <class Op>
__device__ __forceinline__ int64_t hi_slice_offset(int64_t cols, int c) {
  return mma_layout::hi_plane(cols) + (4 * kHiBits<Op> - 16) * c;
}

template <class Op>
__device__ __forceinline__ typename SliceOf<Op>::type load_slice(const uint8_t* p, int64_t hi_off, int u) {
  const uint4 lo = load_stream16(p + int64_t(u) * mma_layout::kUnitBytes);
  if constexpr (kHiBits<Op> == 2) {
    const uint2 h = __ldcs(reinterpret_cast<const uint2*>(p + hi_off + int64_t(u) * 32));
    return {lo, {h.x, h.y}};
  } else if constexpr (kHiBits<Op> == 1) {
    return {lo, {__ldcs(reinterpret_cast<const unsigned int*>(p + hi_off + int64_t(u) * 16))}};
  } else {
    return lo;
  }
}

template <class Op, int kRows>
__device__ __forceinline__ void load_item(Item<Op, kRows>& it, const uint8_t* const (&pq)[kRows],
                                          const uint8_t* const (&ps)[kRows], int u, int64_t hi_off) {
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    it.q[r] = load_slice<Op>(pq[r], hi_off, u);
    if constexpr (Op::kScaleBytes > 0) {
      it.s[r] = __ldg(reinterpret_cast<const typename Op::ScaleSlot*>(ps[r] + Op::scale_offset(u)));
    } else {
      it.s[r] = {};
    }
  }
}


// x is staged as f16 in shared memory (cols · 2 bytes) by the shared-x and bulk kernels.
constexpr int kSxMaxCols = 32768;  // 64 KiB of shared memory

// The x fragments of scale group grp (f16 x in shared memory, xq = the unit's columns).
template <class Op>
__device__ __forceinline__ void load_x_group(const uint2* xq, int c, int grp, uint32_t (&b)[Op::kGroupChunks][2]) {
#pragma unroll
  for (int j2 = 0; j2 < Op::kGroupChunks; ++j2) {
    const uint2 v = xq[Op::x_col(c, grp * Op::kGroupChunks + j2) / 4];
    b[j2][0] = v.x, b[j2][1] = v.y;
  }
}

// dd = A · x over scale group grp for tile t of the item (rows g and g + 8 of the tile in
// dd[0] and dd[2]), from a zero accumulator.
template <class Op, int kTiles>
__device__ __forceinline__ void group_dot(const Item<Op, 2 * kTiles>& it, int t, int grp,
                                          const uint32_t (&b)[Op::kGroupChunks][2], float (&dd)[4]) {
  constexpr int G = Op::kGroupChunks;
  uint32_t lo[G][2], hi[G][2];
  Op::decode_group(it.q[2 * t], grp, lo);
  Op::decode_group(it.q[2 * t + 1], grp, hi);
  dd[0] = dd[1] = dd[2] = dd[3] = 0.0f;
#pragma unroll
  for (int j2 = 0; j2 < G; ++j2) mma_16816(dd, lo[j2][0], hi[j2][0], lo[j2][1], hi[j2][1], b[j2][0], b[j2][1]);
}

template <class Op, int kTiles>
__device__ __forceinline__ void mma_item_sx(const Item<Op, 2 * kTiles>& it, const uint2* xq, int c, int half,
                                            float (&acc)[2 * kTiles]) {
  constexpr int kGroups = Op::kChunks / Op::kGroupChunks, G = Op::kGroupChunks, kRows = 2 * kTiles;
  if constexpr (Op::kMins) {
    float sc[kRows][kGroups], m[kRows][kGroups], d[kRows], dmin[kRows], q[kRows], mx[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) Op::scales_mins(it.s[r], half, sc[r], m[r], d[r], dmin[r]), q[r] = mx[r] = 0.0f;
#pragma unroll
    for (int grp = 0; grp < kGroups; ++grp) {
      uint32_t b[G][2];
      load_x_group<Op>(xq, c, grp, b);
      float xs[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      constexpr uint32_t kOnes = 0x3C003C00u;  // Σ x of the sub-block: an MMA with A = 1
#pragma unroll
      for (int j2 = 0; j2 < G; ++j2) mma_16816(xs, kOnes, kOnes, kOnes, kOnes, b[j2][0], b[j2][1]);
#pragma unroll
      for (int t = 0; t < kTiles; ++t) {
        float dd[4];
        group_dot<Op, kTiles>(it, t, grp, b, dd);
        q[2 * t] = fmaf(sc[2 * t][grp], dd[0], q[2 * t]);
        q[2 * t + 1] = fmaf(sc[2 * t + 1][grp], dd[2], q[2 * t + 1]);
        mx[2 * t] = fmaf(m[2 * t][grp], xs[0], mx[2 * t]);
        mx[2 * t + 1] = fmaf(m[2 * t + 1][grp], xs[0], mx[2 * t + 1]);
      }
    }
#pragma unroll
    for (int r = 0; r < kRows; ++r) acc[r] += fmaf(d[r], q[r], -dmin[r] * mx[r]);
  } else {
    float s[kRows][kGroups];
#pragma unroll
    for (int r = 0; r < kRows; ++r) Op::scales(it.s[r], s[r]);
#pragma unroll
    for (int grp = 0; grp < kGroups; ++grp) {
      uint32_t b[G][2];
      load_x_group<Op>(xq, c, grp, b);
#pragma unroll
      for (int t = 0; t < kTiles; ++t) {
        float dd[4];
        group_dot<Op, kTiles>(it, t, grp, b, dd);
        acc[2 * t] = fmaf(s[2 * t][grp], dd[0], acc[2 * t]);
        acc[2 * t + 1] = fmaf(s[2 * t + 1][grp], dd[2], acc[2 * t + 1]);
      }
    }
  }
}


// Half-split RoPE: slot s of 16-row tile T of a part holds row i (s < 8) or its partner
// i + hd/2 (s ≥ 8), i = (T mod hd/16)·8 + s mod 8 of head T / (hd/16).
__device__ __forceinline__ int64_t rope_pair_row(int64_t tile, int s, int hd) {
  const int64_t tiles_per_head = hd / 16, head = tile / tiles_per_head;
  const int t = int(tile % tiles_per_head);
  return head * hd + (s < 8 ? t * 8 + s : hd / 2 + t * 8 + (s - 8));
}

// The epilogue of gemv_mma_qkv_rope_kv for one pair of rows (ra, rb) of part p, which plays
// role p + job.role0 (0 Q, 1 K, 2 V): RoPE (rope_rotate, as rope_kv_kernel) on Q and K, then
// y, and for K and V the cache elements of the token's row.
__device__ __forceinline__ void rope_kv_pair(const MmaJob& job, const KernelArgs& a, int part, int64_t ra, int64_t rb,
                                             float ya, float yb) {
  const int p = part + job.role0;
  const int hd = job.kv.head_dim, pos = job.step->pos0;
  if (p < 2) rope_rotate(ya, yb, job.rope.half_split ? int(ra % hd) : int(ra % hd) / 2, hd, pos, job.rope);
  a.y[ra] = ya;
  a.y[rb] = yb;
  if (p == 0) return;
  const KvView& kv = job.kv;
  uint8_t* row = kvc::kv_row_ptr(p == 1 ? kv.k_pool : kv.v_pool, p == 1 ? kv.k_table : kv.v_table, kv.block_tokens,
                                 kv.n_kv_head, kv.row_bytes, pos, int(ra / hd));
  // f32 / f16 / bf16 only (the host refuses the scaled types: a row scale needs the whole row).
  kvc::store_plain_elem(kv.dtype, row, int(ra % hd), ya);
  kvc::store_plain_elem(kv.dtype, row, int(rb % hd), yb);
}


// The arguments of part p (selected, not indexed: a dynamic index into the parameter
// block would copy it to local memory).
__device__ __forceinline__ KernelArgs part_args(const MmaJob& job, int p) {
  return p == 0 ? job.part[0] : p == 1 ? job.part[1] : job.part[2];
}
// The part that tile t belongs to (job.first_block ranges).
__device__ __forceinline__ int tile_part(const MmaJob& job, int64_t t) {
  int p = 0;
  while (p + 1 < job.n_parts && t >= job.first_block[p + 1]) ++p;
  return p;
}
__device__ __forceinline__ int64_t part_first(const MmaJob& job, int p) {
  return p == 0 ? job.first_block[0] : p == 1 ? job.first_block[1] : job.first_block[2];
}

// Whether the tiles of part p hold half-split RoPE pairs (rope_pair_row): Q and K of
// gemv_mma_qkv_rope_kv with the (i, i + hd/2) pairing, one-tile form only.
template <int kTiles>
__device__ __forceinline__ bool pairs_rope_rows(const MmaJob& job, int p) {
  return kTiles == 1 && job.rope_kv && job.rope.half_split && p + job.role0 < 2;
}

// Matrix row of tile slot s (0 … 16·kTiles − 1; slot g + 8r is row r of thread g's item),
// clamped to the last row (a ragged last tile re-reads it and drops the result). SwiGLU:
// slots 0–15 are gate rows row0 + s, 16–31 up rows row0 + s − 16 (*ar set to that part).
template <bool kSwiglu>
__device__ __forceinline__ int64_t tile_row(const MmaJob& job, const KernelArgs& a, int64_t row0, int s, bool pair_rows,
                                            const KernelArgs*& ar) {
  ar = kSwiglu ? (s < 16 ? &job.part[0] : &job.part[1]) : &a;
  const int slot = kSwiglu ? s % 16 : s;
  const int64_t mapped = pair_rows ? rope_pair_row(row0 / 16, slot, job.kv.head_dim) : row0 + slot;
  return min(mapped, ar->rows - 1);
}

// x → f16 in shared memory (x16[i] = columns 4i … 4i+3) by kThreads threads (tid < kThreads);
// with job.norm_gain, x is first scaled by 1/sqrt(mean(x²) + eps) and the gain
// (rmsnorm_kernel's formula). warp_ss: kThreads / 32 floats of shared memory; sync() is a
// barrier of the kThreads threads. Ends with sync().
template <int kThreads, class Sync>
__device__ __forceinline__ void stage_x_f16(const MmaJob& job, const KernelArgs& a, uint2* x16, float* warp_ss, int tid,
                                            Sync sync) {
  constexpr int kWarps = kThreads / 32;
  const int cols4 = int(a.cols / 4);
  const float4* x4 = reinterpret_cast<const float4*>(a.x);
  float norm_scale = 1.0f;
  if (job.norm_gain) {
    float ss = 0.0f;
    for (int i = tid; i < cols4; i += kThreads) {
      const float4 v = __ldg(x4 + i);
      ss = fmaf(v.x, v.x, fmaf(v.y, v.y, fmaf(v.z, v.z, fmaf(v.w, v.w, ss))));
    }
    ss = warp_sum(ss);
    if ((tid & 31) == 0) warp_ss[tid >> 5] = ss;
    sync();
    float total = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) total += warp_ss[w];
    norm_scale = 1.0f / sqrtf(total / float(a.cols) + job.norm_eps);
  }
  for (int i = tid; i < cols4; i += kThreads) {
    float4 v = __ldg(x4 + i);
    if (job.norm_gain) {
      const float4 gn = __ldg(reinterpret_cast<const float4*>(job.norm_gain) + i);
      v = make_float4(v.x * norm_scale * gn.x, v.y * norm_scale * gn.y, v.z * norm_scale * gn.z, v.w * norm_scale * gn.w);
    }
    x16[i] = make_uint2(f16x2_sat(v.x, v.y), f16x2_sat(v.z, v.w));
  }
  sync();
}

// The end of one tile: the kWarps partial sums of each slot (partial[w][s], written by the
// c = 0 lanes and made visible by the caller's barrier) added in warp order and written —
// silu(gate)·up for SwiGLU, RoPE + the KV-cache write for gemv_mma_qkv_rope_kv, else y.
// Threads tid < 16·kTiles take part.
template <class Op, int kTiles, bool kSwiglu, int kWarps>
__device__ __forceinline__ void finish_tile(const MmaJob& job, const KernelArgs& a, int p, int64_t row0, bool pair_rows,
                                            const float (*partial)[16 * kTiles], int tid) {
  constexpr int kTileRows = 16 * kTiles;
  if constexpr (kSwiglu) {
    if (tid < 16 && row0 + tid < a.rows) {
      float gs = 0.0f, us = 0.0f;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) gs += partial[w][tid], us += partial[w][16 + tid];
      const float gv = Op::finish(job.part[0], gs), uv = Op::finish(job.part[1], us);
      job.swiglu_out[row0 + tid] = gv / (1.0f + expf(-gv)) * uv;  // as swiglu_kernel
    }
  } else if (kTiles == 1 && job.rope_kv) {
    // Eight RoPE pairs per tile: slots (2j, 2j+1) for adjacent pairs, (j, j+8) for half-split.
    if (tid < 8) {
      const bool hs = job.rope.half_split != 0;
      const int sa = hs ? tid : 2 * tid, sb = hs ? tid + 8 : 2 * tid + 1;
      float ya = 0.0f, yb = 0.0f;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) ya += partial[w][sa], yb += partial[w][sb];
      const int64_t ra = pair_rows ? rope_pair_row(row0 / 16, sa, job.kv.head_dim) : row0 + sa;
      const int64_t rb = pair_rows ? rope_pair_row(row0 / 16, sb, job.kv.head_dim) : row0 + sb;
      if (ra < a.rows && rb < a.rows) rope_kv_pair(job, a, p, ra, rb, Op::finish(a, ya), Op::finish(a, yb));
    }
  } else {
    if (tid < kTileRows && row0 + tid < a.rows) {
      float sum = 0.0f;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) sum += partial[w][tid];
      store_y(a, row0 + tid, Op::finish(a, sum));
    }
  }
}

}  // namespace
}  // namespace imp::cuda::detail
