// The small kernels around the FP8 W8A8 GEMM (gemm_fp8.h); all asynchronous on `stream`.
// Internal to gemm_fp8.cc and its tests.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace imp::cuda::detail {

// p[0 .. n) = v.
void fp8_fill_f32(float* p, int64_t n, float v, cudaStream_t stream);

// The weight's tile-scale plane [tile_rows][kb] (F32, row-major, as stored) copied to the
// layout cuBLASLt's BLK128x128 mode reads: [tile_rows][kb_pad], kb_pad = round_up(kb, 4),
// the padding columns 1 (they scale no weight: the padded K range holds no columns).
void fp8_pad_tile_scales(const float* src, int64_t tile_rows, int64_t kb, int64_t kb_pad, float* dst,
                         cudaStream_t stream);

// y[t, r] = d[t, r] · (w_scale · s_tok[t]) for t < n_tok, r < rows, where d is the GEMM's
// D (column-major rows × n with n ≥ n_tok, i.e. row-major by token, F32 or BF16) and
// w_scale = row_scale ? row_scale[r] : tensor_scale, s_tok[t] = tok_scale ? tok_scale[t] : 1.
// d may equal y (F32 in place). The scale product is one FP32 multiply, then one with d.
void fp8_gemm_epilogue(const void* d, bool d_bf16, float* y, int64_t n_tok, int64_t rows, const float* row_scale,
                       float tensor_scale, const float* tok_scale, cudaStream_t stream);

}  // namespace imp::cuda::detail
