// Tensor-core decode GEMV for the 4- and 8-bit block formats on the kMma layout
// (gemv_mma_layout.h): y[rows] = W · x with x rounded once to f16 and every weight decoded
// by a few bit operations into an exact f16 A fragment of mma.sync.m16n8k16 (f32
// accumulate). The column dimension of the MMA is unused: B holds x in all 8 columns, so
// C's columns are 8 copies of the same dot products.
//
// Why: the FP32-activation kernels (gemv_gguf.cu, gemv_fp4.cu) spend ~5 FP32 instructions
// per 4-bit weight (decode, convert, FMA) and reach 0.26–0.6 of HBM bandwidth on an H100;
// here one MMA does 256 multiply-adds and the decode is 1–1.5 instructions per weight.
//
// Numerics: the only rounding beyond FP32 accumulation is x → f16 (relative 2^-11 per
// element; |x| is clamped to 65504 first so an outlier cannot become Inf). Weights are
// exact: Q4_0 / Q8_0 codes enter as the integers q − 8 / q, NVFP4 / MXFP4 codes as
// E2M1·2^-6, and the block scale multiplies the MMA's block sum in FP32 (the MMA over one
// scale block starts from a zero accumulator). Against the FP64 dot of the reference
// dequantization with the f16-rounded x, y differs only by FP32 summation order.
//
// Work split: the grid is persistent (as many 256-thread CTAs as fit at once); a CTA takes
// 16-row tiles blockIdx.x, + gridDim.x, … and converts x once, into shared memory as f16
// B fragments in the order they are read (2 bytes per column; a thread's B registers for a
// unit are 2–4 16-byte shared loads). Its 8 warps split each tile's row into its 64-byte
// units round-robin (split-K inside the CTA) and add their partial sums in shared memory
// at the end of the tile. Weights stream through a per-warp ring of kStages units in
// shared memory filled by cp.async (L2 only), so 3 units per warp are always in flight,
// across tile boundaries too, without holding registers — a 4096×4096 4-bit matrix is
// only ~2× the bytes that must be in flight to cover HBM latency, so the loads are issued
// before x is even converted.
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <mutex>
#include <string>

#include "backends/cuda/decode_fp4.cuh"
#include "backends/cuda/decode_gguf.cuh"
#include "backends/cuda/decode_gguf_legacy.cuh"
#include "backends/cuda/gemv_kernel.cuh"
#include "backends/cuda/gemv_mma_layout.h"
#include "formats/traits.h"

