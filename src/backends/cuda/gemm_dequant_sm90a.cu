// The fused-dequantization prefill GEMM (gemm_dequant.h) on wgmma. Built for sm_90a only
// (cmake/Cuda.cmake: *_sm90a.cu files).
//
// CTA: 256 threads = two consumer warpgroups; tile = 128 weight rows (warpgroup i: rows
// 64i … 64i+63) × BN = 128 or 256 tokens. The K loop walks the kMma units (128 columns for
// the 4-bit formats, 64 for Q8_0) through a shared-memory ring of 4 stages (BN = 128) or 3
// (BN = 256) filled by cp.async stages − 1 units ahead; a stage holds
//   x: BN tokens × the unit's columns, f16, K-major, in 128-byte swizzle atoms of 64
//      columns (wgmma B operand, desc_k_major_sw128);
//   W: the unit's 64 payload bytes of each of the 128 rows (row-major, 64-byte rows: a warp's
//      16-byte reads of 8 consecutive rows fill 512 contiguous bytes, no bank conflict);
//      Q5_K / Q6_K then the unit's 16 / 32 high-bit bytes of each row (4- / 8-byte reads,
//      128 / 256 contiguous bytes per warp);
//   scales: the unit's scale bytes of each row (unit_scale_bytes).
// Thread (warp w of its warpgroup, lane 4g + c) owns tile rows 16w + g and 16w + g + 8 — the
// rows of its wgmma A fragments — and reads their 16-byte slice c of the unit: each payload
// word is a chunk pair (4-bit) or one chunk (Q8_0) whose values round to f16 straight into
// the A registers (decode_word_f16). x was written in the kMma column order as f16
// (f16_mma_columns), so the k-slots of A and B name the same columns.
//
// Ring discipline (k_step): unit u's wgmmas go out as one group; while they run each thread
// retires unit u − 1's group, waits for its own copies of unit u + 1, fences them to the
// async proxy (wgmma reads shared memory through it) and meets the other warpgroup at the
// barrier; only then are unit u + stages − 1's copies started, into the slot of unit u − 1, which
// both warpgroups' retired groups no longer read; then unit u + 1 is decoded into the A
// register set unit u − 1 used. So the tensor cores have a unit of work queued while the
// decode of the next one runs. (One group per k16 slice, session 13 call 1, ran at the same
// 0.25–0.33 of the bf16 rate as this did in call 2 with the FP32 decode: the decode's
// instruction count, not the grouping, is the likelier limit — hence decode_word_f16.)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "backends/cuda/check.h"
#include "backends/cuda/cp_async.cuh"
#include "backends/cuda/gemm_dequant.h"
#include "backends/cuda/gemv_kernel.cuh"
#include "backends/cuda/gemv_mma_elem.cuh"
#include "backends/cuda/gemv_mma_layout.h"
#include "backends/cuda/gemv_mma_ops.cuh"
#include "backends/cuda/pdl.cuh"
#include "backends/cuda/wgmma.cuh"
#include "formats/traits.h"

