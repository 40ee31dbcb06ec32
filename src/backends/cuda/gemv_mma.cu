// Tensor-core decode GEMV for the 4- and 8-bit block formats on the kMma layout
// (gemv_mma_layout.h), and for FP8 E4M3 per tensor / per channel on its native row-major
// layout (Fp8Mma): y[rows] = W · x with x rounded to f16 and every weight decoded by a
// few bit operations into an exact f16 A fragment of mma.sync.m16n8k16 (f32 accumulate).
// The N dimension of the MMA is unused: B holds x in all 8 columns, so C's columns are 8
// copies of the same dot products.
//
// Why: the FP32-activation kernels (gemv_gguf.cu, gemv_fp4.cu) spend ~5 FP32 instructions
// per 4-bit weight (decode, convert, FMA) and are bound by instruction issue at 0.3–0.6 of
// HBM bandwidth; here one MMA does 256 multiply-adds and the decode is ~1 instruction per
// weight.
//
// Numerics: the only rounding beyond FP32 accumulation is x → f16 (round to nearest,
// relative 2^-11 per element, saturating at ±65504 so an outlier cannot become Inf).
// Weights are exact: Q4_0 / Q8_0 codes enter as the integers q − 8 / q, NVFP4 / MXFP4
// codes as E2M1·2^-6, and the block scale multiplies the MMA's block sum in FP32 (the MMA
// over one scale block starts from a zero accumulator). Against the FP64 dot of the
// reference dequantization with the f16-rounded x, y differs only by FP32 summation order.
//
// Work split: a CTA of 8 warps owns 16·kTiles rows; the warps take the row's 64-byte units
// round-robin (split-K inside the CTA) and add their partial sums in shared memory at the
// end. Each thread loads its 16 payload bytes per row and unit with one streaming load and
// requests the next step's units before decoding the current ones. x is read per unit as
// one float4 per chunk (L1-resident after the first warp) and converted in registers,
// shared by the unit's rows.
// (Measured on an H200, 2026-12-02: this beat a persistent-CTA variant with a cp.async
// ring in shared memory by 1.3–1.6×; the ring's per-tile barriers and shared-memory
// traffic cost more than the latency it hid.)
// Three forms, first choice first: the TMA-fed persistent kernel (gemv_mma_bulk.cu,
// "*_mma_bulk"), the shared-x kernel here ("*_mma_sx": rows the tensor maps cannot describe)
// and the register-x kernel ("*_mma": rows longer than the 32768-column x buffer). All three
// share the per-unit work and epilogues of gemv_mma_tile.cuh.
#include <string>
#include <string_view>

#include "backends/cuda/cp_async.cuh"
#include "backends/cuda/gemv_mma_elem.cuh"
#include "backends/cuda/gemv_mma_tile.cuh"
#include "backends/cuda/pdl.cuh"