namespace imp::cuda::detail {
namespace {

constexpr int kMmaWarps = 8;
constexpr int kMmaThreads = kMmaWarps * 32;
// x fragments live in dynamic shared memory: 2 bytes per column. Rows up to 49152 columns
// (every dense layer of a 70B model) fit beside the weight ring; longer rows use the other
// kernels.
constexpr int64_t kMaxCols = 49152;

__device__ __forceinline__ uint32_t h2_bits(__half2 h) { return *reinterpret_cast<uint32_t*>(&h); }
__device__ __forceinline__ __half2 bits_h2(uint32_t u) { return *reinterpret_cast<__half2*>(&u); }

// D = A·B + C for one m16n8k16 tile (A row-major 16×16 f16, B column-major 16×8 f16).
__device__ __forceinline__ void mma_16816(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                          uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Four E2M1 codes in the low nibbles of a word's bytes → four E4M3 bytes of E2M1·2^-6
// (s e e m → s 0 0 e e m 0 0; exact for normal and subnormal codes alike).
__device__ __forceinline__ uint32_t e2m1_lo_to_e4m3(uint32_t v) {
  return ((v << 4) & 0x80808080u) | ((v << 2) & 0x1C1C1C1Cu);
}
__device__ __forceinline__ uint32_t e4m3x2_to_h2(uint32_t two) {
  const __half2_raw r = __nv_cvt_fp8x2_to_halfraw2(__nv_fp8x2_storage_t(two & 0xFFFF), __NV_E4M3);
  return uint32_t(r.x) | (uint32_t(r.y) << 16);
}

// ---- per-format decode: one 16-byte thread slice → f16 A registers a[chunk][half] -------
// a[j][0] = slots (2c, 2c+1), a[j][1] = slots (2c+8, 2c+9) of chunk j (gemv_mma_layout.h).

struct Q4_0Mma {
  static constexpr FormatId kFormat = FormatId::Q4_0;
  static constexpr int kChunks = 8, kGroupChunks = 2;  // 4 blocks of 32 per unit
  static constexpr int kScaleBytes = 8;                // 4 f16 d per row and unit
  __device__ static void decode(const uint4& raw, uint32_t (&a)[kChunks][2]) {
    const __half2 k1032 = __float2half2_rn(1032.0f), k16th = __float2half2_rn(0.0625f), km72 = __float2half2_rn(-72.0f);
    const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const uint32_t v = words[w], v8 = v >> 8;
      // 0x6400 | q is the f16 1024 + q; 0x6400 | (q << 4) is 1024 + 16q.
      a[2 * w][0] = h2_bits(__hsub2(bits_h2((v & 0x000F000Fu) | 0x64006400u), k1032));
      a[2 * w][1] = h2_bits(__hsub2(bits_h2((v8 & 0x000F000Fu) | 0x64006400u), k1032));
      a[2 * w + 1][0] = h2_bits(__hfma2(bits_h2((v & 0x00F000F0u) | 0x64006400u), k16th, km72));
      a[2 * w + 1][1] = h2_bits(__hfma2(bits_h2((v8 & 0x00F000F0u) | 0x64006400u), k16th, km72));
    }
  }
  __device__ static float scale(const uint2& s, int g) {
    const uint32_t w = g < 2 ? s.x : s.y;
    return __half2float(__ushort_as_half((unsigned short)(w >> (16 * (g & 1)))));
  }
  __device__ static float finish(const KernelArgs&, float acc) { return acc; }
};

struct Q8_0Mma {
  static constexpr FormatId kFormat = FormatId::Q8_0;
  static constexpr int kChunks = 4, kGroupChunks = 2;  // 2 blocks of 32 per unit
  static constexpr int kScaleBytes = 4;
  __device__ static void decode(const uint4& raw, uint32_t (&a)[kChunks][2]) {
    const __half2 k1152 = __float2half2_rn(1152.0f);
    const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const uint32_t v = words[w] ^ 0x80808080u;  // int8 q → q + 128
      // bytes (b, 0x64) per half: the f16 1024 + (q + 128).
      a[w][0] = h2_bits(__hsub2(bits_h2(__byte_perm(v, 0x64646464u, 0x4140)), k1152));
      a[w][1] = h2_bits(__hsub2(bits_h2(__byte_perm(v, 0x64646464u, 0x4342)), k1152));
    }
  }
  __device__ static float scale(const uint2& s, int g) {
    return __half2float(__ushort_as_half((unsigned short)(s.x >> (16 * g))));
  }
  __device__ static float finish(const KernelArgs&, float acc) { return acc; }
};

// NVFP4 and MXFP4 share the E2M1 decode; the MMA sees E2M1·2^-6 and finish() restores 64.
__device__ __forceinline__ void decode_e2m1(const uint4& raw, uint32_t (&a)[8][2]) {
  const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int w = 0; w < 4; ++w) {
    const uint32_t ev = e2m1_lo_to_e4m3(words[w]), od = e2m1_lo_to_e4m3(words[w] >> 4);
    a[2 * w][0] = e4m3x2_to_h2(ev);
    a[2 * w][1] = e4m3x2_to_h2(ev >> 16);
    a[2 * w + 1][0] = e4m3x2_to_h2(od);
    a[2 * w + 1][1] = e4m3x2_to_h2(od >> 16);
  }
}

struct Nvfp4CkptMma {
  static constexpr FormatId kFormat = FormatId::NVFP4_CKPT;
  static constexpr int kChunks = 8, kGroupChunks = 1;  // 8 blocks of 16 per unit
  static constexpr int kScaleBytes = 8;                // 8 E4M3 bytes
  __device__ static void decode(const uint4& raw, uint32_t (&a)[kChunks][2]) { decode_e2m1(raw, a); }
  __device__ static float scale(const uint2& s, int g) {
    const uint32_t w = g < 4 ? s.x : s.y;
    return __half2float(__ushort_as_half(__nv_cvt_fp8_to_halfraw(__nv_fp8_storage_t(w >> (8 * (g & 3))), __NV_E4M3).x));
  }
  __device__ static float finish(const KernelArgs& a, float acc) { return acc * 64.0f * a.tensor_scale; }
};

struct Mxfp4CkptMma {
  static constexpr FormatId kFormat = FormatId::MXFP4_CKPT;
  static constexpr int kChunks = 8, kGroupChunks = 2;  // 4 blocks of 32 per unit
  static constexpr int kScaleBytes = 4;                // 4 E8M0 bytes
  __device__ static void decode(const uint4& raw, uint32_t (&a)[kChunks][2]) { decode_e2m1(raw, a); }
  __device__ static float scale(const uint2& s, int g) { return e8m0_value(uint8_t(s.x >> (8 * g))); }
  __device__ static float finish(const KernelArgs&, float acc) { return acc * 64.0f; }
};