namespace imp::cuda::detail {
namespace {

constexpr int kTileRows = 128;  // weight rows per CTA: two warpgroups × 64
constexpr int kThreads = 256;

struct GemmDqArgs {
  const uint8_t* data;    // kMma payload, data_row_bytes per row
  const uint8_t* scales;  // scale plane, scale_row_bytes per row
  const uint16_t* x;      // n_tok × cols f16, kMma column order
  float* y;               // n_tok × ldy
  int64_t rows, cols, n_tok, ldy, data_row_bytes, scale_row_bytes;
  float tensor_scale;
  int accumulate;
};

// A grouped launch (gemm_dequant_group): blockIdx.x counts the row tiles of every part in
// turn; part i's start at tile_begin[i]. The parts share x, cols and n_tok.
// tokens_fast: the grid's x counts token tiles and y row tiles, so the CTAs that read the same
// weight rows (one per token tile) are neighbours in launch order and run in the same wave —
// the weight tile comes from HBM once and from L2 for the others. With row tiles in x (0),
// a matrix of more row tiles than a wave holds is read from HBM once per token tile (gate·up
// of an 8B model at 512 tokens: 4× its 2 × 14336 rows; Q8_0's 125 MB a layer then is ~0.5 GB
// of reads). Opt-in (IMP_CUDA_FUSED_GEMM_TOKENS_FAST=1) until a GPU measures it.
struct GemmDqGroup {
  GemmDqArgs part[kGemmDequantMaxParts];
  int tile_begin[kGemmDequantMaxParts];
  int n_parts;
  int tokens_fast;
};

// This CTA's part and its first row within it. Constant indices only (an unrolled select),
// so the arguments stay in the constant bank instead of a local copy of the array.
__device__ __forceinline__ GemmDqArgs select_part(const GemmDqGroup& G, int bx, int64_t& m0) {
  GemmDqArgs g = G.part[0];
  int begin = 0;
#pragma unroll
  for (int i = 1; i < kGemmDequantMaxParts; ++i) {
    if (i < G.n_parts && bx >= G.tile_begin[i]) g = G.part[i], begin = G.tile_begin[i];
  }
  m0 = int64_t(bx - begin) * kTileRows;
  return g;
}

// kBN = tokens per CTA (the wgmma N): 128, or 256 (each weight decoded once per 256 tokens;
// 3 stages then fill the shared memory).
template <FormatId F, int kBN = 128>
struct DqLayout {
  static constexpr int kStages = kBN == 128 ? 4 : 3;  // loads run kStages − 1 units ahead
  static constexpr int kUnitCols = mma_layout::unit_cols(F);  // 128 (4-bit) or 64 (Q8_0)
  static constexpr int kAtoms = kUnitCols / 64;               // swizzle atoms of x per unit
  static constexpr int kAtomBytes = kBN * 128;
  static constexpr int kXBytes = kAtoms * kAtomBytes;            // 16 … 64 KiB
  static constexpr int kHiBase = kTileRows * mma_layout::kUnitBytes;  // 8 KiB of payload (lo nibbles)
  static constexpr int kHiUnitBytes = mma_layout::hi_unit_bytes(F);     // Q5_K 16, Q6_K 32, else 0
  static constexpr int kWBytes = kHiBase + kTileRows * kHiUnitBytes;  // + the high bits
  static constexpr int kScaleBytes = unit_scale_bytes(F);
  static constexpr int kSBytes = 1024 * ((kTileRows * kScaleBytes + 1023) / 1024);
  static constexpr int kStageBytes = kXBytes + kWBytes + kSBytes;  // a multiple of 1024
  static constexpr int kSmemBytes = kStages * kStageBytes + 1024;  // + the alignment slack
  // Lead 2 (k_step_lead2, 128-token tiles): x and the weights in rings of their own — x is
  // read by a unit's wgmmas until they retire three steps later, the weights only by its
  // decode — 5 x slots and 3 weight (payload + scales) slots, both loaded two steps ahead.
  static constexpr int kXSlots2 = 5, kWSlots2 = 3;
  static constexpr int kWSlotBytes = kWBytes + kSBytes;
  static constexpr int kSmemBytes2 = kXSlots2 * kXBytes + kWSlots2 * kWSlotBytes + 1024;
  static_assert(kSmemBytes <= 227 * 1024 && (kBN != 128 || kSmemBytes2 <= 227 * 1024), "fits an SM's shared memory");
  static constexpr int kChunksPerWord = mma_layout::codes_per_word(F) / 4;
  static constexpr int kChunks = 4 * kChunksPerWord;  // k16 slices per unit
};

// This thread's share of every stage's copies, as unit-0 source pointers (a unit further
// along adds u · its bytes) and stage offsets, computed once: 64-bit index math per copy per
// unit was a fifth of the kernel's instructions.
//   x: copy (a, i) takes 16-byte chunk j = tid % 8 of token row n = tid / 8 + 32·i of atom a
//      (i < kBN / 32), stored at chunk j ^ (n % 8) of that row (the swizzle; n % 8 is the
//      same for every i), i.e. at x_off + 4096·i; the token rows as element offsets from x
//      (the launcher keeps n_tok · cols < 2^31);
//   W: copies i = 0, 1 take slice tid % 4 of tile row tid / 4 + 64·i; the high bits (Q5_K,
//      Q6_K): the 16 bytes at 16·tid of the tile's [rows][kHiUnitBytes] (tid < rows · kHiUnitBytes / 16);
//   scales: threads 0 … 127, tile row tid.
template <FormatId F, int kBN>
struct LoadPlan {
  using L = DqLayout<F, kBN>;
  static constexpr int kRows = kBN / 32;
  uint32_t x[kRows];  // element offsets of the token rows (+ chunk j) from g.x
  const uint8_t* w[2];
  const uint8_t* h;  // Q6_K only
  const uint8_t* s;
  uint32_t x_off, w_off[2], h_off, s_off;  // byte offsets inside an x slot (x_off) or a weight slot