namespace imp::cuda::detail {
namespace {

constexpr int kMmaWarps = 8;
constexpr int kMmaThreads = kMmaWarps * 32;

// The MMAs of scale group grp of one tile: D = Σ over the group's chunks of A(rows g, g+8)·x.
template <class Op>
__device__ __forceinline__ void group_mma(float (&d)[4], const uint32_t (&lo)[Op::kChunks][2],
                                          const uint32_t (&hi)[Op::kChunks][2], const uint32_t (&b)[Op::kChunks][2],
                                          int grp) {
  d[0] = d[1] = d[2] = d[3] = 0.0f;
#pragma unroll
  for (int j2 = 0; j2 < Op::kGroupChunks; ++j2) {
    const int j = grp * Op::kGroupChunks + j2;
    mma_16816(d, lo[j][0], hi[j][0], lo[j][1], hi[j][1], b[j][0], b[j][1]);
  }
}

// The MMAs of one unit: x fragments b (shared by the rows), the item's rows, into acc.
template <class Op, int kTiles>
__device__ __forceinline__ void mma_item(const Item<Op, 2 * kTiles>& it, const uint32_t (&b)[Op::kChunks][2], int half,
                                         float (&acc)[2 * kTiles]) {
  constexpr int kGroups = Op::kChunks / Op::kGroupChunks;
  if constexpr (Op::kMins) {
    // Σ x of each sub-block (identical for every row): an MMA with A = 1.0.
    constexpr uint32_t kOnes = 0x3C003C00u;
    float xs[kGroups];
#pragma unroll
    for (int grp = 0; grp < kGroups; ++grp) {
      float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
      for (int j2 = 0; j2 < Op::kGroupChunks; ++j2) {
        const int j = grp * Op::kGroupChunks + j2;
        mma_16816(d, kOnes, kOnes, kOnes, kOnes, b[j][0], b[j][1]);
      }
      xs[grp] = d[0];
    }
#pragma unroll
    for (int t = 0; t < kTiles; ++t) {
      const int r0 = 2 * t, r1 = 2 * t + 1;
      uint32_t lo[Op::kChunks][2], hi[Op::kChunks][2];
      Op::decode(it.q[r0], lo);
      Op::decode(it.q[r1], hi);
      float sc_lo[kGroups], m_lo[kGroups], sc_hi[kGroups], m_hi[kGroups], d_lo, dmin_lo, d_hi, dmin_hi;
      Op::scales_mins(it.s[r0], half, sc_lo, m_lo, d_lo, dmin_lo);
      Op::scales_mins(it.s[r1], half, sc_hi, m_hi, d_hi, dmin_hi);
      float q_lo = 0.0f, q_hi = 0.0f, mx_lo = 0.0f, mx_hi = 0.0f;
#pragma unroll
      for (int grp = 0; grp < kGroups; ++grp) {
        float d[4];
        group_mma<Op>(d, lo, hi, b, grp);
        q_lo = fmaf(sc_lo[grp], d[0], q_lo);
        q_hi = fmaf(sc_hi[grp], d[2], q_hi);
        mx_lo = fmaf(m_lo[grp], xs[grp], mx_lo);
        mx_hi = fmaf(m_hi[grp], xs[grp], mx_hi);
      }
      acc[r0] += fmaf(d_lo, q_lo, -dmin_lo * mx_lo);
      acc[r1] += fmaf(d_hi, q_hi, -dmin_hi * mx_hi);
    }
  } else {
#pragma unroll
    for (int t = 0; t < kTiles; ++t) {
      const int r0 = 2 * t, r1 = 2 * t + 1;  // rows g + 16t and g + 16t + 8
      uint32_t lo[Op::kChunks][2], hi[Op::kChunks][2];
      Op::decode(it.q[r0], lo);
      Op::decode(it.q[r1], hi);
      float s_lo[kGroups], s_hi[kGroups];
      Op::scales(it.s[r0], s_lo);
      Op::scales(it.s[r1], s_hi);
#pragma unroll
      for (int grp = 0; grp < kGroups; ++grp) {
        float d[4];
        group_mma<Op>(d, lo, hi, b, grp);
        acc[r0] = fmaf(s_lo[grp], d[0], acc[r0]);
        acc[r1] = fmaf(s_hi[grp], d[2], acc[r1]);
      }
    }
  }
}

// A CTA owns 16·kTiles rows; its 8 warps take the row's units round-robin (split-K inside
// the CTA), kU units per step, and request the next step's weights before decoding the
// current ones (double buffering in registers: 2·kU items in flight per warp).
// IMP_MMA_MINB: minimum resident CTAs per SM asked of the register allocator (1 = as
// many registers as the kernel wants; scripts/gpu-gemv-variants.sh builds others).
#ifndef IMP_MMA_MINB
#define IMP_MMA_MINB 1
#endif
template <class Op, int kTiles, int kU, bool kSwiglu>
__global__ void __launch_bounds__(kMmaThreads, IMP_MMA_MINB) gemv_mma_kernel(MmaJob job) {
  constexpr int kRows = 2 * kTiles, kTileRows = 16 * kTiles, U = Op::kChunks * 16;
  static_assert(!kSwiglu || kTiles == 2, "the SwiGLU form pairs a gate tile with an up tile");
  constexpr int kRowsPerCta = kSwiglu ? 16 : kTileRows;
  __shared__ float partial[kMmaWarps][kTileRows];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, c = lane & 3;
  const int p = tile_part(job, blockIdx.x);
  const KernelArgs a = part_args(job, p);
  const int units = int(a.cols / U);
  const int64_t row0 = (int64_t(blockIdx.x) - part_first(job, p)) * kRowsPerCta;
  const uint8_t* pq[kRows];
  const uint8_t* ps[kRows];
  const int64_t hi_off = hi_slice_offset<Op>(a.cols, c);
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const KernelArgs* ar;
    const int64_t row = tile_row<kSwiglu>(job, a, row0, g + 8 * r, false, ar);
    pq[r] = ar->data + row * ar->data_row_bytes + 16 * c;
    ps[r] = ar->scales + row * ar->scale_row_bytes;
  }
  float acc[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) acc[r] = 0.0f;