// ---- the pipelined kernel ----------------------------------------------------------------
__device__ __forceinline__ uint32_t smem_addr(const void* p) { return uint32_t(__cvta_generic_to_shared(p)); }
__device__ __forceinline__ void cp_async16(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(dst)), "l"(src));
}
template <int kBytes>
__device__ __forceinline__ void cp_async_small(void* dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], %2;\n" ::"r"(smem_addr(dst)), "l"(src), "n"(kBytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

// Shared memory of one CTA: x fragments (2 bytes per column, rounded up to 16), then the
// weight ring — kStages units in flight per warp, each unit two rows × 32 lanes × 16 bytes
// plus the rows' scale bytes (8 per lane slot).
constexpr int kStages = 4;
constexpr int64_t kRingBytes = int64_t(kStages) * kMmaWarps * 2 * 32 * (16 + 8);
int64_t mma_smem_bytes(int64_t cols) { return (cols * 2 + 15) / 16 * 16 + kRingBytes; }

template <class Op>
__global__ void __launch_bounds__(kMmaThreads) gemv_mma_kernel(KernelArgs a) {
  extern __shared__ uint4 smem[];
  __shared__ float partial[2][kMmaWarps][16];
  constexpr int U = Op::kChunks * 16;
  constexpr int kX4 = Op::kChunks / 2;  // uint4 of B registers per thread and unit
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, c = lane & 3;
  const int units = int(a.cols / U);
  const int64_t n_tiles = (a.rows + 15) / 16;
  // This CTA's row tiles: blockIdx.x, + gridDim.x, … (persistent: x is converted once).
  const int my_tiles = int((n_tiles - blockIdx.x + gridDim.x - 1) / gridDim.x);
  const int my_units = warp < units ? (units - warp + kMmaWarps - 1) / kMmaWarps : 0;  // per tile
  const int items = my_tiles * my_units;

  uint4* ring = smem + (a.cols * 2 + 15) / 16;
  uint4* ring_q = ring + (warp * kStages) * 2 * 32;  // [stage][row 0/1][lane]
  uint2* ring_s = reinterpret_cast<uint2*>(ring + kMmaWarps * kStages * 2 * 32) + (warp * kStages) * 2 * 32;

  // Item i of this warp = (tile k = i / my_units, unit warp + 8·(i % my_units)).
  auto issue = [&](int i) {
    if (i < items) {
      const int k = i / my_units, u = warp + kMmaWarps * (i % my_units);
      const int64_t row0 = (int64_t(blockIdx.x) + int64_t(k) * gridDim.x) * 16;
      const int st = i % kStages;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t row = min(row0 + g + 8 * h, a.rows - 1);  // past the end: re-read, dropped
        cp_async16(&ring_q[(st * 2 + h) * 32 + lane],
                   a.data + row * a.data_row_bytes + int64_t(u) * mma_layout::kUnitBytes + 16 * c);
        cp_async_small<Op::kScaleBytes>(&ring_s[(st * 2 + h) * 32 + lane],
                                        a.scales + row * a.scale_row_bytes + int64_t(u) * Op::kScaleBytes);
      }
    }
    cp_async_commit();  // an empty group past the end keeps the wait count uniform
  };