  __device__ LoadPlan(const GemmDqArgs& g, int64_t m0, int64_t n0, int tid) {
    const int j = tid % 8, n = tid / 8;
#pragma unroll
    for (int i = 0; i < kRows; ++i) {
      const int64_t t = min(n0 + n + 32 * i, g.n_tok - 1);
      x[i] = uint32_t(t * g.cols + j * 8);
    }
    x_off = uint32_t(n * 128 + ((j ^ (n & 7)) * 16));
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int r = tid / 4 + 64 * i;
      w[i] = g.data + min(m0 + r, g.rows - 1) * g.data_row_bytes + (tid % 4) * 16;
      w_off[i] = uint32_t(r * mma_layout::kUnitBytes + (tid % 4) * 16);
    }
    if constexpr (L::kHiUnitBytes > 0) {
      const int row = tid * 16 / L::kHiUnitBytes, part = tid * 16 % L::kHiUnitBytes;
      h = g.data + min(m0 + row, g.rows - 1) * g.data_row_bytes + mma_layout::hi_plane(g.cols) + part;
    } else {
      h = nullptr;
    }
    h_off = uint32_t(L::kHiBase + tid * 16);
    s = g.scales + min(m0 + tid % kTileRows, g.rows - 1) * g.scale_row_bytes;
    s_off = uint32_t(L::kWBytes + (tid % kTileRows) * L::kScaleBytes);
  }
};

// Unit u's copies: x into xs (kXBytes), payload and scales into ws (kWBytes + kSBytes).
// Lead 1 keeps both in one stage (ws = xs + kXBytes); lead 2 in rings of their own. The
// weights (load_unit_w) are constant, so the prologue issues them before pdl_wait(); x
// (load_unit_x) is the previous kernel's output.
template <FormatId F, int kBN>
__device__ __forceinline__ void load_unit_x(const GemmDqArgs& g, const LoadPlan<F, kBN>& lp, uint8_t* xs, int u) {
  using L = DqLayout<F, kBN>;
  const uint16_t* xu = g.x + u * L::kUnitCols;
#pragma unroll
  for (int a = 0; a < L::kAtoms; ++a) {
#pragma unroll
    for (int i = 0; i < LoadPlan<F, kBN>::kRows; ++i) {
      cp_async16(xs + a * L::kAtomBytes + lp.x_off + 4096 * i, xu + lp.x[i] + a * 64);
    }
  }
}
template <FormatId F, int kBN>
__device__ __forceinline__ void load_unit_w(const LoadPlan<F, kBN>& lp, uint8_t* ws, int u, int tid) {
  using L = DqLayout<F, kBN>;
#pragma unroll
  for (int i = 0; i < 2; ++i) cp_async16(ws + lp.w_off[i], lp.w[i] + u * mma_layout::kUnitBytes);
  if constexpr (L::kHiUnitBytes > 0) {
    if (tid * 16 < kTileRows * L::kHiUnitBytes) cp_async16(ws + lp.h_off, lp.h + u * L::kHiUnitBytes);
  }
  if (tid < kTileRows) cp_async_ca<L::kScaleBytes>(ws + lp.s_off, lp.s + unit_scale_offset(F, u));
}
template <FormatId F, int kBN>
__device__ __forceinline__ void load_unit(const GemmDqArgs& g, const LoadPlan<F, kBN>& lp, uint8_t* xs, uint8_t* ws,
                                          int u, int tid) {
  load_unit_x<F, kBN>(g, lp, xs, u);
  load_unit_w<F, kBN>(lp, ws, u, tid);
}

// An exact f16 pair × s in FP32, rounded to f16 (saturating) once.
__device__ __forceinline__ uint32_t scaled_f16x2(uint32_t h2, float s) {
  const float2 f = h2_to_f2(h2);
  return f16x2_sat(__fmul_rn(f.x, s), __fmul_rn(f.y, s));
}

// Per-row state of one unit for the packed decode: Q4_K's four sub-block scales d·sc and
// negated mins −dmin·m as f16 pairs (each product exact in FP32 — 11 × 6 bits — and rounded
// to f16 once), from the superblock header in shared memory; NVFP4's eight block scales
// (E4M3, exact in f16) × 64 as four f16 pairs, one per payload word. Empty for the others.
template <FormatId F>
struct RowScales {
  __device__ RowScales(const uint8_t*, int) {}
};
template <>
struct RowScales<FormatId::Q4_K> {
  __half2 ds[4], nmn[4];
  __device__ RowScales(const uint8_t* us, int u) {
    float sc[4], m[4], d = 0.0f, dmin = 0.0f;
    Q4_KMma::scales_mins(*reinterpret_cast<const uint4*>(us), u & 1, sc, m, d, dmin);
#pragma unroll
    for (int t = 0; t < 4; ++t) ds[t] = __float2half2_rn(d * sc[t]), nmn[t] = __float2half2_rn(-(dmin * m[t]));
  }
};
template <>
struct RowScales<FormatId::Q5_K> : RowScales<FormatId::Q4_K> {  // the same header
  using RowScales<FormatId::Q4_K>::RowScales;
};
template <>
struct RowScales<FormatId::Q6_K> {
  __half2 s[8];  // d·sc_j of chunk j, rounded to f16 once (the FP32 product is exact)
  __device__ RowScales(const uint8_t* us, int) {
    float f[8];
    Q6_KMma::scales(*reinterpret_cast<const uint4*>(us), f);
#pragma unroll
    for (int j = 0; j < 8; ++j) s[j] = __float2half2_rn(f[j]);
  }
};
template <>
struct RowScales<FormatId::NVFP4_CKPT> {
  __half2 s64[4];  // (scale of chunk 2w, of chunk 2w + 1) · 64 for word w: exact (E4M3 · 2^6 ≤ 28672)
  __device__ RowScales(const uint8_t* us, int) {
    const uint2 raw = *reinterpret_cast<const uint2*>(us);
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const uint32_t two = (w < 2 ? raw.x : raw.y) >> (16 * (w & 1));
      s64[w] = __hmul2(bits_h2(e4m3x2_to_h2(two)), __float2half2_rn(64.0f));
    }
  }
};