  constexpr int kStep = kMmaWarps * kU;  // units per step of the CTA
  Item<Op, kRows> next[kU];
#pragma unroll
  for (int i = 0; i < kU; ++i) {
    if (warp + kMmaWarps * i < units) load_item(next[i], pq, ps, warp + kMmaWarps * i, hi_off);
  }
  pdl_wait();  // x and y belong to the previous kernels; the weights above do not
  for (int u0 = warp; u0 < units; u0 += kStep) {
    Item<Op, kRows> cur[kU];
#pragma unroll
    for (int i = 0; i < kU; ++i) cur[i] = next[i];
#pragma unroll
    for (int i = 0; i < kU; ++i) {
      if (u0 + kStep + kMmaWarps * i < units) load_item(next[i], pq, ps, u0 + kStep + kMmaWarps * i, hi_off);
    }
#pragma unroll
    for (int i = 0; i < kU; ++i) {
      const int u = u0 + kMmaWarps * i;
      if (u < units) {
        // x: one float4 per chunk (columns 4c … 4c+3), f16 with saturation.
        const float* xp = a.x + int64_t(u) * U;
        uint32_t b[Op::kChunks][2];
#pragma unroll
        for (int j = 0; j < Op::kChunks; ++j) {
          const float4 v = __ldg(reinterpret_cast<const float4*>(xp + Op::x_col(c, j)));
          b[j][0] = f16x2_sat(v.x, v.y);
          b[j][1] = f16x2_sat(v.z, v.w);
        }
        mma_item<Op, kTiles>(cur[i], b, u & 1, acc);
      }
    }
  }
  pdl_trigger();
  if (c == 0) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) partial[warp][g + 8 * r] = acc[r];
  }
  __syncthreads();
  finish_tile<Op, kTiles, kSwiglu, kMmaWarps>(job, a, p, row0, false, partial, tid);
}

// ---- the shared-x form ----------------------------------------------------------------
// Each CTA first requests its first weights, then converts x once into shared memory as
// f16 (cols · 2 bytes; every lane of a quad then reads its 4 columns of a chunk with one
// 8-byte shared load instead of a float4 global load and two conversions per row pair),
// and decodes one scale group at a time so that only that group's A fragments are live.
// Op::kRingStages = S > 0: each warp streams its units through a private ring of S stages
// in shared memory (cp.async) instead of double-buffered registers: S units per warp in
// flight, no registers held by them, no CTA barrier per stage (a lane reads back only the
// bytes it copied). Capped so one CTA's ring stays within kRingMaxBytes.
// Measured on an H200 (2026-12-03, scripts/gpu-gemv-variants.sh, S = 2/4/8): FP8 gains
// (14336×4096 0.69 → 0.75 of copy bandwidth, 128256×4096 0.78 → 0.91 with S = 4); the
// 4-bit formats lose half (0.51 → 0.26): per 16 payload bytes they add 1–3 cp.async and a
// shared load to the x fragment reads already there, and stall on the MIO queue. So FP8
// rings, the block formats keep registers. IMP_MMA_RING=S overrides for experiments.
constexpr int kRingMaxBytes = 96 * 1024;
template <class Op, int kRows>
struct Ring {
#ifdef IMP_MMA_RING
  static constexpr int kWanted = IMP_MMA_RING;
#else
  static constexpr int kWanted = Op::kRingStages;
#endif
  static constexpr int kStageBytes = kMmaWarps * kRows * 32 * int(16 + sizeof(typename Op::ScaleSlot));
  static constexpr int kStages = kWanted < kRingMaxBytes / kStageBytes ? kWanted : kRingMaxBytes / kStageBytes;
  static constexpr int kBytes = kStages * kStageBytes;
};