#pragma unroll
  for (int i = 0; i < kStages - 1; ++i) issue(i);

  // x (f32, global) → f16 pairs in fragment order while the first weights are in flight.
  // Column pair (col, col+1) of unit u, chunk j, slot s = 2c' + 8h goes to half2 index
  // ((u·4 + c')·kChunks + j)·2 + h; |x| is clamped to the f16 range.
  uint32_t* xh = reinterpret_cast<uint32_t*>(smem);
  for (int64_t p = tid; p < a.cols / 2; p += kMmaThreads) {
    const int64_t col = 2 * p;
    const int u = int(col / U), e = int(col % U), j = e / 16, s = e % 16;
    float2 v = *reinterpret_cast<const float2*>(a.x + col);
    v.x = fminf(fmaxf(v.x, -65504.0f), 65504.0f);
    v.y = fminf(fmaxf(v.y, -65504.0f), 65504.0f);
    xh[((int64_t(u) * 4 + (s % 8) / 2) * Op::kChunks + j) * 2 + s / 8] = h2_bits(__floats2half2_rn(v.x, v.y));
  }
  __syncthreads();

  int i = 0;
  for (int k = 0; k < my_tiles; ++k) {
    float acc[2] = {0.0f, 0.0f};  // rows g and g + 8 of the tile
    for (int jj = 0; jj < my_units; ++jj, ++i) {
      issue(i + kStages - 1);
      cp_async_wait<kStages - 1>();  // this thread's copies of item i have landed
      const int st = i % kStages, u = warp + kMmaWarps * jj;
      const uint4 q0 = ring_q[(st * 2) * 32 + lane], q1 = ring_q[(st * 2 + 1) * 32 + lane];
      const uint2 s0 = ring_s[(st * 2) * 32 + lane], s1 = ring_s[(st * 2 + 1) * 32 + lane];
      uint4 xb[kX4];
#pragma unroll
      for (int t = 0; t < kX4; ++t) xb[t] = smem[(int64_t(u) * 4 + c) * kX4 + t];
      const uint32_t* b = reinterpret_cast<const uint32_t*>(xb);
      uint32_t lo[Op::kChunks][2], hi[Op::kChunks][2];
      Op::decode(q0, lo);
      Op::decode(q1, hi);
#pragma unroll
      for (int grp = 0; grp < Op::kChunks / Op::kGroupChunks; ++grp) {
        float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
        for (int j2 = 0; j2 < Op::kGroupChunks; ++j2) {
          const int j = grp * Op::kGroupChunks + j2;
          mma_16816(d, lo[j][0], hi[j][0], lo[j][1], hi[j][1], b[2 * j], b[2 * j + 1]);
        }
        acc[0] = fmaf(Op::scale(s0, grp), d[0], acc[0]);
        acc[1] = fmaf(Op::scale(s1, grp), d[2], acc[1]);
      }
    }
    // Tile done: the 8 warps' partial sums (double-buffered by tile parity, so one barrier
    // per tile suffices) are added by the first 16 threads.
    if (c == 0) {
      partial[k & 1][warp][g] = acc[0];
      partial[k & 1][warp][g + 8] = acc[1];
    }
    __syncthreads();
    const int64_t row = (int64_t(blockIdx.x) + int64_t(k) * gridDim.x) * 16 + tid;
    if (tid < 16 && row < a.rows) {
      float sum = 0.0f;
#pragma unroll
      for (int w = 0; w < kMmaWarps; ++w) sum += partial[k & 1][w][tid];
      a.y[row] = Op::finish(a, sum);
    }
  }
  cp_async_wait<0>();
}

// Persistent grid: as many CTAs as fit on the GPU at once (occupancy for this x size), never
// more than there are 16-row tiles.
template <class Op>
void launch_mma(const DeviceMatrix& w, const float* x, float* y, cudaStream_t stream) {
  const KernelArgs a = make_args(w, x, y);
  static std::once_flag once;
  static int sms = 0;
  std::call_once(once, [] {
    IMP_CUDA_CHECK(cudaFuncSetAttribute(gemv_mma_kernel<Op>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        int(mma_smem_bytes(kMaxCols))));
    int dev = 0;
    IMP_CUDA_CHECK(cudaGetDevice(&dev));
    IMP_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  });
  const size_t smem = size_t(mma_smem_bytes(a.cols));
  int per_sm = 0;
  IMP_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, gemv_mma_kernel<Op>, kMmaThreads, smem));
  const int64_t tiles = (a.rows + 15) / 16;
  const int64_t grid = std::max<int64_t>(1, std::min<int64_t>(tiles, int64_t(std::max(per_sm, 1)) * sms));
  gemv_mma_kernel<Op><<<unsigned(grid), kMmaThreads, smem, stream>>>(a);
  IMP_CUDA_CHECK_LAUNCH();
}

KernelCheck check_smem(int64_t cols) {
  if (cols <= kMaxCols) return {true, {}};
  return {false, "cols " + std::to_string(cols) + " exceeds " + std::to_string(kMaxCols) +
                     " (x is held in shared memory, 2 bytes per column)"};
}

KernelCheck check_mma(const DeviceMatrix& w, const float* x, const float*) {
  const int U = mma_layout::unit_cols(w.format);
  return all_of({check_cols_multiple(w.cols, U, "the kMma layout's unit"), check_smem(w.cols),
                 check_aligned(w.data, 16, "payload plane"), check_aligned(w.scales, 8, "scale plane"),
                 check_aligned(x, 8, "x")});
}

