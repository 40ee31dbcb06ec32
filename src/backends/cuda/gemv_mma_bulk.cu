// Tensor-core decode GEMV fed by the Hopper tensor-memory accelerator (bulk_copy.cuh): the
// same MMAs, decoders and epilogues as the shared-x kernel (gemv_mma_tile.cuh), with the
// weights streamed through a ring of shared-memory stages by one producer thread.
//
// Why: the register-fed kernels (gemv_mma.cu) are latency-bound — Nsight Compute on Q4_0
// 14336×4096: DRAM 42 % of peak, long-scoreboard stalls, 3 CTAs × 8 warps per SM each with
// one or two 16-byte loads per row in flight (≈ 48 KiB per SM at best, and less during each
// CTA's prologue and tail). Per-lane cp.async into a ring (session 6) added an issue slot
// per 16 bytes and stalled on the MIO queue. Here a stage is a few 2-D tensor copies, up to
// kMaxStages stages (≈ 150 KiB per SM) are in flight without a register or an issue slot
// held for them, and the CTA is persistent: x is converted once per SM, not once per 16
// rows, and the pipeline runs across tile boundaries.
// (Measured on an H200, 2026-12-03: one 1-D bulk copy per row segment — 32 copies of
// 64 B–1 KiB per stage — ran at one copy per ~100 cycles per SM, 0.25–0.40 of copy
// bandwidth; the TMA's cost is per copy, so each stage is now 2–4 boxes of 8 rows.)
//
// Work split: one CTA of this kernel per SM (grid = min(tiles, SMs)) takes tiles blockIdx.x,
// + gridDim.x, …; a one-tile CTA leaves half the SM to the next kernel (colocate()).
// A tile is 16·kTiles rows (SwiGLU: 16 gate rows and the same 16 up rows); a stage is the
// tile's rows × BulkStage::kUnits units (64 payload bytes each per row) plus their scales, copied
// as boxes of 8 consecutive rows (the half-split RoPE pairing and the SwiGLU pairing both
// keep 8-row runs consecutive). Consumer warp w takes unit w of each stage — the shared-x
// kernel's round-robin with 16 warps — loads its 16 bytes per row from the stage and runs
// mma_item_sx on it. Each row's sum is the same per-warp walk for every tile size and part
// count, so separate and fused launches agree bit for bit. Rows and units past the matrix
// arrive as zeros (the tensor map's bounds) and their sums are dropped. 4-bit stages are
// unit-major in shared memory, 8-bit ones row-major (kUnitMajor).
#include <cuda.h>
#include <cudaTypedefs.h>

#include <algorithm>
#include <cstdlib>
#include <type_traits>

#include "backends/cuda/bulk_copy.cuh"
#include "common/env_switch.h"
#include "backends/cuda/check.h"
#include "backends/cuda/gemv_mma_tile.cuh"
#include "backends/cuda/l2_prefetch.cuh"
#include "backends/cuda/pdl.cuh"