// Resident CTAs per SM asked of the register allocator: 3 fit the one-tile form in 80
// registers without spills (Q4_K and Q6_K excepted: Q4_K's scale unpacking and Q6_K's
// second payload plane need more — at 80 Q6_K spilled 204 bytes); the two-tile
// form spills below ~110. scripts/gpu-gemv-variants.sh measures other values.
#ifndef IMP_MMA_SX_MINB_SMALL
#define IMP_MMA_SX_MINB_SMALL 3
#endif
#ifndef IMP_MMA_SX_MINB_TALL
#define IMP_MMA_SX_MINB_TALL 2
#endif
template <class Op, int kTiles, int kU, bool kSwiglu>
__global__ void __launch_bounds__(kMmaThreads, kTiles == 1 ? (Op::kMins || kHasHiPlane<Op> ? 2 : IMP_MMA_SX_MINB_SMALL)
                                                             : IMP_MMA_SX_MINB_TALL)
    gemv_mma_sx_kernel(MmaJob job) {
  constexpr int kRows = 2 * kTiles, kTileRows = 16 * kTiles, U = Op::kChunks * 16;
  static_assert(!kSwiglu || kTiles == 2, "the SwiGLU form pairs a gate tile with an up tile");
  constexpr int kRowsPerCta = kSwiglu ? 16 : kTileRows;
  extern __shared__ uint2 x16[];  // x16[i] = columns 4i … 4i+3 as two f16 pairs
  __shared__ float partial[kMmaWarps][kTileRows];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, c = lane & 3;
  const int p = tile_part(job, blockIdx.x);
  const KernelArgs a = part_args(job, p);
  const int units = int(a.cols / U);
  const int64_t row0 = (int64_t(blockIdx.x) - part_first(job, p)) * kRowsPerCta;
  // Half-split RoPE pairs its rows across the head (rope_pair_row); one-tile form only.
  const bool pair_rows = pairs_rope_rows<kTiles>(job, p);
  const uint8_t* pq[kRows];
  const uint8_t* ps[kRows];
  const int64_t hi_off = hi_slice_offset<Op>(a.cols, c);
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const KernelArgs* ar;
    const int64_t row = tile_row<kSwiglu>(job, a, row0, g + 8 * r, pair_rows, ar);
    pq[r] = ar->data + row * ar->data_row_bytes + 16 * c;
    ps[r] = ar->scales + row * ar->scale_row_bytes;
  }
  constexpr int kStep = kMmaWarps * kU;
  constexpr int kRingStages = Ring<Op, kRows>::kStages;
  Item<Op, kRows> next[kRingStages > 0 ? 1 : kU];
  // The ring (kRingStages > 0) follows x16 in dynamic shared memory: this warp's stages,
  // payload slots then scale slots, [stage][row][lane].
  using ScaleSlot = typename Op::ScaleSlot;
  uint4* const ring_q = reinterpret_cast<uint4*>(x16 + job.part[0].cols / 4) + warp * kRingStages * kRows * 32;
  ScaleSlot* const ring_s = reinterpret_cast<ScaleSlot*>(reinterpret_cast<uint4*>(x16 + job.part[0].cols / 4) +
                                                         kMmaWarps * kRingStages * kRows * 32) +
                            warp * kRingStages * kRows * 32;
  // Unit k of this warp (warp + 8k) into slot k mod S; one commit group per k, empty past
  // the end so that the wait count stays uniform.
  auto ring_issue = [&](int k) {
    const int u = warp + kMmaWarps * k;
    if (kRingStages > 0 && u < units) {
      const int slot = k % (kRingStages > 0 ? kRingStages : 1);
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        cp_async16(ring_q + (slot * kRows + r) * 32 + lane, pq[r] + int64_t(u) * mma_layout::kUnitBytes);
#pragma unroll
        for (int b = 0; b < Op::kScaleBytes; b += 4) {
          cp_async_ca<4>(reinterpret_cast<uint8_t*>(ring_s + (slot * kRows + r) * 32 + lane) + b,
                    ps[r] + Op::scale_offset(u) + b);
        }
      }
    }
    cp_async_commit();
  };
  if constexpr (kRingStages > 0) {
    for (int k = 0; k + 1 < kRingStages; ++k) ring_issue(k);
  } else {
#pragma unroll
    for (int i = 0; i < kU; ++i) {
      if (warp + kMmaWarps * i < units) load_item(next[i], pq, ps, warp + kMmaWarps * i, hi_off);
    }
  }
  pdl_wait();  // x and y belong to the previous kernels; the weights above do not
  // x → f16 in shared memory while the first weights are in flight.
  __shared__ float warp_ss[kMmaWarps];
  stage_x_f16<kMmaThreads>(job, a, x16, warp_ss, tid, [] { __syncthreads(); });
  float acc[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) acc[r] = 0.0f;
  if constexpr (kRingStages > 0) {
    const int n_mine = units > warp ? (units - warp + kMmaWarps - 1) / kMmaWarps : 0;
    for (int k = 0; k < n_mine; ++k) {
      ring_issue(k + kRingStages - 1);
      cp_async_wait<kRingStages - 1>();  // this lane's copies of unit k have landed
      const int slot = k % kRingStages, u = warp + kMmaWarps * k;
      Item<Op, kRows> it;
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        it.q[r] = ring_q[(slot * kRows + r) * 32 + lane];
        it.s[r] = ring_s[(slot * kRows + r) * 32 + lane];
      }
      mma_item_sx<Op, kTiles>(it, x16 + u * (U / 4), c, u & 1, acc);
    }
  } else {
  for (int u0 = warp; u0 < units; u0 += kStep) {
    Item<Op, kRows> cur[kU];
#pragma unroll
    for (int i = 0; i < kU; ++i) cur[i] = next[i];
#pragma unroll
    for (int i = 0; i < kU; ++i) {
      if (u0 + kStep + kMmaWarps * i < units) load_item(next[i], pq, ps, u0 + kStep + kMmaWarps * i, hi_off);
    }
#pragma unroll
    for (int i = 0; i < kU; ++i) {
      const int u = u0 + kMmaWarps * i;
      if (u < units) mma_item_sx<Op, kTiles>(cur[i], x16 + u * (U / 4), c, u & 1, acc);
    }
  }
  }
  pdl_trigger();
  if (c == 0) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) partial[warp][g + 8 * r] = acc[r];
  }
  __syncthreads();
  finish_tile<Op, kTiles, kSwiglu, kMmaWarps>(job, a, p, row0, pair_rows, partial, tid);
}