// One payload word of one row → f16 pairs p[h][0] = chunk columns (4c, 4c+1), p[h][1] =
// (4c+2, 4c+3) of the word's chunk h. Q4_0 and Q8_0 decode the codes to exact f16 integers
// (gemv_mma_ops.cuh) and multiply by the f16 d in packed f16 (one rounding of the exact
// product); Q4_K takes q·(d·sc) − dmin·m in one HFMA2 from RowScales (three roundings, each
// of f16 precision); Q6_K the exact q − 32 times its f16 d·sc (two roundings); NVFP4 multiplies exact f16 E2M1 by its exact f16 block scale (the
// per-tensor scale waits for the epilogue); MXFP4 by its power-of-two scale where that is
// exact in f16: ~1.5–2.5 instructions per weight, where the exact FP32 values
// (unit_word_values) rounded to f16 took ~5.5 — with every weight decoded once per 128
// tokens, that kept the kernel at 0.25–0.33 of the tensor rate (H100, session 13 calls 1–2;
// scripts/sass-gemm-loop.sh counts a K step per kernel).
// |w| > 65504 has no f16 (MXFP4 saturates, Q4_0 / Q8_0 / Q4_K overflow); real checkpoints
// stay far below.
template <FormatId F>
__device__ __forceinline__ void decode_word_f16(const uint8_t* us, const RowScales<F>& rs, int u, int w, uint32_t word,
                                                uint32_t hh, uint32_t (&p)[DqLayout<F>::kChunksPerWord][2]) {
  if constexpr (F == FormatId::Q4_0) {
    decode_nibble_word<8>(word, p);
    const __half2 d = __half2half2(*reinterpret_cast<const __half*>(us + 2 * w));
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      p[h][0] = h2_bits(__hmul2(bits_h2(p[h][0]), d));
      p[h][1] = h2_bits(__hmul2(bits_h2(p[h][1]), d));
    }
  } else if constexpr (F == FormatId::Q4_K) {
    decode_nibble_word<0>(word, p);  // q, exact
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      p[h][0] = h2_bits(__hfma2(bits_h2(p[h][0]), rs.ds[w], rs.nmn[w]));
      p[h][1] = h2_bits(__hfma2(bits_h2(p[h][1]), rs.ds[w], rs.nmn[w]));
    }
  } else if constexpr (F == FormatId::Q5_K) {
    decode_hi_word<1, 0>(word, hh, p);  // q, exact
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      p[h][0] = h2_bits(__hfma2(bits_h2(p[h][0]), rs.ds[w], rs.nmn[w]));
      p[h][1] = h2_bits(__hfma2(bits_h2(p[h][1]), rs.ds[w], rs.nmn[w]));
    }
  } else if constexpr (F == FormatId::Q6_K) {
    Q6_KMma::decode_word(word, hh, p);  // q − 32, exact
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      p[h][0] = h2_bits(__hmul2(bits_h2(p[h][0]), rs.s[2 * w + h]));
      p[h][1] = h2_bits(__hmul2(bits_h2(p[h][1]), rs.s[2 * w + h]));
    }
  } else if constexpr (F == FormatId::NVFP4_CKPT) {
    // E2M1·2^-6 (exact f16, gemv_mma_ops.cuh) × E4M3·2^6 from RowScales: the product E2M1 ·
    // E4M3 is exact in f16 (≤ 5 significant bits, 2^-10 … 2688), so the weights enter the
    // tensor cores unrounded and the per-tensor FP32 scale multiplies the sums in the
    // epilogue. Chunk 2w's low nibbles, chunk 2w + 1's high ones.
    uint32_t ev[2], od[2];
    decode_e2m1_word(word, ev, od);
    const __half2 s0 = __low2half2(rs.s64[w]), s1 = __high2half2(rs.s64[w]);
    p[0][0] = h2_bits(__hmul2(bits_h2(ev[0]), s0)), p[0][1] = h2_bits(__hmul2(bits_h2(ev[1]), s0));
    p[1][0] = h2_bits(__hmul2(bits_h2(od[0]), s1)), p[1][1] = h2_bits(__hmul2(bits_h2(od[1]), s1));
  } else if constexpr (F == FormatId::MXFP4_CKPT) {
    // E2M1·2^-6 (exact f16) × 2^(e − 121) = E2M1 · 2^(e − 127), the exact weight: one HMUL2
    // per pair when that power of two and every product are exact in f16 (e − 127 in
    // [−23, 9]: real checkpoints' block scales are 2^-10 … 2^0); otherwise × 64 × the E8M0
    // scale in FP32 — the reference's e2m1 × s — rounded to f16 once (saturating). One scale
    // per word: chunk 2w's low nibbles, chunk 2w + 1's high ones.
    uint32_t ev[2], od[2];
    decode_e2m1_word(word, ev, od);
    const uint32_t e = us[w];
    if (e - 104u <= 32u) {
      const __half2 s = __float2half2_rn(__uint_as_float((e + 6u) << 23));  // 2^(e − 121), exact
      p[0][0] = h2_bits(__hmul2(bits_h2(ev[0]), s)), p[0][1] = h2_bits(__hmul2(bits_h2(ev[1]), s));
      p[1][0] = h2_bits(__hmul2(bits_h2(od[0]), s)), p[1][1] = h2_bits(__hmul2(bits_h2(od[1]), s));
    } else {
      const float s = __fmul_rn(e8m0_value(uint8_t(e)), 64.0f);
      p[0][0] = scaled_f16x2(ev[0], s), p[0][1] = scaled_f16x2(ev[1], s);
      p[1][0] = scaled_f16x2(od[0], s), p[1][1] = scaled_f16x2(od[1], s);
    }
  } else if constexpr (F == FormatId::Q8_0) {
    Q8_0Mma::decode_word(word, p[0]);
    const __half2 d = __half2half2(*reinterpret_cast<const __half*>(us + 2 * (w / 2)));
    p[0][0] = h2_bits(__hmul2(bits_h2(p[0][0]), d));
    p[0][1] = h2_bits(__hmul2(bits_h2(p[0][1]), d));
  } else {
    static_assert(mma_layout::unit_cols(F) == 0, "every kMma format has a packed decode above");
  }
}

// The A fragments of one unit for this thread's two rows (tile rows ra, rb = ra + 8), from
// the unit's weight slot ws (payload, then scales): a[j] = chunk j's four registers. k-slots
// 2c, 2c+1 hold chunk columns 4c, 4c+1; slots 2c+8, 2c+9 columns 4c+2, 4c+3 (x follows:
// f16_mma_columns).
template <FormatId F, int kBN>
__device__ __forceinline__ void decode_unit(const uint8_t* ws, int u, int ra, int c,
                                            uint32_t (&a)[DqLayout<F>::kChunks][4]) {
  using L = DqLayout<F, kBN>;
  const int rb = ra + 8;
  const uint4 qa = *reinterpret_cast<const uint4*>(ws + ra * mma_layout::kUnitBytes + c * 16);
  const uint4 qb = *reinterpret_cast<const uint4*>(ws + rb * mma_layout::kUnitBytes + c * 16);
  uint2 ha = {}, hb = {};  // Q6_K: 8 bytes a thread; Q5_K: 4 (in .x)
  if constexpr (F == FormatId::Q6_K) {
    ha = *reinterpret_cast<const uint2*>(ws + L::kHiBase + ra * 32 + c * 8);
    hb = *reinterpret_cast<const uint2*>(ws + L::kHiBase + rb * 32 + c * 8);
  } else if constexpr (F == FormatId::Q5_K) {
    ha.x = *reinterpret_cast<const uint32_t*>(ws + L::kHiBase + ra * 16 + c * 4);
    hb.x = *reinterpret_cast<const uint32_t*>(ws + L::kHiBase + rb * 16 + c * 4);
  }
  const uint8_t* sa = ws + L::kWBytes + ra * L::kScaleBytes;
  const uint8_t* sb = ws + L::kWBytes + rb * L::kScaleBytes;
  const RowScales<F> rsa(sa, u), rsb(sb, u);
#pragma unroll
  for (int w = 0; w < 4; ++w) {
    uint32_t pa[L::kChunksPerWord][2], pb[L::kChunksPerWord][2];
    // Lo word w's high bits shifted into place (Q6_K: hi word w / 2; Q5_K: the one word).
    const int hs = mma_layout::hi_word_shift(F, w);
    const uint32_t hwa = F == FormatId::Q6_K && w >= 2 ? ha.y : ha.x, hwb = F == FormatId::Q6_K && w >= 2 ? hb.y : hb.x;
    decode_word_f16<F>(sa, rsa, u, w, slice_word(qa, w), hwa >> hs, pa);
    decode_word_f16<F>(sb, rsb, u, w, slice_word(qb, w), hwb >> hs, pb);
#pragma unroll
    for (int h = 0; h < L::kChunksPerWord; ++h) {
      uint32_t(&r)[4] = a[L::kChunksPerWord * w + h];
      r[0] = pa[h][0], r[1] = pb[h][0], r[2] = pa[h][1], r[3] = pb[h][1];
    }
  }
}