namespace imp::cuda::detail {
namespace {

// Consumer warps per CTA (build-time knob IMP_MMA_BULK_WARPS). Measured on an H200
// (2026-12-03): 8 instead of 16 left the 4-bit mid shapes unchanged but lost the lm_head
// (Q4_0 128256×4096 0.756 → 0.671, Q8_0 0.921 → 0.743 of copy bandwidth), so 16.
#ifndef IMP_MMA_BULK_WARPS
#define IMP_MMA_BULK_WARPS 16
#endif
constexpr int kBulkWarps = IMP_MMA_BULK_WARPS;  // consumers; one more warp produces
constexpr int kBulkThreads = (kBulkWarps + 1) * 32;
// Units per consumer warp and stage, one-tile form (the two-tile form takes one: its stage
// has twice the rows). Measured on an H200 (2026-12-03): two (32-unit stages, two chains
// per wait, 5 stages instead of 8) lost on every shape but the 128256-row lm_head —
// Q4_0 14336×4096 0.528 → 0.491 of copy bandwidth, Q8_0 0.769 → 0.697 — so one.
// Build-time knobs for scripts/gpu-gemv-variants.sh: IMP_MMA_BULK_WARPS, IMP_MMA_BULK_UPW,
// IMP_MMA_BULK_SMEM_KB.
#ifndef IMP_MMA_BULK_UPW
#define IMP_MMA_BULK_UPW 1
#endif
// Co-residency with the next kernel (decode runs every GEMV under PDL; IMP_CUDA_BULK_COLOCATE,
// default on): a one-tile CTA triggers the next launch at its start and takes at most half
// an SM — ≤ IMP_MMA_BULK_SMEM_KB of shared memory and ≤ 56 registers (__launch_bounds__
// for two CTAs) — so the next GEMV's CTA is resident beside it and its producer streams that
// GEMV's first stages while this one drains; the next kernel's pdl_wait() still waits for
// this whole grid. The two-tile (SwiGLU) form keeps the whole SM: with half of it, two of
// its 37 KB stages fit, too few bytes in flight. Rows too long for two stages in the
// budget take up to kSmemMax (no co-residency).
#ifndef IMP_MMA_BULK_SMEM_KB
#define IMP_MMA_BULK_SMEM_KB 110
#endif
constexpr int kMaxStages = 8;
constexpr int kBarrierBytes = 2 * kMaxStages * 8;   // full[], empty[] (padded to 128 below)
constexpr int kSmemMax = 200 * 1024;  // rows too long for smem_budget()

// 4-bit payloads (8 chunks = 128 weights per 64-byte unit row) are staged unit-major: their
// consumers are issue-bound and the row-major stage costs each 16-byte load twice its shared-
// memory wavefronts (BulkStage). The 8-bit ones are bound by HBM, and the unit-major copy's
// 64-byte rows cost them more at the TMA than it saves (H200, 2026-12-03: Q4_0 128256×4096
// 0.716 → 0.775 of copy bandwidth, Q8_0 0.912 → 0.871, FP8 0.971 → 0.907).
template <class Op>
constexpr bool kUnitMajor = Op::kChunks == 8;

// FP8 per channel keeps one scale per row (read once per tile from global), not per unit.
template <class Op>
struct RowScale : std::false_type {};
template <>
struct RowScale<Fp8Mma<true>> : std::true_type {};
template <class Op>
constexpr bool kStagedScales = Op::kScaleBytes > 0 && !RowScale<Op>::value;

// A stage in shared memory: the payload of kRows rows × kUnits units (64 bytes per row and
// unit), then the scales (one ScaleSlot per row and unit, Q4_K's 16-byte header per two;
// [rows][kScaleRowBytes]), each as runs of 8 rows (one tensor-map box per run, 128-byte
// aligned). Row-major payload runs ([8 rows][kUnits · 64 bytes], as in global memory) put
// the rows a warp's lanes read at a 1 KiB stride — one bank range, so each 16-byte load takes
// twice its 4 wavefronts; unit-major runs ([unit][8 rows][64 bytes], kUnitMajor) give each
// lane its own banks, the tensor map's dimensions (bytes of a unit, rows, units) making the
// copy write them so.
// Q5_K's / Q6_K's high-bit plane (gemv_mma_layout.h) follows the payload as a unit-major
// block of its own ([unit][8 rows][16·kHiBits bytes] per run of 8 rows): the lanes' 4·kHiBits
// bytes of the 8 rows of a run are contiguous, so their loads are conflict-free too.
template <class Op, int kTiles>
struct BulkStage {
  static constexpr int kUnitsPerWarp = kTiles == 1 ? IMP_MMA_BULK_UPW : 1;
  static constexpr int kUnits = kBulkWarps * kUnitsPerWarp;
  static constexpr int kRows = 16 * kTiles;
  static constexpr int kRowBytes = kUnits * mma_layout::kUnitBytes;
  static constexpr int kHiUnitBytes = 16 * kHiBits<Op>, kHiRowBytes = kUnits * kHiUnitBytes;
  static constexpr int kScaleRowBytes = kStagedScales<Op> ? kUnits * Op::kScaleBytes / (Op::kMins ? 2 : 1) : 0;
  static_assert(kRowBytes <= 2048, "a tensor-map box row is at most 256 8-byte elements");
  static constexpr int kHiBase = kRows * kRowBytes;
  static constexpr int kScaleBase = kHiBase + kRows * kHiRowBytes;
  static constexpr int kBytes = kScaleBase + kRows * kScaleRowBytes;
  static_assert(kBytes % 128 == 0 && (8 * kScaleRowBytes) % 128 == 0 && (8 * kHiRowBytes) % 128 == 0,
                "128-byte aligned boxes");
  static_assert(!kHasHiPlane<Op> || kUnitMajor<Op>, "the high-bit plane is staged unit-major");