template <class Op, int kTiles, int kU, bool kSwiglu, bool kSx>
void launch_job(MmaJob job, cudaStream_t stream) {
  const int64_t blocks = assign_tiles(job, kTiles, kSwiglu);  // one CTA per tile
  if (kSx) {
    static bool attr_set = false;  // per instantiation; idempotent, so a race is harmless
    constexpr int kRingBytes = Ring<Op, 2 * kTiles>::kBytes;
    if (!attr_set) {
      IMP_CUDA_CHECK(cudaFuncSetAttribute(gemv_mma_sx_kernel<Op, kTiles, kU, kSwiglu>,
                                          cudaFuncAttributeMaxDynamicSharedMemorySize, kSxMaxCols * 2 + kRingBytes));
      attr_set = true;
    }
    const size_t smem = size_t(job.part[0].cols) * 2 + kRingBytes;
    launch_pdl(gemv_mma_sx_kernel<Op, kTiles, kU, kSwiglu>, dim3(unsigned(blocks)), dim3(kMmaThreads), smem, stream, job);
  } else {
    launch_pdl(gemv_mma_kernel<Op, kTiles, kU, kSwiglu>, dim3(unsigned(blocks)), dim3(kMmaThreads), 0, stream, job);
  }
  IMP_CUDA_CHECK_LAUNCH();
}

// Two 16-row tiles per CTA halve the x loads and the loop overhead per weight, but below
// ~16k rows they leave too few CTAs to fill 132 SMs; there one tile, two units per step.
// (The units per step, kU, set the bytes each thread has in flight; IMP_MMA_TALL_KU /
// IMP_MMA_SMALL_KU / IMP_MMA_SWIGLU_KU let scripts/gpu-gemv-variants.sh build variants.)
#ifndef IMP_MMA_TALL_KU
#define IMP_MMA_TALL_KU 1
#endif
#ifndef IMP_MMA_SMALL_KU
#define IMP_MMA_SMALL_KU 2
#endif
#ifndef IMP_MMA_SWIGLU_KU
#define IMP_MMA_SWIGLU_KU 1
#endif
template <class Op, bool kSx>
void launch_job_sized(const MmaJob& job, int64_t total_rows, cudaStream_t stream) {
  if (total_rows >= 16384) {
    launch_job<Op, 2, IMP_MMA_TALL_KU, false, kSx>(job, stream);
  } else {
    launch_job<Op, 1, IMP_MMA_SMALL_KU, false, kSx>(job, stream);
  }
}

template <class Op, bool kSx>
void launch_mma(const DeviceMatrix& w, const float* x, float* y, cudaStream_t stream, GemvOut out) {
  MmaJob job;
  job.part[0] = make_args(w, x, y, out);
  launch_job_sized<Op, kSx>(job, w.rows, stream);
}

KernelCheck check_mma(const DeviceMatrix& w, const float* x, const float*) {
  const int U = mma_layout::unit_cols(w.format);
  return all_of({check_cols_multiple(w.cols, U, "the kMma layout's unit"), check_aligned(w.data, 16, "payload plane"),
                 check_aligned(w.scales, unit_scale_bytes(w.format) >= 16 ? 16 : 8, "scale plane"),
                 check_aligned(x, 16, "x")});
}