// One unit's wgmmas (a: its A fragments; xs: the shared address of its x tile) as one group.
template <FormatId F, int kBN>
__device__ __forceinline__ void issue_unit(float (&acc)[kBN / 2], const uint32_t (&a)[DqLayout<F>::kChunks][4],
                                           uint32_t xs) {
  using L = DqLayout<F, kBN>;
#pragma unroll
  for (int j = 0; j < L::kChunks; ++j) {
    const uint32_t b = xs + (j / 4) * L::kAtomBytes + (j % 4) * 32;
    wgmma::mma_m64nNk16_f16_rs(acc, a[j][0], a[j][1], a[j][2], a[j][3], wgmma::desc_k_major_sw128(b));
  }
  wgmma::commit();
}

// One unit of the K loop (kBuf: the A register set this unit's wgmmas read, a compile-time
// index). Entered with unit u's fragments in a[kBuf]; issues its wgmmas as one group, and
// while they run: retires unit u − 1's group, waits for unit u + 1's copies, meets the other
// warpgroup at the barrier, starts the copies of unit u + 3 into the slot of unit u − 1, and
// decodes unit u + 1 into the other set (last read by unit u − 1's wgmmas, retired).
template <FormatId F, int kBN, int kBuf>
__device__ __forceinline__ void k_step(const GemmDqArgs& g, const LoadPlan<F, kBN>& lp, uint8_t* smem, int u,
                                       int n_units, int tid, int ra, int c, float (&acc)[kBN / 2],
                                       uint32_t (&a)[2][DqLayout<F>::kChunks][4]) {
  using L = DqLayout<F, kBN>;
  constexpr int S = L::kStages;
  wgmma::fence();
  issue_unit<F, kBN>(acc, a[kBuf], smem_addr(smem + (u % S) * L::kStageBytes));
  wgmma::wait<1>();
  cp_async_wait<S - 3>();  // this thread's copies of unit u + 1 (units 0 … u + S − 2 committed)
  wgmma::fence_async_shared();
  __syncthreads();
  if (u + S - 1 < n_units) {
    uint8_t* stage = smem + ((u + S - 1) % S) * L::kStageBytes;
    load_unit<F, kBN>(g, lp, stage, stage + L::kXBytes, u + S - 1, tid);
  }
  cp_async_commit();  // (empty at the end: one group per unit)
  if (u + 1 < n_units) {
    decode_unit<F, kBN>(smem + ((u + 1) % S) * L::kStageBytes + L::kXBytes, u + 1, ra, c, a[1 - kBuf]);
  }
}

// Lead 2 (128-token tiles): one unit of the K loop with two units' wgmmas queued while it
// decodes — for the one-wave grids (4096-row GEMMs of 512 tokens) where lead 1's decode,
// with only the current unit's group in flight, is what the tensor cores wait for (Nsight,
// session 14: tensor pipe 59 % active, stalls on fixed-latency dependencies and the barrier).
// Three A register sets (kSet = u % 3). Step u: retire G(u − 3) (frees set kSet and x slot
// u − 3), wait for this thread's copies of unit u, meet at the barrier (unit u visible; both
// warpgroups past G(u − 3) and past decoding u − 1, whose weight slot u + 2 now takes), start
// unit u + 2's copies, decode unit u into set kSet while G(u − 2) and G(u − 1) run, issue G(u).
template <FormatId F, int kSet>
__device__ __forceinline__ void k_step_lead2(const GemmDqArgs& g, const LoadPlan<F, 128>& lp, uint8_t* smem, int u,
                                             int n_units, int tid, int ra, int c, float (&acc)[64],
                                             uint32_t (&a)[3][DqLayout<F>::kChunks][4]) {
  using L = DqLayout<F, 128>;
  uint8_t* const xring = smem;
  uint8_t* const wring = smem + L::kXSlots2 * L::kXBytes;
  wgmma::wait<2>();
  cp_async_wait<1>();  // groups: one per unit, unit u + 1's the only newer one
  wgmma::fence_async_shared();
  __syncthreads();
  const int v = u + 2;
  if (v < n_units) {
    load_unit<F, 128>(g, lp, xring + (v % L::kXSlots2) * L::kXBytes, wring + (v % L::kWSlots2) * L::kWSlotBytes, v,
                      tid);
  }
  cp_async_commit();  // (empty near the end: still one group per step)
  decode_unit<F, 128>(wring + (u % L::kWSlots2) * L::kWSlotBytes, u, ra, c, a[kSet]);
  const uint32_t xs = smem_addr(xring + (u % L::kXSlots2) * L::kXBytes);
#pragma unroll
  for (int j = 0; j < L::kChunks; ++j) {
#pragma unroll
    for (int r = 0; r < 4; ++r) wgmma::fence_operand(a[kSet][j][r]);
  }
#pragma unroll
  for (int i = 0; i < 64; ++i) wgmma::fence_operand(acc[i]);
  wgmma::fence();
  issue_unit<F, 128>(acc, a[kSet], xs);
}