  // Byte offset of lane quad c's 16 payload bytes of row s, unit lu of the stage.
  __device__ static int payload(int s, int lu, int c) {
    constexpr int B = mma_layout::kUnitBytes;
    return kUnitMajor<Op> ? (s >> 3) * 8 * kRowBytes + (lu * 8 + (s & 7)) * B + 16 * c : s * kRowBytes + lu * B + 16 * c;
  }
  // Byte offset of lane quad c's 4·kHiBits high-bit bytes of row s, unit lu (Q5_K, Q6_K).
  __device__ static int hi(int s, int lu, int c) {
    return kHiBase + (s >> 3) * 8 * kHiRowBytes + (lu * 8 + (s & 7)) * kHiUnitBytes + 4 * kHiBits<Op> * c;
  }
  // Byte offset of row s's scale bytes at offset o (from the stage's first unit).
  __device__ static int scale(int s, int o) { return kScaleBase + s * kScaleRowBytes + o; }
  // Lane quad c's slice of row s, unit lu.
  __device__ static typename SliceOf<Op>::type slice(const uint8_t* st, int s, int lu, int c) {
    if constexpr (kHiBits<Op> == 2) {
      const uint2 h = *reinterpret_cast<const uint2*>(st + hi(s, lu, c));
      return {*reinterpret_cast<const uint4*>(st + payload(s, lu, c)), {h.x, h.y}};
    } else if constexpr (kHiBits<Op> == 1) {
      return {*reinterpret_cast<const uint4*>(st + payload(s, lu, c)), {*reinterpret_cast<const uint32_t*>(st + hi(s, lu, c))}};
    } else {
      return *reinterpret_cast<const uint4*>(st + payload(s, lu, c));
    }
  }
};

// The tensor maps of a launch: payload and scale plane of each part, as 2-D arrays of 8-byte
// elements (rows × row bytes / 8), boxes of 8 rows × one stage's bytes; Q5_K's / Q6_K's
// high-bit plane as a third (BulkMapsHi, so that the other formats' parameters stay as they
// were).
struct BulkMaps {
  CUtensorMap q[3];
  CUtensorMap s[3];
};
struct BulkMapsHi : BulkMaps {
  CUtensorMap h[3];
};
template <class Op>
using MapsOf = std::conditional_t<kHasHiPlane<Op>, BulkMapsHi, BulkMaps>;

__host__ __device__ constexpr int64_t x_bytes(int64_t cols) { return (cols * 2 + 127) / 128 * 128; }

__device__ __forceinline__ void consumers_sync() {
  asm volatile("bar.sync 1, %0;" ::"n"(kBulkWarps * 32) : "memory");
}

template <class Op, int kTiles, bool kSwiglu>
__global__ void __launch_bounds__(kBulkThreads, kTiles == 1 ? 2 : 1)
    gemv_mma_bulk_kernel(const __grid_constant__ MmaJob job, const __grid_constant__ MapsOf<Op> maps, int64_t n_tiles,
                         int n_stages, bool early_trigger) {
  constexpr int kRows = 2 * kTiles, kTileRows = 16 * kTiles, U = Op::kChunks * 16;
  static_assert(!kSwiglu || kTiles == 2, "the SwiGLU form pairs a gate tile with an up tile");
  constexpr int kRowsPerTile = kSwiglu ? 16 : kTileRows;
  using Stage = BulkStage<Op, kTiles>;
  using ScaleSlot = typename Op::ScaleSlot;
  extern __shared__ __align__(128) uint8_t smem_raw[];
  uint8_t* const smem = smem_raw + (128 - smem_addr(smem_raw) % 128) % 128;  // the launch adds 128 bytes of slack
  __shared__ float partial[2][kBulkWarps][kTileRows];  // by tile parity: one barrier per tile
  __shared__ float warp_ss[kBulkWarps];
  uint64_t* const full = reinterpret_cast<uint64_t*>(smem);
  uint64_t* const empty = full + kMaxStages;
  uint2* const x16 = reinterpret_cast<uint2*>(smem + 128);
  const int units = int(job.part[0].cols / U);
  const int n_chunks = (units + Stage::kUnits - 1) / Stage::kUnits;
  uint8_t* const stages = smem + 128 + x_bytes(job.part[0].cols);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  if (tid == 0) {
    for (int s = 0; s < n_stages; ++s) {
      mbar_init(full + s, 1);
      mbar_init(empty + s, kBulkWarps);
    }
    mbar_init_fence();
  }
  __syncthreads();
  if (early_trigger) pdl_trigger();  // see IMP_MMA_BULK_SMEM_KB

  if (warp == kBulkWarps) {
    // The producer (one thread): weights only, so it never waits for the previous kernel (PDL).
    if (lane == 0) {
      const uint64_t policy = l2_evict_first_policy();
      constexpr uint32_t kStageTx = uint32_t(Stage::kBytes);  // full boxes, bounds included
      int slot = 0;
      uint32_t phase = 0;
      for (int64_t t = blockIdx.x; t < n_tiles; t += gridDim.x) {
        const int p = tile_part(job, t);
        const int64_t row0 = (t - part_first(job, p)) * kRowsPerTile;
        const bool pair_rows = pairs_rope_rows<kTiles>(job, p);
        for (int k = 0; k < n_chunks; ++k) {
          const int u0 = k * Stage::kUnits;
          mbar_wait(empty + slot, phase ^ 1);
          mbar_arrive_expect_tx(full + slot, kStageTx);
          uint8_t* st = stages + slot * Stage::kBytes;
#pragma unroll
          for (int run = 0; run < kTileRows / 8; ++run) {
            // Run of 8 slots: SwiGLU runs 0–1 gate, 2–3 up; RoPE pairs map slot 8 by rope_pair_row.
            const int pm = kSwiglu ? run / 2 : p;
            const int64_t r = kSwiglu ? row0 + 8 * (run % 2)
                                      : pair_rows ? rope_pair_row(row0 / 16, 8 * run, job.kv.head_dim) : row0 + 8 * run;
            uint8_t* const dq = st + run * 8 * Stage::kRowBytes;
            if constexpr (kUnitMajor<Op>) {
              tensor_copy_3d_g2s(dq, &maps.q[pm], 0, int(r), u0, full + slot, policy);
              if constexpr (kHasHiPlane<Op>) {
                tensor_copy_3d_g2s(st + Stage::kHiBase + run * 8 * Stage::kHiRowBytes, &maps.h[pm], 0, int(r), u0,
                                   full + slot, policy);
              }
            } else {
              tensor_copy_2d_g2s(dq, &maps.q[pm], u0 * (mma_layout::kUnitBytes / 8), int(r), full + slot, policy);
            }
            if constexpr (kStagedScales<Op>) {
              tensor_copy_2d_g2s(st + Stage::kScaleBase + run * 8 * Stage::kScaleRowBytes, &maps.s[pm],
                                 Op::scale_offset(u0) / 8, int(r), full + slot, policy);
            }
          }
          if (++slot == n_stages) slot = 0, phase ^= 1;
        }
      }
      // Every stage is issued; while the consumers drain them, this CTA's slice of the next
      // launch's first weights goes to L2 (l2_prefetch.h).
      l2_prefetch_slice(job.next_weights, blockIdx.x, gridDim.x, 0, 1);
    }
    return;
  }

  // The consumers: x (and the norm) once, then every stage of every tile of this CTA.
  pdl_wait();  // x and y belong to the previous kernels
  stage_x_f16<kBulkWarps * 32>(job, job.part[0], x16, warp_ss, tid, [] { consumers_sync(); });
  const int g = lane >> 2, c = lane & 3;
  int slot = 0, tile_parity = 0;
  uint32_t phase = 0;
  for (int64_t t = blockIdx.x; t < n_tiles; t += gridDim.x) {
    const int p = tile_part(job, t);
    const KernelArgs a = part_args(job, p);
    const int64_t row0 = (t - part_first(job, p)) * kRowsPerTile;
    const bool pair_rows = pairs_rope_rows<kTiles>(job, p);
    ScaleSlot row_scale[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      row_scale[r] = {};
      if constexpr (RowScale<Op>::value) {
        const KernelArgs* ar;
        const int64_t row = tile_row<kSwiglu>(job, a, row0, g + 8 * r, pair_rows, ar);
        row_scale[r] = __ldg(reinterpret_cast<const ScaleSlot*>(ar->scales + row * ar->scale_row_bytes));
      }
    }
    float acc[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) acc[r] = 0.0f;
    for (int k = 0; k < n_chunks; ++k) {
      const int u0 = k * Stage::kUnits;
      mbar_wait(full + slot, phase);
      // Units warp, warp + 16, … of the stage: this warp's walk over u ≡ warp (mod 16) in
      // increasing order, whatever the stage width.
      const uint8_t* st = stages + slot * Stage::kBytes;
      Item<Op, kRows> it[Stage::kUnitsPerWarp];
#pragma unroll
      for (int i = 0; i < Stage::kUnitsPerWarp; ++i) {
        const int lu = warp + kBulkWarps * i, u = u0 + lu;
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          const int s = g + 8 * r;
          it[i].q[r] = Stage::slice(st, s, lu, c);
          if constexpr (kStagedScales<Op>) {
            it[i].s[r] = *reinterpret_cast<const ScaleSlot*>(st + Stage::scale(s, Op::scale_offset(u) - Op::scale_offset(u0)));
          } else {
            it[i].s[r] = row_scale[r];
          }
        }
      }
#pragma unroll
      for (int i = 0; i < Stage::kUnitsPerWarp; ++i) {
        const int u = u0 + warp + kBulkWarps * i;
        if (u < units) mma_item_sx<Op, kTiles>(it[i], x16 + u * (U / 4), c, u & 1, acc);
      }
      __syncwarp();
      if (lane == 0) mbar_arrive(empty + slot);  // this warp is done with the stage
      if (++slot == n_stages) slot = 0, phase ^= 1;
    }
    float(*part)[kTileRows] = partial[tile_parity];
    if (c == 0) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) part[warp][g + 8 * r] = acc[r];
    }
    consumers_sync();
    finish_tile<Op, kTiles, kSwiglu, kBulkWarps>(job, a, p, row0, pair_rows, part, tid);
    tile_parity ^= 1;
  }
  if (!early_trigger) pdl_trigger();
}

