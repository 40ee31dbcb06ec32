// Prefill GEMM with the dequantization fused in (wgmma, sm_90a): y = W·xᵀ for the kMma
// layout's formats (Q4_0, Q8_0, Q4_K, NVFP4_CKPT, MXFP4_CKPT) without a BF16 copy of W,
// on the f16 tensor cores (f16 weights: one rounding of q·d, 3 bits finer than BF16).
//
// Why: the dequantize + cuBLAS path (CudaBackend::gemm_mma_pipelined) writes every weight
// as BF16 to device memory and reads it back — 2 + 2 bytes per weight on top of the 0.56
// the 4-bit file holds — which made a Q4_0 8B 512-token prefill 0.65× the BF16 one (H100,
// 2026-12-07). Here each CTA reads its weight tile once (cp.async into shared memory), its
// two consumer warpgroups decode the codes to f16 (the exact value rounded once) straight
// into wgmma A registers, and multiply them with the activations from shared memory.
//
// x: n_tok × cols f16 in the kMma column order (f16_mma_columns below: a shuffle and
// conversion per 16 columns of the BF16 activations the other GEMM paths take). y: n_tok rows of
// ldy floats; row t gets y[t·ldy + r] for r < w.rows (= or += with accumulate). Tiles of
// 128 weight rows × 128 or 256 tokens (fused_gemm_tile_tokens); a ragged edge re-reads the
// last row / token and drops it.
#pragma once

#include <cstdint>
#include <string>

#include <cuda_runtime.h>

#include "backends/cuda/gemv.h"

namespace imp::cuda {

// Whether gemm_dequant can run this matrix: the kMma layout of one of its formats, 16-byte
// aligned planes, a compute-capability 9.0 device. Otherwise false and *why (if given) says
// what is missing.
bool gemm_dequant_supported(const DeviceMatrix& w, std::string* why = nullptr);

// x (BF16, n_tok × cols, natural order) → out (f16, n_tok × cols) in the kMma column order:
// within every 16 columns, position s holds column 4·((s % 8) / 2) + 2·(s / 8) + s % 2 — the
// k-slot order of the A fragments the kMma payload decodes to (gemv_mma_layout.h), so B
// matches A. Each value is exact in f16 unless beyond ±65504, which saturates (the decode
// GEMVs' f16 x does the same). cols % 16 == 0; 16-byte aligned buffers.
void f16_mma_columns(const uint16_t* x_bf16, int64_t n_tok, int64_t cols, uint16_t* out, cudaStream_t stream);

// y (n_tok × ldy) = or += W·xᵀ, in tiles of 128 rows × fused_gemm_tile_tokens() tokens.
// Fails (imp::Error) on what gemm_dequant_supported refuses.
void gemm_dequant(const DeviceMatrix& w, const uint16_t* x_mma, int64_t n_tok, float* y, int64_t ldy, bool accumulate,
                  cudaStream_t stream);

// Whether CudaBackend's prefill GEMMs of kMma weights take gemm_dequant rather than
// dequantize_bf16 + cuBLAS: kFusedDequantGemmDefault, IMP_CUDA_FUSED_GEMM=0 / 1 overrides
// it (read once), set_fused_dequant_gemm for tests and benchmarks. Process-wide.
// Off: the FP32-decode version ran at 0.25–0.33 of the bf16 rate, below dequantize + cuBLAS
// at every 8B shape (H100, session 13); the packed-f16 decode is not yet measured.
inline constexpr bool kFusedDequantGemmDefault = false;
bool fused_dequant_gemm();
void set_fused_dequant_gemm(bool on);
// Tokens per CTA of gemm_dequant: 128 (default) or 256 (IMP_CUDA_FUSED_GEMM_TOKENS=256: each
// weight decoded once per 256 tokens, half the CTAs). Process-wide, for measurements.
int fused_gemm_tile_tokens();
void set_fused_gemm_tile_tokens(int n);

}  // namespace imp::cuda