KernelCheck check_mma_sx(const DeviceMatrix& w, const float* x, const float* y) {
  if (w.cols > kSxMaxCols) return {false, "rows longer than the shared x buffer (32768 columns)"};
  return check_mma(w, x, y);
}

// FP8 on its native layout: whole 64-column units, 16-byte rows and x.
KernelCheck check_fp8_mma(const DeviceMatrix& w, const float* x, const float*) {
  const KernelCheck shape = all_of({check_cols_multiple(w.cols, 64, "the tensor-core FP8 unit"),
                                    check_aligned(w.data, 16, "payload"), check_aligned(x, 16, "x")});
  if (!shape.ok || w.format != FormatId::FP8_E4M3_CHANNEL) return shape;
  return check_aligned(w.scales, 4, "scale plane");
}
KernelCheck check_fp8_mma_sx(const DeviceMatrix& w, const float* x, const float* y) {
  if (w.cols > kSxMaxCols) return {false, "rows longer than the shared x buffer (32768 columns)"};
  return check_fp8_mma(w, x, y);
}

KernelCheck check_any_mma(const DeviceMatrix&, const float* x, const float*) { return check_aligned(x, 4, "x"); }

constexpr WeightLayout M = WeightLayout::kMma;
constexpr WeightLayout N = WeightLayout::kNative;
const GemvKernel kKernels[] = {
    {"q4_0_mma_sx", FormatId::Q4_0, M, check_mma_sx, launch_mma<Q4_0Mma, true>, false, true},
    {"q4_0_mma", FormatId::Q4_0, M, check_mma, launch_mma<Q4_0Mma, false>, false, true},
    {"q4_0_mma_elem", FormatId::Q4_0, M, check_any_mma, launch_elem<MmaElem<FormatId::Q4_0>>},
    {"q4_k_mma_sx", FormatId::Q4_K, M, check_mma_sx, launch_mma<Q4_KMma, true>, false, true},
    {"q4_k_mma", FormatId::Q4_K, M, check_mma, launch_mma<Q4_KMma, false>, false, true},
    {"q4_k_mma_elem", FormatId::Q4_K, M, check_any_mma, launch_elem<MmaElem<FormatId::Q4_K>>},
    {"q5_k_mma_sx", FormatId::Q5_K, M, check_mma_sx, launch_mma<Q5_KMma, true>, false, true},
    {"q5_k_mma", FormatId::Q5_K, M, check_mma, launch_mma<Q5_KMma, false>, false, true},
    {"q5_k_mma_elem", FormatId::Q5_K, M, check_any_mma, launch_elem<MmaElem<FormatId::Q5_K>>},
    {"q6_k_mma_sx", FormatId::Q6_K, M, check_mma_sx, launch_mma<Q6_KMma, true>, false, true},
    {"q6_k_mma", FormatId::Q6_K, M, check_mma, launch_mma<Q6_KMma, false>, false, true},
    {"q6_k_mma_elem", FormatId::Q6_K, M, check_any_mma, launch_elem<MmaElem<FormatId::Q6_K>>},
    {"q8_0_mma_sx", FormatId::Q8_0, M, check_mma_sx, launch_mma<Q8_0Mma, true>, false, true},
    {"q8_0_mma", FormatId::Q8_0, M, check_mma, launch_mma<Q8_0Mma, false>, false, true},
    {"q8_0_mma_elem", FormatId::Q8_0, M, check_any_mma, launch_elem<MmaElem<FormatId::Q8_0>>},
    {"nvfp4_ckpt_mma_sx", FormatId::NVFP4_CKPT, M, check_mma_sx, launch_mma<Nvfp4CkptMma, true>, false, true},
    {"nvfp4_ckpt_mma", FormatId::NVFP4_CKPT, M, check_mma, launch_mma<Nvfp4CkptMma, false>, false, true},
    {"nvfp4_ckpt_mma_elem", FormatId::NVFP4_CKPT, M, check_any_mma, launch_elem<MmaElem<FormatId::NVFP4_CKPT>>},
    {"mxfp4_ckpt_mma_sx", FormatId::MXFP4_CKPT, M, check_mma_sx, launch_mma<Mxfp4CkptMma, true>, false, true},
    {"mxfp4_ckpt_mma", FormatId::MXFP4_CKPT, M, check_mma, launch_mma<Mxfp4CkptMma, false>, false, true},
    {"mxfp4_ckpt_mma_elem", FormatId::MXFP4_CKPT, M, check_any_mma, launch_elem<MmaElem<FormatId::MXFP4_CKPT>>},
    {"fp8_e4m3_tensor_mma_sx", FormatId::FP8_E4M3_TENSOR, N, check_fp8_mma_sx, launch_mma<Fp8Mma<false>, true>, false, true},
    {"fp8_e4m3_tensor_mma", FormatId::FP8_E4M3_TENSOR, N, check_fp8_mma, launch_mma<Fp8Mma<false>, false>, false, true},
    {"fp8_e4m3_channel_mma_sx", FormatId::FP8_E4M3_CHANNEL, N, check_fp8_mma_sx, launch_mma<Fp8Mma<true>, true>, false, true},
    {"fp8_e4m3_channel_mma", FormatId::FP8_E4M3_CHANNEL, N, check_fp8_mma, launch_mma<Fp8Mma<true>, false>, false, true},
};