int sm_count() {
  static const int n = [] {
    int dev = 0, v = 0;
    IMP_CUDA_CHECK(cudaGetDevice(&dev));
    IMP_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev));
    return v;
  }();
  return n;
}

// cuTensorMapEncodeTiled through the runtime's driver entry point (no libcuda link).
PFN_cuTensorMapEncodeTiled_v12000 encode_fn() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    IMP_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q));
    if (!p || q != cudaDriverEntryPointSuccess) ::imp::fail("CUDA driver has no cuTensorMapEncodeTiled (needs CUDA 12+)");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
  }();
  return fn;
}

// base: rows of row_bytes at a stride of row_stride bytes (16-byte multiples; the stride
// exceeds the row where a row holds two planes, Q6_K), boxes of 8 rows × box_bytes.
// Unit-major (seg_bytes > 0): the row is seen as segments of seg_bytes, dimensions (8-byte
// elements of a segment, rows, segments), so a box lands in shared memory as [segment][8
// rows][seg_bytes].
void encode_rows(CUtensorMap* map, const void* base, int64_t rows, int64_t row_bytes, int64_t row_stride, int box_bytes,
                 int seg_bytes, const char* what) {
  const int rank = seg_bytes > 0 ? 3 : 2;
  const cuuint64_t dim[3] = {cuuint64_t((seg_bytes > 0 ? seg_bytes : row_bytes) / 8), cuuint64_t(rows),
                             cuuint64_t(seg_bytes > 0 ? row_bytes / seg_bytes : 1)};
  const cuuint64_t stride[2] = {cuuint64_t(row_stride), cuuint64_t(seg_bytes)};
  const cuuint32_t box[3] = {cuuint32_t((seg_bytes > 0 ? seg_bytes : box_bytes) / 8), 8,
                             cuuint32_t(seg_bytes > 0 ? box_bytes / seg_bytes : 1)};
  const cuuint32_t elem_stride[3] = {1, 1, 1};
  const CUresult r = encode_fn()(map, CU_TENSOR_MAP_DATA_TYPE_UINT64, rank, const_cast<void*>(base), dim, stride, box,
                                 elem_stride, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE,
                                 CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    ::imp::fail("cuTensorMapEncodeTiled failed ({}) for the {} of a {}-row GEMV matrix ({} bytes per row)", int(r), what,
                rows, row_bytes);
  }
}