template <FormatId F, int kBN, int kLead>
__global__ void __launch_bounds__(kThreads, 1) gemm_dequant_kernel(const GemmDqGroup G) {
  static_assert(kLead == 1 || (kLead == 2 && kBN == 128), "lead 2 is built for 128-token tiles");
  using L = DqLayout<F, kBN>;
  constexpr int S = L::kStages;
  extern __shared__ uint8_t smem_raw[];
  // The swizzle atoms must sit on 1024-byte boundaries (the descriptors' base offset is 0).
  uint8_t* smem = smem_raw + ((1024 - (smem_addr(smem_raw) & 1023)) & 1023);
  const int tid = int(threadIdx.x), wg = tid / 128, warp = (tid / 32) % 4, lane = tid % 32;
  const int gq = lane / 4, c = lane % 4;
  int64_t m0 = 0;
  const GemmDqArgs g = select_part(G, int(G.tokens_fast ? blockIdx.y : blockIdx.x), m0);
  const int64_t n0 = int64_t(G.tokens_fast ? blockIdx.x : blockIdx.y) * kBN;
  const int n_units = int(g.cols / L::kUnitCols);
  const int ra = wg * 64 + warp * 16 + gq;  // tile row of this thread's A fragments (and ra + 8)

  const LoadPlan<F, kBN> lp(g, m0, n0, tid);
  float acc[kBN / 2];
#pragma unroll
  for (int i = 0; i < kBN / 2; ++i) acc[i] = 0.0f;
  // The prologue's weights before pdl_wait() (they overlap the previous kernel's tail under
  // PDL), x after; the commit groups stay one per unit (the first also holds the weights).
  if constexpr (kLead == 2) {
    uint8_t* const wring = smem + L::kXSlots2 * L::kXBytes;
#pragma unroll
    for (int s = 0; s < 2; ++s) {
      if (s < n_units) load_unit_w<F, kBN>(lp, wring + s * L::kWSlotBytes, s, tid);
    }
    pdl_wait();
#pragma unroll
    for (int s = 0; s < 2; ++s) {
      if (s < n_units) load_unit_x<F, kBN>(g, lp, smem + s * L::kXBytes, s);
      cp_async_commit();
    }
    uint32_t a[3][L::kChunks][4];
    int u = 0;
    for (; u + 3 <= n_units; u += 3) {  // whole rounds of the three sets, then the tail
      k_step_lead2<F, 0>(g, lp, smem, u, n_units, tid, ra, c, acc, a);
      k_step_lead2<F, 1>(g, lp, smem, u + 1, n_units, tid, ra, c, acc, a);
      k_step_lead2<F, 2>(g, lp, smem, u + 2, n_units, tid, ra, c, acc, a);
    }
    if (u < n_units) k_step_lead2<F, 0>(g, lp, smem, u, n_units, tid, ra, c, acc, a);
    if (u + 1 < n_units) k_step_lead2<F, 1>(g, lp, smem, u + 1, n_units, tid, ra, c, acc, a);
  } else {
#pragma unroll
    for (int s = 0; s < S - 1; ++s) {
      if (s < n_units) load_unit_w<F, kBN>(lp, smem + s * L::kStageBytes + L::kXBytes, s, tid);
    }
    pdl_wait();
#pragma unroll
    for (int s = 0; s < S - 1; ++s) {
      if (s < n_units) load_unit_x<F, kBN>(g, lp, smem + s * L::kStageBytes, s);
      cp_async_commit();
    }
    uint32_t a[2][L::kChunks][4];
    cp_async_wait<S - 2>();  // unit 0
    wgmma::fence_async_shared();
    __syncthreads();
    decode_unit<F, kBN>(smem + L::kXBytes, 0, ra, c, a[0]);

    for (int u = 0; u < n_units; u += 2) {
      k_step<F, kBN, 0>(g, lp, smem, u, n_units, tid, ra, c, acc, a);
      if (u + 1 < n_units) k_step<F, kBN, 1>(g, lp, smem, u + 1, n_units, tid, ra, c, acc, a);
    }
  }
  wgmma::wait<0>();
  pdl_trigger();  // the next kernel may be scheduled as this grid's CTAs finish (it waits for all of it)

  // acc[4j + e] = D[row 16·warp + g + 8·(e / 2)][token 8j + 2c + e % 2] of the warpgroup;
  // NVFP4's per-tensor scale applies here (its weights went in as E2M1 · E4M3).
  const float out_scale = F == FormatId::NVFP4_CKPT ? g.tensor_scale : 1.0f;
  const int64_t r0 = m0 + wg * 64 + warp * 16 + gq;
#pragma unroll
  for (int j = 0; j < kBN / 8; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int64_t r = r0 + 8 * (e / 2), t = n0 + 8 * j + 2 * c + (e % 2);
      if (r < g.rows && t < g.n_tok) {
        float* p = g.y + t * g.ldy + r;
        const float v = F == FormatId::NVFP4_CKPT ? acc[4 * j + e] * out_scale : acc[4 * j + e];
        *p = g.accumulate ? *p + v : v;
      }
    }
  }
}

// One thread per 16 columns (32 bytes): each BF16 pair becomes an f16 pair (round to nearest
// even, saturating to ±65504); pair i of the output's first half is input pair 2i (columns
// 4i, 4i+1), of its second half input pair 2i + 1 (columns 4i+2, 4i+3).
__device__ __forceinline__ uint32_t bf16x2_to_f16x2(uint32_t v) {
  return f16x2_sat(__uint_as_float(v << 16), __uint_as_float(v & 0xFFFF0000u));
}
__global__ void f16_mma_columns_kernel(const uint4* x, int64_t chunks, uint4* out) {
  pdl_wait();
  pdl_trigger();
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < chunks; i += int64_t(gridDim.x) * blockDim.x) {
    const uint4 a = x[2 * i], b = x[2 * i + 1];
    out[2 * i] = make_uint4(bf16x2_to_f16x2(a.x), bf16x2_to_f16x2(a.z), bf16x2_to_f16x2(b.x), bf16x2_to_f16x2(b.z));
    out[2 * i + 1] = make_uint4(bf16x2_to_f16x2(a.y), bf16x2_to_f16x2(a.w), bf16x2_to_f16x2(b.y), bf16x2_to_f16x2(b.w));
  }
}