// ---- exact element access on the kMma layout (dequantization, the generic kernel) -------
template <FormatId F>
struct MmaElem {
  __device__ static float at(const KernelArgs& a, int64_t r, int64_t e) {
    constexpr int U = mma_layout::unit_cols(F);
    int c = 0, w = 0;
    const int p = mma_layout::code_position(F, int(e % U), c, w);
    const uint8_t* unit = a.data + r * a.data_row_bytes + (e / U) * mma_layout::kUnitBytes;
    const uint32_t word = load_le32(unit + mma_layout::word_offset(c, w));
    const uint32_t code = (word >> mma_layout::bit_offset(F, p)) & (F == FormatId::Q8_0 ? 0xFFu : 0xFu);
    const uint8_t* srow = a.scales + r * a.scale_row_bytes;
    if constexpr (F == FormatId::Q4_0) {
      return imp_fmul_rn(float(int(code) - 8), f16_bits_to_f32(load_le16(srow + 2 * (e / 32))));
    } else if constexpr (F == FormatId::Q8_0) {
      return imp_fmul_rn(float(int8_t(uint8_t(code))), f16_bits_to_f32(load_le16(srow + 2 * (e / 32))));
    } else if constexpr (F == FormatId::NVFP4_CKPT) {
      return imp_fmul_rn(e2m1_bits_to_f32(uint8_t(code)), imp_fmul_rn(e4m3_bits_to_f32(srow[e / 16]), a.tensor_scale));
    } else {
      return imp_fmul_rn(e2m1_bits_to_f32(uint8_t(code)), e8m0_value(srow[e / 32]));
    }
  }
};

KernelCheck check_any_mma(const DeviceMatrix&, const float* x, const float*) { return check_aligned(x, 4, "x"); }

// ---- repack: native planes → kMma payload (and the Q4_0 / Q8_0 d plane) ----------------
// One thread per output word (4 bytes): gathers its 8 nibbles or 4 bytes from the native
// row through unit_column().
template <FormatId F>
__device__ uint32_t native_code(const uint8_t* row, int64_t col) {
  if constexpr (F == FormatId::Q4_0) {
    const uint8_t* blk = row + (col / 32) * kQ4_0Bytes + 2;
    const int j = int(col % 32);
    return j < 16 ? (blk[j] & 0xFu) : (blk[j - 16] >> 4);
  } else if constexpr (F == FormatId::Q8_0) {
    return row[(col / 32) * kQ8_0Bytes + 2 + col % 32];
  } else {
    return (row[col / 2] >> (4 * (col & 1))) & 0xFu;
  }
}

template <FormatId F>
__global__ void repack_mma_kernel(const uint8_t* native, int64_t rows, int64_t cols, uint8_t* payload, uint8_t* d) {
  constexpr int U = mma_layout::unit_cols(F), bits = mma_layout::code_bits(F);
  const int64_t words_per_row = cols / U * 16;
  const int64_t row_bytes_native =
      F == FormatId::Q4_0 ? cols / 32 * kQ4_0Bytes : F == FormatId::Q8_0 ? cols / 32 * kQ8_0Bytes : cols / 2;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < rows * words_per_row;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / words_per_row, k = i % words_per_row;
    const int u = int(k / 16), c = int(k % 16) / 4, w = int(k % 4);
    const uint8_t* src = native + r * row_bytes_native;
    uint32_t word = 0;
    for (int p = 0; p < 32 / bits; ++p) {
      word |= native_code<F>(src, int64_t(u) * U + mma_layout::unit_column(F, c, w, p)) << (bits * p);
    }
    uint8_t* out = payload + r * (cols * bits / 8) + int64_t(u) * mma_layout::kUnitBytes + mma_layout::word_offset(c, w);
    out[0] = uint8_t(word), out[1] = uint8_t(word >> 8), out[2] = uint8_t(word >> 16), out[3] = uint8_t(word >> 24);
    if constexpr (F == FormatId::Q4_0 || F == FormatId::Q8_0) {
      // The thread of word 0 of each 32-column block copies that block's d.
      constexpr int kBlockBytes = F == FormatId::Q4_0 ? kQ4_0Bytes : kQ8_0Bytes;
      const int64_t col0 = int64_t(u) * U + 32 * (c + 4 * w);
      if (col0 < int64_t(u + 1) * U && col0 < cols) {
        const int64_t b = col0 / 32;
        d[2 * (r * (cols / 32) + b)] = src[b * kBlockBytes];
        d[2 * (r * (cols / 32) + b) + 1] = src[b * kBlockBytes + 1];
      }
    }
  }
}