bool colocate() {
  static const bool on = env_switch_on("IMP_CUDA_BULK_COLOCATE");
  return on;
}

// Dynamic shared memory of a co-resident one-tile CTA (alignment slack, barriers, x, stages):
// IMP_MMA_BULK_SMEM_KB, or IMP_CUDA_BULK_SMEM_KB at run time (A/B: a budget past ~113 KB no
// longer lets two GEMV CTAs share an SM, but still lets the small attention blocks in).
int smem_budget() {
  static const int bytes = [] {
    const char* e = std::getenv("IMP_CUDA_BULK_SMEM_KB");
    const int kb = e ? std::atoi(e) : 0;
    return (kb >= 32 && kb <= 200 ? kb : IMP_MMA_BULK_SMEM_KB) * 1024;
  }();
  return bytes;
}

// Stages that fit beside x: one-tile forms in smem_budget() (co-resident with the next
// kernel) when at least two do, else — and the two-tile form always — in kSmemMax.
template <class Op, int kTiles>
int bulk_stages(int64_t cols) {
  const auto fit = [&](int64_t budget) {
    const int64_t avail = budget - 256 - x_bytes(cols);
    return int(std::min<int64_t>(kMaxStages, std::max<int64_t>(0, avail / BulkStage<Op, kTiles>::kBytes)));
  };
  const int n = kTiles == 1 && colocate() ? fit(smem_budget()) : 0;
  return n >= 2 ? n : fit(kSmemMax);
}

