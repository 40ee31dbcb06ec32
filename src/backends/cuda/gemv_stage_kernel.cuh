// Staged GEMV for ggml block formats whose blocks are not 16-byte multiples (Q4_1 20 B,
// Q5_0 22 B, Q5_1 24 B, IQ4_NL 18 B, MXFP4 17 B, NVFP4 36 B, Q2_K 84 B, Q3_K 110 B,
// IQ4_XS 136 B) or whose 16-byte chunks would need several header fields (Q5_K 176 B).
// Internal header.
//
// gemv_stage_kernel<Op, kRows, kChunks>: one warp owns kRows rows. It walks each row in
// stages of kChunks·32 blocks: the warp copies the stage's bytes (kChunks·32·B, a multiple
// of 16 for any B) from HBM into its slice of shared memory with 16-byte coalesced loads,
// all of them issued before the first is used (bytes in flight: kRows·kChunks·2B per lane),
// then every lane decodes whole blocks out of shared memory, block j of the stage → lane
// j % 32, and takes the block's dot with x (Op::dot_block: sub-block sums of code·x times
// the sub-block scale, so the scales are applied once per sub-block). Rows must be whole
// 16-byte multiples and 16-byte aligned (check_stage), which every Llama/Qwen shape is.
// The stage's last partial chunk is handled by bounds on the 16-byte index.
#pragma once

#include "backends/cuda/gemv_kernel.cuh"

namespace imp::cuda::detail {

__device__ __forceinline__ float4 x4(const float* x, int i) { return __ldg(reinterpret_cast<const float4*>(x + i)); }

template <class Op, int kRows, int kChunks>
__global__ void __launch_bounds__(kWarpsPerBlock * 32) gemv_stage_kernel(KernelArgs a) {
  constexpr int kB = Op::kBlockBytes, kE = Op::kBlockElems;
  constexpr int kStageBlocks = 32 * kChunks;
  constexpr int kStageBytes = kStageBlocks * kB;  // multiple of 16: 32·B = 16·(2B)
  constexpr int kLoads = (kStageBytes / 16 + 31) / 32;  // 16-byte loads per lane per row
  __shared__ __align__(16) uint8_t smem[kWarpsPerBlock][kRows][kStageBytes];
  const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
  const int64_t row0 = (int64_t(blockIdx.x) * kWarpsPerBlock + warp) * kRows;
  if (row0 >= a.rows) return;  // whole warp: no block-wide barrier is used
  const uint8_t* src[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) src[r] = a.data + (row0 + r < a.rows ? row0 + r : a.rows - 1) * a.data_row_bytes;
  const int nblocks = int(a.cols / kE);
  float acc[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) acc[r] = 0.0f;
  for (int b0 = 0; b0 < nblocks; b0 += kStageBlocks) {
    const int nb = nblocks - b0 < kStageBlocks ? nblocks - b0 : kStageBlocks;
    const int n16 = nb * kB / 16;  // exact: the row is a 16-byte multiple and b0·B is too
    uint4 tmp[kRows][kLoads];
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
#pragma unroll
      for (int i = 0; i < kLoads; ++i) {
        const int idx = lane + 32 * i;
        if (idx < n16) tmp[r][i] = load_stream16(src[r] + int64_t(b0) * kB + 16 * idx);
      }
    }
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
#pragma unroll
      for (int i = 0; i < kLoads; ++i) {
        const int idx = lane + 32 * i;
        if (idx < n16) *reinterpret_cast<uint4*>(&smem[warp][r][16 * idx]) = tmp[r][i];
      }
    }
    __syncwarp();
    for (int j = lane; j < nb; j += 32) {
      const float* xb = a.x + int64_t(b0 + j) * kE;
#pragma unroll
      for (int r = 0; r < kRows; ++r) acc[r] += Op::dot_block(&smem[warp][r][j * kB], xb);
    }
    __syncwarp();  // the next stage overwrites the slice
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const float s = warp_sum(acc[r]);
    if (lane == 0 && row0 + r < a.rows) store_y(a, row0 + r, s);
  }
}

template <class Op, int kRows, int kChunks>
void launch_stage(const DeviceMatrix& w, const float* x, float* y, cudaStream_t stream, GemvOut out) {
  const KernelArgs a = make_args(w, x, y, out);
  const int64_t warps = (a.rows + kRows - 1) / kRows;
  const int64_t blocks = (warps + kWarpsPerBlock - 1) / kWarpsPerBlock;
  gemv_stage_kernel<Op, kRows, kChunks><<<unsigned(blocks), kWarpsPerBlock * 32, 0, stream>>>(a);
  IMP_CUDA_CHECK_LAUNCH();
}

}  // namespace imp::cuda::detail