constexpr WeightLayout M = WeightLayout::kMma;
const GemvKernel kKernels[] = {
    {"q4_0_mma", FormatId::Q4_0, M, check_mma, launch_mma<Q4_0Mma>, false, true},
    {"q4_0_mma_elem", FormatId::Q4_0, M, check_any_mma, launch_elem<MmaElem<FormatId::Q4_0>>},
    {"q8_0_mma", FormatId::Q8_0, M, check_mma, launch_mma<Q8_0Mma>, false, true},
    {"q8_0_mma_elem", FormatId::Q8_0, M, check_any_mma, launch_elem<MmaElem<FormatId::Q8_0>>},
    {"nvfp4_ckpt_mma", FormatId::NVFP4_CKPT, M, check_mma, launch_mma<Nvfp4CkptMma>, false, true},
    {"nvfp4_ckpt_mma_elem", FormatId::NVFP4_CKPT, M, check_any_mma, launch_elem<MmaElem<FormatId::NVFP4_CKPT>>},
    {"mxfp4_ckpt_mma", FormatId::MXFP4_CKPT, M, check_mma, launch_mma<Mxfp4CkptMma>, false, true},
    {"mxfp4_ckpt_mma_elem", FormatId::MXFP4_CKPT, M, check_any_mma, launch_elem<MmaElem<FormatId::MXFP4_CKPT>>},
};

}  // namespace

std::vector<GemvKernel> mma_gemv_kernels() { return {std::begin(kKernels), std::end(kKernels)}; }

bool mma_dequantize(const DeviceMatrix& w, float* out, cudaStream_t stream) {
  if (w.layout != M) return false;
  switch (w.format) {
    case FormatId::Q4_0: launch_dequant<MmaElem<FormatId::Q4_0>>(w, out, stream); return true;
    case FormatId::Q8_0: launch_dequant<MmaElem<FormatId::Q8_0>>(w, out, stream); return true;
    case FormatId::NVFP4_CKPT: launch_dequant<MmaElem<FormatId::NVFP4_CKPT>>(w, out, stream); return true;
    case FormatId::MXFP4_CKPT: launch_dequant<MmaElem<FormatId::MXFP4_CKPT>>(w, out, stream); return true;
    default: return false;
  }
}

}  // namespace imp::cuda::detail

namespace imp::cuda {

bool has_mma_layout(FormatId format, int64_t cols) {
  const int U = mma_layout::unit_cols(format);
  return U > 0 && cols > 0 && cols % U == 0;
}

void repack_mma(FormatId format, const void* native, int64_t rows, int64_t cols, void* payload, void* d,
                cudaStream_t stream) {
  if (!has_mma_layout(format, cols)) {
    fail("repack_mma: {} rows of {} columns have no kMma layout (q4_0, nvfp4_ckpt, mxfp4_ckpt: cols % 128 == 0; "
         "q8_0: cols % 64 == 0)", format_name(format), cols);
  }
  const bool has_d = format == FormatId::Q4_0 || format == FormatId::Q8_0;
  if (!native || !payload || (has_d && !d)) fail("repack_mma({}): null device pointer", format_name(format));
  const int64_t words = rows * (device_data_bytes(format, WeightLayout::kMma, rows, cols) / rows / 4);
  const int64_t grid = words / 256 + 1 < 65536 ? words / 256 + 1 : 65536;
  const auto* src = static_cast<const uint8_t*>(native);
  auto* out = static_cast<uint8_t*>(payload);
  auto* dd = static_cast<uint8_t*>(d);
  switch (format) {
    case FormatId::Q4_0: detail::repack_mma_kernel<FormatId::Q4_0><<<unsigned(grid), 256, 0, stream>>>(src, rows, cols, out, dd); break;
    case FormatId::Q8_0: detail::repack_mma_kernel<FormatId::Q8_0><<<unsigned(grid), 256, 0, stream>>>(src, rows, cols, out, dd); break;
    case FormatId::NVFP4_CKPT:
      detail::repack_mma_kernel<FormatId::NVFP4_CKPT><<<unsigned(grid), 256, 0, stream>>>(src, rows, cols, out, dd);
      break;
    default: detail::repack_mma_kernel<FormatId::MXFP4_CKPT><<<unsigned(grid), 256, 0, stream>>>(src, rows, cols, out, dd); break;
  }
  IMP_CUDA_CHECK_LAUNCH();
}

}  // namespace imp::cuda