// False (nothing launched) when fewer than two stages fit beside x.
template <class Op, int kTiles, bool kSwiglu>
bool launch_bulk(MmaJob job, cudaStream_t stream) {
  static_assert(kBarrierBytes <= 128, "barriers precede x in the first 128 bytes");
  const int stages = bulk_stages<Op, kTiles>(job.part[0].cols);
  if (stages < 2) return false;
  const int64_t tiles = assign_tiles(job, kTiles, kSwiglu);
  if (tiles == 0) return true;
  static bool attr_set = false;  // per instantiation; idempotent, so a race is harmless
  if (!attr_set) {
    IMP_CUDA_CHECK(cudaFuncSetAttribute(gemv_mma_bulk_kernel<Op, kTiles, kSwiglu>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemMax));
    attr_set = true;
  }
  MapsOf<Op> maps = {};
  for (int i = 0; i < job.n_parts; ++i) {
    const KernelArgs& a = job.part[i];
    using Stage = BulkStage<Op, kTiles>;
    if constexpr (kHasHiPlane<Op>) {
      const int64_t lo_bytes = mma_layout::hi_plane(a.cols);
      encode_rows(&maps.q[i], a.data, a.rows, lo_bytes, a.data_row_bytes, Stage::kRowBytes, mma_layout::kUnitBytes,
                  "payload");
      encode_rows(&maps.h[i], a.data + lo_bytes, a.rows, a.data_row_bytes - lo_bytes, a.data_row_bytes,
                  Stage::kHiRowBytes, Stage::kHiUnitBytes, "high-bit plane");
    } else {
      encode_rows(&maps.q[i], a.data, a.rows, a.data_row_bytes, a.data_row_bytes, Stage::kRowBytes,
                  kUnitMajor<Op> ? mma_layout::kUnitBytes : 0, "payload");
    }
    if (kStagedScales<Op>) {
      encode_rows(&maps.s[i], a.scales, a.rows, a.scale_row_bytes, a.scale_row_bytes, Stage::kScaleRowBytes, 0, "scales");
    }
  }
  // 128 bytes of alignment slack, 128 of barriers, x, the stages.
  const size_t smem = size_t(256 + x_bytes(job.part[0].cols) + int64_t(stages) * BulkStage<Op, kTiles>::kBytes);
  const unsigned grid = unsigned(std::min<int64_t>(tiles, sm_count()));
  // Early trigger only where the CTA leaves room beside it (one tile, within the budget).
  const bool early = kTiles == 1 && colocate() && smem <= size_t(smem_budget());
  launch_pdl(gemv_mma_bulk_kernel<Op, kTiles, kSwiglu>, dim3(grid), dim3(kBulkThreads), smem, stream, job, maps, tiles,
             stages, early);
  IMP_CUDA_CHECK_LAUNCH();
  return true;
}

template <class Op>
void launch_one(const DeviceMatrix& w, const float* x, float* y, cudaStream_t stream, GemvOut out) {
  MmaJob job;
  job.part[0] = make_args(w, x, y, out);
  launch_bulk<Op, 1, false>(job, stream);  // check_bulk guaranteed the stages
}

