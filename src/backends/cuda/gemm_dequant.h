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
// 128 weight rows × 128 or 256 tokens (gemm_dequant_tile_tokens); a ragged edge re-reads the
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

// One output of a grouped launch: y (n_tok rows of ldy floats) = or += w·xᵀ.
struct GemmDequantOut {
  const DeviceMatrix* w;
  float* y;
  int64_t ldy;
  bool accumulate;
};
inline constexpr int kGemmDequantMaxParts = 4;

// y (n_tok × ldy) = or += W·xᵀ, in tiles of 128 rows × gemm_dequant_tile_tokens() tokens.
// Fails (imp::Error) on what gemm_dequant_supported refuses.
void gemm_dequant(const DeviceMatrix& w, const uint16_t* x_mma, int64_t n_tok, float* y, int64_t ldy, bool accumulate,
                  cudaStream_t stream);
// Up to kGemmDequantMaxParts matrices that share x — the same format and column count, e.g.
// Q·K·V or gate·up — in one launch: the CTAs of every part form one grid, so the 1024-row K
// and V projections of an 8B model (8 row tiles each) fill the SMs with Q's instead of
// taking a wave each. Fails (imp::Error) on a part gemm_dequant would refuse or a mismatch.
void gemm_dequant_group(const GemmDequantOut* parts, int n_parts, const uint16_t* x_mma, int64_t n_tok,
                        cudaStream_t stream);

// Which prefill GEMMs of kMma weights CudaBackend runs through gemm_dequant rather than
// dequantize_bf16 + cuBLAS. kBySize (default): those of at most kFusedGemmMaxTokens tokens —
// H100, session 14: at 512 tokens the fused GEMM ran 0.73–0.93× the BF16 cuBLAS GEMM of the
// 8B shapes (Q4_0, the better tile) against 0.59–0.70× for dequantize + cuBLAS; at 2048
// tokens dequantize + cuBLAS (0.84–0.90×) beat it (0.81–0.86×), the BF16 copy's cost spread
// over 4× the tokens. IMP_CUDA_FUSED_GEMM=0 / 1 forces off / on (read once);
// set_fused_gemm_mode for tests and benchmarks. Process-wide.
enum class FusedGemm { kOff, kOn, kBySize };
inline constexpr int64_t kFusedGemmMaxTokens = 1024;
FusedGemm fused_gemm_mode();
void set_fused_gemm_mode(FusedGemm mode);
bool fused_gemm_takes(int64_t n_tok);

// Tokens per CTA of gemm_dequant: 0 (default) = chosen per launch by
// gemm_dequant_tile_tokens; 128 or 256 forced (IMP_CUDA_FUSED_GEMM_TOKENS, or
// set_fused_gemm_tile_tokens for measurements). Process-wide.
int fused_gemm_tile_tokens();
void set_fused_gemm_tile_tokens(int n);
// Units of wgmma work queued while the 128-token kernel decodes the next unit: 1, or 2
// (three A register sets, x and weights in rings of their own, 191 KiB of shared memory —
// for the one-wave 4096-row GEMMs whose decode the tensor cores wait for). 0 (default) = by
// format, gemm_dequant_lead_for: 2 for Q4_0 and Q6_K, 1 for the others (H100, session 15,
// 512 tokens: Q4_0 4096×4096 0.79 → 0.83 and 4096×14336 0.73 → 0.76 of the BF16 GEMM, Q6_K
// +2–3 %; Q4_K and Q5_K lost 3–5 %). IMP_CUDA_FUSED_GEMM_LEAD=1 / 2 or set_fused_gemm_lead
// force one. Process-wide.
int fused_gemm_lead();
void set_fused_gemm_lead(int units);
int gemm_dequant_lead_for(FormatId format);
// The tile a launch of row_tiles × 128 rows over n_tok tokens uses when not forced: the one
// with fewer SM-time units, counting whole waves of CTAs (one CTA per SM) and a 256-token
// CTA's better rate (H100, session 14, 2048 tokens where waves are nearly full: 0.86 vs 0.74
// of the BF16 GEMM's rate for Q4_0) — so 4096-row GEMMs of 512 tokens (128 CTAs of 128
// tokens: one wave) keep 128, 6144 and 14336 rows take 256.
int gemm_dequant_tile_tokens(int64_t row_tiles, int64_t n_tok, int sm_count);
// Launch order of gemm_dequant's CTAs: true = the token tiles of one row tile next to each
// other, so each weight tile is read from HBM once per wave instead of once per token tile
// (GemmDqGroup in gemm_dequant_sm90a.cu); false (default until a GPU measures it: built in
// session 16 without one) = row tiles first. IMP_CUDA_FUSED_GEMM_TOKENS_FAST=1 or
// set_fused_gemm_tokens_fast(true) switch it on. Process-wide.
bool fused_gemm_tokens_fast();
void set_fused_gemm_tokens_fast(bool on);

}  // namespace imp::cuda
