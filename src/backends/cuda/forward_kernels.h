// Launchers of the CUDA forward-pass kernels other than GEMV (gemv.h): RMSNorm, RoPE fused
// with the KV-cache write, decode/prefill attention over the paged device KV cache, and
// the elementwise ops. Plain C++17 (nvcc compiles the .cu files as C++17): POD arguments,
// every pointer device memory, every launch asynchronous on `stream`, launch errors
// checked (imp::Error naming the kernel).
//
// Step parameters come from device memory (StepParams) so a captured CUDA graph of a
// decode step replays unchanged at every position: token t of the step sits at position
// step->pos0 + t.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backends/cuda/l2_prefetch.h"

namespace imp::cuda {

struct StepParams {
  int32_t pos0 = 0;   // position of the step's first token
  int32_t n_tok = 0;  // tokens in the step
};

// One layer of the paged device KV cache. The byte layout of every row is the CPU one
// (formats/kv_type.h); row (pos, g) of K lives at
//   k_pool + (k_table[pos / block_tokens] · block_tokens + pos % block_tokens) · n_kv_head · row_bytes
//          + g · row_bytes
// (block ids index the pool in units of one block = block_tokens · n_kv_head rows).
struct KvView {
  uint8_t* k_pool = nullptr;
  uint8_t* v_pool = nullptr;
  const int32_t* k_table = nullptr;  // this layer's logical → physical block table
  const int32_t* v_table = nullptr;
  int32_t block_tokens = 0;
  int32_t n_kv_head = 0;
  int32_t head_dim = 0;
  int32_t row_bytes = 0;
  int32_t dtype = 0;  // imp::KvType as its integer value (F32 0, F16 1, BF16 2, FP8_E4M3 3, INT8 4, INT4 5, NVFP4 6)
};

// KV types the device codecs implement (kv_codec.cuh); the others fail by name on the host.
bool kv_dtype_supported_on_device(int32_t dtype);

struct RopeArgs {
  int32_t half_split = 0;  // 0: adjacent pairs (2i, 2i+1); 1: (i, i + head_dim/2)
  float theta = 10000.0f;
  float freq_scale = 1.0f;
};

// x, out (rows, n); gain (n): out = x · (1/sqrt(Σx²/n + eps)) · gain, FP32 sums. out may be x.
void rmsnorm(const float* x, const float* gain, int64_t rows, int64_t n, float eps, float* out, cudaStream_t stream);
// rmsnorm followed by the FP8 W8A8 GEMM's per-token activation quantization (gemm_fp8.h):
// q (n_pad × n E4M3 codes), s (n_pad F32 scales); rows ≥ `rows` zero with scale 1. The bits
// of rmsnorm then quantize_x_fp8 with group n; the F32 norm is never written.
void rmsnorm_fp8(const float* x, const float* gain, int64_t rows, int64_t n, float eps, int64_t n_pad, uint8_t* q,
                 float* s, cudaStream_t stream);
// rmsnorm with the result rounded to BF16 (the prefill GEMMs' activation type).
void rmsnorm_bf16(const float* x, const float* gain, int64_t rows, int64_t n, float eps, uint16_t* out,
                  cudaStream_t stream);
// rmsnorm rounded to f16 (nearest even, saturating to ±65504) and written in the kMma column
// order of the fused-dequantization GEMM (f16_mma_columns, gemm_dequant.h): in each
// 16-column chunk, columns 4k, 4k+1 at positions 2k, 2k+1 and 4k+2, 4k+3 at 8+2k, 9+2k.
// n % 16 == 0.
void rmsnorm_f16_mma(const float* x, const float* gain, int64_t rows, int64_t n, float eps, uint16_t* out,
                     cudaStream_t stream);
// x += delta (rows, n), then out = rmsnorm(x) · gain — the residual add and the next norm in
// one launch (out must not alias x or delta).
void add_rmsnorm(float* x, const float* delta, const float* gain, int64_t rows, int64_t n, float eps, float* out,
                 cudaStream_t stream);

// RoPE in place on x (n_tok, n_head, head_dim), positions from step.
void rope(float* x, int64_t n_tok, int64_t n_head, int64_t head_dim, RopeArgs rope, const StepParams* step,
          cudaStream_t stream);
// Encodes k, v (n_tok, n_kv_head, head_dim) into the cache rows at the step's positions.
void kv_write(const float* k, const float* v, int64_t n_tok, KvView kv, const StepParams* step, cudaStream_t stream);
// RoPE on q (n_tok, n_head, head_dim) and k in place, then the k and v rows into the cache:
// one launch instead of three.
void rope_kv_write(float* q, float* k, const float* v, int64_t n_tok, int64_t n_head, RopeArgs rope, KvView kv,
                   const StepParams* step, cudaStream_t stream);

// Causal attention of q (n_tok, n_head, head_dim) over the cache (GQA: head h reads kv head
// h / (n_head / n_kv_head)); token t at p = pos0 + t sees positions max(0, p+1−window) .. p
// (window ≤ 0: all). Scores · scale (0: 1/sqrt(head_dim)), FP32 online softmax.
// Decode (split-K): n_split ≥ 1 splits of the visible keys; with n_split > 1 the splits
// write (max, sum, acc) partials to `partials` (n_tok · n_head · n_split · (head_dim + 2)
// floats) and a second kernel combines them. head_dim ≤ 256. next_weights: weights the step
// reads next, prefetched into L2 by the kernel's blocks (l2_prefetch.h; a hint only).
void attention_decode(const float* q, int64_t n_tok, int64_t n_head, KvView kv, int64_t window, float scale,
                      int32_t n_split, float* partials, float* out, const StepParams* step, cudaStream_t stream,
                      const L2Ranges& next_weights = {});
// The splits CudaBackend gives a decode step at context ctx in a cache of max_tokens (the
// step's graph bucket decides them; cuda_backend.cc). For benchmarks.
int32_t decode_attention_splits(int64_t ctx, int64_t max_tokens);
// Prefill, exact: the same FP32 kernel with one split per (query, head) block, n_tok blocks
// deep (each block streams its keys from global memory). The exact mode's path.
void attention_prefill(const float* q, int64_t n_tok, int64_t n_head, KvView kv, int64_t window, float scale,
                       float* out, const StepParams* step, cudaStream_t stream);
// Prefill on the tensor cores (attention_prefill.cu): 64-query × 64-key tiles, f16 q/k/v/p with
// FP32 scores, softmax and accumulation; every KV dtype (rows decoded into shared memory).
// Writes exactly one of out (F32) and out_bf16 (BF16, round to nearest even: the bits
// f32_to_bf16 would make of out), both (n_tok, n_head, head_dim). With out16_f16_mma, out_bf16
// instead gets f16 (nearest even, saturating) in the fused GEMM's kMma column order
// (rmsnorm_f16_mma) where attention_prefill_writes_f16_mma(head_dim) and head_dim % 16 == 0.
// False (nothing launched) when head_dim is odd or above 256.
bool attention_prefill_writes_f16_mma(int64_t head_dim);
bool attention_prefill_mma(const float* q, int64_t n_tok, int64_t n_head, KvView kv, int64_t window, float scale,
                           float* out, uint16_t* out_bf16, const StepParams* step, cudaStream_t stream,
                           bool out16_f16_mma = false);

// Elementwise (n elements): out = silu(gate)·up; out = gelu_tanh(x); y += x; y *= x; x *= s;
// x (rows, n) += bias (n); out = bf16(x) (round to nearest even).
void swiglu(const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream);
// swiglu over rows × n, quantized per row for the FP8 W8A8 GEMM as rmsnorm_fp8 does.
void swiglu_fp8(const float* gate, const float* up, int64_t rows, int64_t n, int64_t n_pad, uint8_t* q, float* s,
                cudaStream_t stream);
// swiglu rounded to BF16 (round to nearest even): the bits f32_to_bf16 would make of its output.
void swiglu_bf16(const float* gate, const float* up, int64_t n, uint16_t* out, cudaStream_t stream);
// swiglu rounded to f16 (saturating) in the kMma column order (as rmsnorm_f16_mma) over n
// elements of whole 16-column chunks (n % 16 == 0, rows a multiple of 16 wide).
void swiglu_f16_mma(const float* gate, const float* up, int64_t n, uint16_t* out, cudaStream_t stream);
void gelu_tanh(const float* x, int64_t n, float* out, cudaStream_t stream);
void add(float* y, const float* x, int64_t n, cudaStream_t stream);
void mul(float* y, const float* x, int64_t n, cudaStream_t stream);
void scale(float* x, float s, int64_t n, cudaStream_t stream);
void add_bias(float* x, const float* bias, int64_t rows, int64_t n, cudaStream_t stream);
void f32_to_bf16(const float* x, int64_t n, uint16_t* out, cudaStream_t stream);

}  // namespace imp::cuda