// Whole units, x in the shared buffer, tensor maps over the planes: 16-byte aligned bases and
// row strides.
template <class Op>
KernelCheck check_bulk(const DeviceMatrix& w, const float* x, const float*) {
  constexpr int U = Op::kChunks * 16;
  if (w.cols > kSxMaxCols) return {false, "rows longer than the shared x buffer (32768 columns)"};
  if (bulk_stages<Op, 2>(w.cols) < 2) return {false, "fewer than two pipeline stages fit beside x"};
  const KernelArgs a = make_args(w, x, nullptr);
  KernelCheck shape = all_of({check_cols_multiple(w.cols, U, "the kMma layout's unit"),
                              check_aligned(w.data, 16, "payload"), check_aligned(x, 16, "x")});
  if (!shape.ok) return shape;
  if (a.data_row_bytes % 16 != 0) return {false, "payload rows are not a multiple of 16 bytes"};
  if (kStagedScales<Op>) {
    if (a.scale_row_bytes % 16 != 0) return {false, "scale rows are not a multiple of 16 bytes"};
    return check_aligned(w.scales, 16, "scale plane");
  }
  if (RowScale<Op>::value) return check_aligned(w.scales, 4, "scale plane");
  return shape;
}

constexpr WeightLayout M = WeightLayout::kMma;
constexpr WeightLayout N = WeightLayout::kNative;
const GemvKernel kBulkKernels[] = {
    {"q4_0_mma_bulk", FormatId::Q4_0, M, check_bulk<Q4_0Mma>, launch_one<Q4_0Mma>, false, true},
    {"q4_k_mma_bulk", FormatId::Q4_K, M, check_bulk<Q4_KMma>, launch_one<Q4_KMma>, false, true},
    {"q5_k_mma_bulk", FormatId::Q5_K, M, check_bulk<Q5_KMma>, launch_one<Q5_KMma>, false, true},
    {"q6_k_mma_bulk", FormatId::Q6_K, M, check_bulk<Q6_KMma>, launch_one<Q6_KMma>, false, true},
    {"q8_0_mma_bulk", FormatId::Q8_0, M, check_bulk<Q8_0Mma>, launch_one<Q8_0Mma>, false, true},
    {"nvfp4_ckpt_mma_bulk", FormatId::NVFP4_CKPT, M, check_bulk<Nvfp4CkptMma>, launch_one<Nvfp4CkptMma>, false, true},
    {"mxfp4_ckpt_mma_bulk", FormatId::MXFP4_CKPT, M, check_bulk<Mxfp4CkptMma>, launch_one<Mxfp4CkptMma>, false, true},
    {"fp8_e4m3_tensor_mma_bulk", FormatId::FP8_E4M3_TENSOR, N, check_bulk<Fp8Mma<false>>, launch_one<Fp8Mma<false>>,
     false, true},
    {"fp8_e4m3_channel_mma_bulk", FormatId::FP8_E4M3_CHANNEL, N, check_bulk<Fp8Mma<true>>, launch_one<Fp8Mma<true>>,
     false, true},
};

template <class Op>
bool launch_job(const MmaJob& job, bool swiglu, cudaStream_t stream) {
  return swiglu ? launch_bulk<Op, 2, true>(job, stream) : launch_bulk<Op, 1, false>(job, stream);
}

}  // namespace

std::vector<GemvKernel> mma_bulk_gemv_kernels() { return {std::begin(kBulkKernels), std::end(kBulkKernels)}; }

bool launch_mma_bulk(FormatId format, MmaJob job, bool swiglu, cudaStream_t stream) {
  switch (format) {
    case FormatId::Q4_0: return launch_job<Q4_0Mma>(job, swiglu, stream);
    case FormatId::Q4_K: return launch_job<Q4_KMma>(job, swiglu, stream);
    case FormatId::Q5_K: return launch_job<Q5_KMma>(job, swiglu, stream);
    case FormatId::Q6_K: return launch_job<Q6_KMma>(job, swiglu, stream);
    case FormatId::Q8_0: return launch_job<Q8_0Mma>(job, swiglu, stream);
    case FormatId::NVFP4_CKPT: return launch_job<Nvfp4CkptMma>(job, swiglu, stream);
    case FormatId::MXFP4_CKPT: return launch_job<Mxfp4CkptMma>(job, swiglu, stream);
    case FormatId::FP8_E4M3_TENSOR: return launch_job<Fp8Mma<false>>(job, swiglu, stream);
    case FormatId::FP8_E4M3_CHANNEL: return launch_job<Fp8Mma<true>>(job, swiglu, stream);
    default: return false;
  }
}

}  // namespace imp::cuda::detail
