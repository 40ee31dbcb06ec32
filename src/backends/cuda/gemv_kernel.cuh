// Kernel templates shared by the per-family GEMV sources (gemv_*.cu). Internal header.
//
// Fast path, gemv_vec_kernel<Op, kRows, kUnroll>: one warp owns kRows consecutive rows.
// A row is cut into "units" of 16 weight bytes (plus whatever scale bytes the unit needs);
// lane l takes units l, l+32, l+64, … so each warp-wide load instruction reads 512
// contiguous bytes (fully coalesced 16-byte vector loads). Every lane first issues
// kUnroll·kRows independent 16-byte loads (bytes in flight hide HBM latency), then decodes
// them. The activation slice of a unit is loaded once and reused for all kRows rows: at
// 4 bits per weight an F32 activation is 8× the weight bytes, so sharing it halves the
// L1 traffic that would otherwise cap the kernel below HBM bandwidth. Weights are read
// with __ldcs (streaming, evict-first): each byte is used once, x stays cached.
// Per-lane FP32 partial sums are reduced with warp shuffles; lane 0 writes y.
//
// Generic path, gemv_elem_kernel<Elem>: one warp per row, lane-strided over elements,
// each element decoded by the bit-exact helper (decode_*.cuh) — any shape and alignment,
// slow. dequant_kernel<Elem> writes the same decoded values to memory.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>

#include "backends/cuda/check.h"
#include "backends/cuda/gemv.h"
#include "backends/cuda/gemv_registry.h"

namespace imp::cuda::detail {

inline constexpr int kWarpsPerBlock = 4;

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
  return v;
}

// Magic-number int → float: for 0 ≤ v < 2^23, bits 0x4B000000 | v is the float 2^23 + v,
// so subtracting (2^23 + bias) gives v − bias exactly with two ALU ops and no I2F.
__device__ __forceinline__ float u23_minus(uint32_t v, float two23_plus_bias) {
  return __uint_as_float(0x4B000000u | v) - two23_plus_bias;
}

// The one write of a row's result: y = v, or y += v (GemvOut::kAdd; the row's only writer).
// __fadd_rn: never contracted into an FMA with the scale multiply that produced v, so kAdd
// writes exactly y + (the value kStore writes).
__device__ __forceinline__ void store_y(const KernelArgs& a, int64_t row, float v) {
  a.y[row] = a.add_to_y ? __fadd_rn(a.y[row], v) : v;
}

__device__ __forceinline__ uint4 load_stream16(const uint8_t* p) { return __ldcs(reinterpret_cast<const uint4*>(p)); }
__device__ __forceinline__ float4 load_x4(const float* x, int64_t i) { return __ldg(reinterpret_cast<const float4*>(x + i)); }

template <class Op, int kRows, int kUnroll>
__global__ void __launch_bounds__(kWarpsPerBlock * 32) gemv_vec_kernel(KernelArgs a) {
  const int lane = threadIdx.x & 31;
  const int64_t row0 = (int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32) * kRows;
  if (row0 >= a.rows) return;
  typename Op::Row rows[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    // Rows past the end re-read the last row (results dropped): no divergence in the loop.
    const int64_t rr = row0 + r < a.rows ? row0 + r : a.rows - 1;
    rows[r] = Op::row(a, rr);
  }
  const int units = int(a.cols / Op::kElemsPerUnit);
  float acc[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) acc[r] = 0.0f;

  for (int u0 = lane; u0 < units; u0 += 32 * kUnroll) {
    typename Op::Raw raw[kUnroll][kRows];
#pragma unroll
    for (int i = 0; i < kUnroll; ++i) {
      const int u = u0 + 32 * i;
      if (u < units) {
#pragma unroll
        for (int r = 0; r < kRows; ++r) raw[i][r] = Op::load(rows[r], u);
      }
    }
#pragma unroll
    for (int i = 0; i < kUnroll; ++i) {
      const int u = u0 + 32 * i;
      if (u < units) {
        const typename Op::XFrag xf = Op::load_x(a.x, u);
#pragma unroll
        for (int r = 0; r < kRows; ++r) acc[r] += Op::dot(rows[r], u, raw[i][r], xf);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const float s = warp_sum(acc[r]);
    if (lane == 0 && row0 + r < a.rows) store_y(a, row0 + r, Op::finish(a, rows[r], s));
  }
}

template <class Op, int kRows, int kUnroll>
void launch_vec(const DeviceMatrix& w, const float* x, float* y, cudaStream_t stream, GemvOut out) {
  const KernelArgs a = make_args(w, x, y, out);
  const int64_t warps = (a.rows + kRows - 1) / kRows;
  const int64_t blocks = (warps + kWarpsPerBlock - 1) / kWarpsPerBlock;
  gemv_vec_kernel<Op, kRows, kUnroll><<<unsigned(blocks), kWarpsPerBlock * 32, 0, stream>>>(a);
  IMP_CUDA_CHECK_LAUNCH();
}

template <class Elem>
__global__ void __launch_bounds__(kWarpsPerBlock * 32) gemv_elem_kernel(KernelArgs a) {
  const int lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (row >= a.rows) return;
  float acc = 0.0f;
  for (int64_t e = lane; e < a.cols; e += 32) acc = fmaf(Elem::at(a, row, e), a.x[e], acc);
  acc = warp_sum(acc);
  if (lane == 0) store_y(a, row, acc);
}

template <class Elem>
void launch_elem(const DeviceMatrix& w, const float* x, float* y, cudaStream_t stream, GemvOut out) {
  const KernelArgs a = make_args(w, x, y, out);
  const int64_t blocks = (a.rows + kWarpsPerBlock - 1) / kWarpsPerBlock;
  gemv_elem_kernel<Elem><<<unsigned(blocks), kWarpsPerBlock * 32, 0, stream>>>(a);
  IMP_CUDA_CHECK_LAUNCH();
}

template <class Elem>
__global__ void dequant_kernel(KernelArgs a, float* out) {
  const int64_t n = a.rows * a.cols;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    out[i] = Elem::at(a, i / a.cols, i % a.cols);
  }
}

template <class Elem>
void launch_dequant(const DeviceMatrix& w, float* out, cudaStream_t stream) {
  const KernelArgs a = make_args(w, nullptr, nullptr);
  const int64_t n = a.rows * a.cols;
  const int64_t blocks = n / 256 + 1 < 65536 ? n / 256 + 1 : 65536;
  dequant_kernel<Elem><<<unsigned(blocks), 256, 0, stream>>>(a, out);
  IMP_CUDA_CHECK_LAUNCH();
}

// Common kernel-specific conditions.
KernelCheck check_aligned(const void* p, int bytes, const char* what);
KernelCheck check_cols_multiple(int64_t cols, int64_t m, const char* why);
KernelCheck all_of(std::initializer_list<KernelCheck> checks);

}  // namespace imp::cuda::detail