// The fused forms, by format: false when the format has no tensor-core kernel.
template <class Fn>
bool with_op(FormatId f, Fn&& fn) {
  switch (f) {
    case FormatId::Q4_0: fn(Q4_0Mma{}); return true;
    case FormatId::Q4_K: fn(Q4_KMma{}); return true;
    case FormatId::Q5_K: fn(Q5_KMma{}); return true;
    case FormatId::Q6_K: fn(Q6_KMma{}); return true;
    case FormatId::Q8_0: fn(Q8_0Mma{}); return true;
    case FormatId::NVFP4_CKPT: fn(Nvfp4CkptMma{}); return true;
    case FormatId::MXFP4_CKPT: fn(Mxfp4CkptMma{}); return true;
    case FormatId::FP8_E4M3_TENSOR: fn(Fp8Mma<false>{}); return true;
    case FormatId::FP8_E4M3_CHANNEL: fn(Fp8Mma<true>{}); return true;
    default: return false;
  }
}

// Which fused form serves these matrices: each must be served by its format's tensor-core
// kernel (layout, shape, alignment, the kill list), all share the format and the row
// length; the form is that of the first kernel that serves them ("*_mma_bulk",
// "*_mma_sx" or the register-x "*_mma").
enum class Fusable { kNo, kRegisterX, kSharedX, kBulk };
Fusable form_of(std::string_view name) {
  auto ends = [&](std::string_view suffix) {
    return name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
  };
  return ends("_bulk") ? Fusable::kBulk : ends("_sx") ? Fusable::kSharedX : Fusable::kRegisterX;
}
Fusable fusable(const DeviceMatrix* w, int n, const float* x, float* const* y) {
  static const std::vector<GemvKernel> kernels = mma_gemv_kernels();
  Fusable form = Fusable::kNo;
  for (int i = 0; i < n; ++i) {
    if (w[i].format != w[0].format || w[i].cols != w[0].cols) return Fusable::kNo;
    const GemvKernel* first = nullptr;
    for (const GemvKernel& k : kernels) {
      if (k.half_x && k.format == w[i].format && can_implement(k, w[i], x, y[i]).ok) {
        first = &k;
        break;
      }
    }
    if (!first) return Fusable::kNo;
    const Fusable f = form_of(first->name);
    if (i > 0 && f != form) return Fusable::kNo;
    form = f;
  }
  return form;
}
}  // namespace

// The bulk-copy kernels first: preferred wherever they can implement.
std::vector<GemvKernel> mma_gemv_kernels() {
  std::vector<GemvKernel> v = mma_bulk_gemv_kernels();
  v.insert(v.end(), std::begin(kKernels), std::end(kKernels));
  return v;
}

}  // namespace imp::cuda::detail