template <FormatId F, int kBN, int kLead = 1>
void launch_tiles(const GemmDqGroup& G, int row_tiles, int64_t n_tok, cudaStream_t stream) {
  using L = DqLayout<F, kBN>;
  constexpr int smem = kLead == 2 ? L::kSmemBytes2 : L::kSmemBytes;
  static const bool attr = [] {
    IMP_CUDA_CHECK(
        cudaFuncSetAttribute(gemm_dequant_kernel<F, kBN, kLead>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    return true;
  }();
  (void)attr;
  const unsigned token_tiles = unsigned((n_tok + kBN - 1) / kBN);
  const dim3 grid = G.tokens_fast ? dim3(token_tiles, unsigned(row_tiles)) : dim3(unsigned(row_tiles), token_tiles);
  launch_pdl(gemm_dequant_kernel<F, kBN, kLead>, grid, dim3(kThreads), size_t(smem), stream, G);
  IMP_CUDA_CHECK_LAUNCH();
}

int row_tiles(int64_t rows) { return int((rows + kTileRows - 1) / kTileRows); }

int sm_count() {
  static const int n = [] {
    int dev = 0, v = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
      return 132;
    }
    return v;
  }();
  return n;
}

// Token slices of fewer than 2^31 x elements (LoadPlan keeps 32-bit offsets), each one launch.
template <FormatId F>
void launch(const GemmDequantOut* parts, int n_parts, const uint16_t* x, int64_t n_tok, cudaStream_t stream) {
  const int64_t cols = parts[0].w->cols;
  GemmDqGroup G{};
  G.n_parts = n_parts;
  G.tokens_fast = fused_gemm_tokens_fast() ? 1 : 0;
  int tiles = 0;
  for (int i = 0; i < n_parts; ++i) {
    const DeviceMatrix& w = *parts[i].w;
    const KernelArgs k = make_args(w, nullptr, nullptr);
    G.part[i] = GemmDqArgs{k.data, k.scales, x, parts[i].y, w.rows, cols, n_tok, parts[i].ldy,
                           k.data_row_bytes, k.scale_row_bytes, w.tensor_scale, parts[i].accumulate ? 1 : 0};
    G.tile_begin[i] = tiles;
    tiles += row_tiles(w.rows);
  }
  // Q5_K, Q6_K: 128-token tiles only (three 256-token stages with their 10 / 12 KiB of
  // weights per unit would need 229 / 235 KiB of shared memory).
  constexpr bool k256 = mma_layout::hi_bits(F) == 0;
  const int forced = fused_gemm_tile_tokens();
  const int bn = !k256 ? 128 : forced ? forced : gemm_dequant_tile_tokens(tiles, n_tok, sm_count());
  const int64_t slice = std::max<int64_t>(1, ((int64_t(1) << 31) - 1) / cols - 256);
  for (int64_t t0 = 0; t0 < n_tok; t0 += slice) {
    const int64_t nt = std::min(slice, n_tok - t0);
    GemmDqGroup S = G;
    for (int i = 0; i < n_parts; ++i) {
      S.part[i].x = x + t0 * cols;
      S.part[i].y = parts[i].y + t0 * parts[i].ldy;
      S.part[i].n_tok = nt;
    }
    if (bn == 256) {
      if constexpr (k256) launch_tiles<F, 256>(S, tiles, nt, stream);
    } else if (gemm_dequant_lead_for(F) == 2) {
      launch_tiles<F, 128, 2>(S, tiles, nt, stream);
    } else {
      launch_tiles<F, 128>(S, tiles, nt, stream);
    }
  }
}

bool is_sm90() {
  int dev = 0, major = 0, minor = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return false;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) return false;
  if (cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) return false;
  return major == 9 && minor == 0;
}

}  // namespace
}  // namespace imp::cuda::detail

namespace imp::cuda {

bool gemm_dequant_supported(const DeviceMatrix& w, std::string* why) {
  auto no = [&](const char* reason) {
    if (why) *why = reason;
    return false;
  };
  if (w.layout != WeightLayout::kMma || detail::unit_scale_bytes(w.format) == 0) return no("not a kMma-layout weight");
  if (!has_mma_layout(w.format, w.cols)) return no("row length is not whole kMma units");
  if (reinterpret_cast<uintptr_t>(w.data) % 16 != 0) return no("payload not 16-byte aligned");
  if (reinterpret_cast<uintptr_t>(w.scales) % detail::unit_scale_bytes(w.format) != 0) return no("scales misaligned");
  static const bool sm90 = detail::is_sm90();
  if (!sm90) return no("needs a compute capability 9.0 GPU (wgmma)");
  return true;
}

void f16_mma_columns(const uint16_t* x, int64_t n_tok, int64_t cols, uint16_t* out, cudaStream_t stream) {
  if (cols % 16 != 0 || n_tok < 0) fail("f16_mma_columns: {} columns is not a multiple of 16", cols);
  const int64_t chunks = n_tok * cols / 16;
  if (chunks == 0) return;
  const int64_t blocks = std::min<int64_t>((chunks + 255) / 256, 8192);
  launch_pdl(detail::f16_mma_columns_kernel, dim3(unsigned(blocks)), dim3(256), 0, stream,
             reinterpret_cast<const uint4*>(x), chunks, reinterpret_cast<uint4*>(out));
  IMP_CUDA_CHECK_LAUNCH();
}

namespace {
FusedGemm& mode_ref() {
  static FusedGemm m = [] {
    const char* e = std::getenv("IMP_CUDA_FUSED_GEMM");
    if (!e || !*e) return FusedGemm::kBySize;
    return std::strcmp(e, "0") == 0 ? FusedGemm::kOff : FusedGemm::kOn;
  }();
  return m;
}
int& tile_tokens_ref() {
  static int n = [] {
    const char* e = std::getenv("IMP_CUDA_FUSED_GEMM_TOKENS");
    return e && std::strcmp(e, "256") == 0 ? 256 : e && std::strcmp(e, "128") == 0 ? 128 : 0;
  }();
  return n;
}
bool& tokens_fast_ref() {  // opt-in until measured (gemm_dequant.h)
  static bool on = [] {
    const char* e = std::getenv("IMP_CUDA_FUSED_GEMM_TOKENS_FAST");
    return e && std::strcmp(e, "1") == 0;
  }();
  return on;
}
int& lead_ref() {
  static int n = [] {
    const char* e = std::getenv("IMP_CUDA_FUSED_GEMM_LEAD");
    return e && std::strcmp(e, "2") == 0 ? 2 : e && std::strcmp(e, "1") == 0 ? 1 : 0;
  }();
  return n;
}

}  // namespace

FusedGemm fused_gemm_mode() { return mode_ref(); }
void set_fused_gemm_mode(FusedGemm mode) { mode_ref() = mode; }
bool fused_gemm_takes(int64_t n_tok) {
  return mode_ref() == FusedGemm::kOn || (mode_ref() == FusedGemm::kBySize && n_tok <= kFusedGemmMaxTokens);
}

int fused_gemm_tile_tokens() { return tile_tokens_ref(); }
void set_fused_gemm_tile_tokens(int n) { tile_tokens_ref() = n == 256 || n == 128 ? n : 0; }
bool fused_gemm_tokens_fast() { return tokens_fast_ref(); }
void set_fused_gemm_tokens_fast(bool on) { tokens_fast_ref() = on; }
int fused_gemm_lead() { return lead_ref(); }
void set_fused_gemm_lead(int units) { lead_ref() = units == 2 || units == 1 ? units : 0; }
int gemm_dequant_lead_for(FormatId format) {
  if (lead_ref() != 0) return lead_ref();
  return format == FormatId::Q4_0 || format == FormatId::Q6_K ? 2 : 1;
}

int gemm_dequant_tile_tokens(int64_t row_tiles, int64_t n_tok, int sm_count) {
  // SM time ∝ waves × tokens per CTA ÷ relative rate (0.74 at 128, 0.86 at 256: see the header).
  const int64_t sms = std::max(1, sm_count);
  auto cost = [&](int bn, double rate) {
    const int64_t ctas = row_tiles * ((n_tok + bn - 1) / bn);
    return double((ctas + sms - 1) / sms) * bn / rate;
  };
  return cost(256, 0.86) < cost(128, 0.74) ? 256 : 128;
}

void gemm_dequant(const DeviceMatrix& w, const uint16_t* x_mma, int64_t n_tok, float* y, int64_t ldy, bool accumulate,
                  cudaStream_t stream) {
  const GemmDequantOut part{&w, y, ldy, accumulate};
  gemm_dequant_group(&part, 1, x_mma, n_tok, stream);
}

void gemm_dequant_group(const GemmDequantOut* parts, int n_parts, const uint16_t* x_mma, int64_t n_tok,
                        cudaStream_t stream) {
  if (n_parts < 1 || n_parts > kGemmDequantMaxParts) fail("gemm_dequant: {} parts (1 … {})", n_parts, kGemmDequantMaxParts);
  const DeviceMatrix& w0 = *parts[0].w;
  int64_t tiles = 0;
  for (int i = 0; i < n_parts; ++i) {
    const DeviceMatrix& w = *parts[i].w;
    std::string why;
    if (!gemm_dequant_supported(w, &why)) fail("gemm_dequant({} {}×{}): {}", format_name(w.format), w.rows, w.cols, why);
    if (w.format != w0.format || w.cols != w0.cols) {
      fail("gemm_dequant: a group of {} {}×{} and {} {}×{} (one format and column count only)", format_name(w0.format),
           w0.rows, w0.cols, format_name(w.format), w.rows, w.cols);
    }
    if (parts[i].ldy < w.rows) fail("gemm_dequant: ldy {} for {} rows", parts[i].ldy, w.rows);
    tiles += detail::row_tiles(w.rows);
  }
  if (n_tok <= 0) return;
  if ((n_tok + 127) / 128 > 65535 || tiles > 0x7FFFFFFF) {
    fail("gemm_dequant: {} tokens × {} row tiles out of range", n_tok, tiles);
  }
  switch (w0.format) {
    case FormatId::Q4_0: return detail::launch<FormatId::Q4_0>(parts, n_parts, x_mma, n_tok, stream);
    case FormatId::Q8_0: return detail::launch<FormatId::Q8_0>(parts, n_parts, x_mma, n_tok, stream);
    case FormatId::Q4_K: return detail::launch<FormatId::Q4_K>(parts, n_parts, x_mma, n_tok, stream);
    case FormatId::Q5_K: return detail::launch<FormatId::Q5_K>(parts, n_parts, x_mma, n_tok, stream);
    case FormatId::Q6_K: return detail::launch<FormatId::Q6_K>(parts, n_parts, x_mma, n_tok, stream);
    case FormatId::NVFP4_CKPT: return detail::launch<FormatId::NVFP4_CKPT>(parts, n_parts, x_mma, n_tok, stream);
    case FormatId::MXFP4_CKPT: return detail::launch<FormatId::MXFP4_CKPT>(parts, n_parts, x_mma, n_tok, stream);
    default: fail("gemm_dequant: {} has no kMma layout", format_name(w0.format));
  }
}

}  // namespace imp::cuda