namespace imp::cuda {

namespace {
// The fusions the chosen form can do: the norm needs the shared-x form and an aligned gain.
bool fusion_ok(detail::Fusable form, const GemvFusion& f) {
  if (!f.norm_gain) return true;
  return form != detail::Fusable::kRegisterX && reinterpret_cast<uintptr_t>(f.norm_gain) % 16 == 0;
}
}  // namespace

bool gemv_mma_fused(const DeviceMatrix* w, int n, const float* x, float* const* y, cudaStream_t stream,
                    const GemvFusion& fusion) {
  if (n < 1 || n > 3) return false;
  const detail::Fusable form = detail::fusable(w, n, x, y);
  if (form == detail::Fusable::kNo || !fusion_ok(form, fusion)) return false;
  detail::MmaJob job;
  job.n_parts = n;
  job.norm_gain = fusion.norm_gain;
  job.norm_eps = fusion.norm_eps;
  job.next_weights = fusion.next_weights;
  int64_t rows = 0;
  for (int i = 0; i < n; ++i) {
    job.part[i] = detail::make_args(w[i], x, y[i], fusion.out);
    rows += w[i].rows;
  }
  if (form == detail::Fusable::kBulk && detail::launch_mma_bulk(w[0].format, job, false, stream)) return true;
  const bool sx = form != detail::Fusable::kRegisterX;
  return detail::with_op(w[0].format, [&](auto op) {
    if (sx) {
      detail::launch_job_sized<decltype(op), true>(job, rows, stream);
    } else {
      detail::launch_job_sized<decltype(op), false>(job, rows, stream);
    }
  });
}

bool gemv_mma_swiglu(const DeviceMatrix& gate, const DeviceMatrix& up, const float* x, float* out, cudaStream_t stream,
                     const GemvFusion& fusion) {
  const DeviceMatrix w[2] = {gate, up};
  float* const y[2] = {out, out};
  if (gate.rows != up.rows || fusion.out != GemvOut::kStore) return false;
  const detail::Fusable form = detail::fusable(w, 2, x, y);
  if (form == detail::Fusable::kNo || !fusion_ok(form, fusion)) return false;
  detail::MmaJob job;
  job.n_parts = 2;
  job.part[0] = detail::make_args(gate, x, out);
  job.part[1] = detail::make_args(up, x, out);
  job.swiglu_out = out;
  job.norm_gain = fusion.norm_gain;
  job.norm_eps = fusion.norm_eps;
  job.next_weights = fusion.next_weights;
  if (form == detail::Fusable::kBulk && detail::launch_mma_bulk(gate.format, job, true, stream)) return true;
  const bool sx = form != detail::Fusable::kRegisterX;
  return detail::with_op(gate.format, [&](auto op) {
    if (sx) {
      detail::launch_job<decltype(op), 2, IMP_MMA_SWIGLU_KU, true, true>(job, stream);
    } else {
      detail::launch_job<decltype(op), 2, IMP_MMA_SWIGLU_KU, true, false>(job, stream);
    }
  });
}

bool gemv_mma_qkv_rope_kv(const DeviceMatrix (&w)[3], const float* x, float* q, float* k, float* v, const RopeArgs& rope,
                          const KvView& kv, const StepParams* step, cudaStream_t stream, const GemvFusion& fusion) {
  const int hd = kv.head_dim;
  if (!step || fusion.out != GemvOut::kStore || hd <= 0 || hd % 16 != 0) return false;
  if (kv.dtype != kvc::kF32 && kv.dtype != kvc::kF16 && kv.dtype != kvc::kBF16) return false;
  if (w[0].rows % hd != 0 || w[1].rows != int64_t(kv.n_kv_head) * hd || w[2].rows != w[1].rows) return false;
  if (w[0].rows + w[1].rows + w[2].rows >= 16384) return false;  // the two-tile form pairs no rows
  float* const y[3] = {q, k, v};
  // One launch of the three parts, or — V in another format (Q4_K_M's Q6_K V in half the
  // layers) — Q·K in one launch and V in a second (role 2), both reading x and the norm.
  const bool one = w[1].format == w[2].format;
  const int n_first = one ? 3 : 2;
  const detail::Fusable form = detail::fusable(w, n_first, x, y);
  const detail::Fusable form_v = one ? form : detail::fusable(&w[2], 1, x, &y[2]);
  for (const detail::Fusable f : {form, form_v}) {
    if (f == detail::Fusable::kNo || f == detail::Fusable::kRegisterX || !fusion_ok(f, fusion)) return false;
  }
  auto launch = [&](int first, int n, detail::Fusable f) {
    detail::MmaJob job;
    job.n_parts = n;
    job.norm_gain = fusion.norm_gain;
    job.norm_eps = fusion.norm_eps;
    job.next_weights = first + n == 3 ? fusion.next_weights : L2Ranges{};  // the last launch prefetches
    job.rope_kv = 1;
    job.role0 = first;
    job.rope = rope;
    job.kv = kv;
    job.step = step;
    for (int i = 0; i < n; ++i) job.part[i] = detail::make_args(w[first + i], x, y[first + i]);
    if (f == detail::Fusable::kBulk && detail::launch_mma_bulk(w[first].format, job, false, stream)) return;
    detail::with_op(w[first].format,
                    [&](auto op) { detail::launch_job<decltype(op), 1, IMP_MMA_SMALL_KU, false, true>(job, stream); });
  };
  launch(0, n_first, form);
  if (!one) launch(2, 1, form_v);
  return true;
}

}  // namespace imp::cuda
