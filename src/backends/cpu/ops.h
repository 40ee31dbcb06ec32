// CPU ops. Each op has a scalar reference (`*_ref`: one thread, double accumulation,
// written to be read) and the fast version (threaded over a ThreadPool, FP32 accumulation,
// F32- or quantized-activation dot products through cpu_row_kernels). tests/backends/cpu/test_ops.cc
// checks every fast op against its reference with a named tolerance.
//
// Shapes are row-major and given as (dims): a token batch x is (n_tok, n).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backends/cpu/cpu_features.h"
#include "backends/cpu/thread_pool.h"
#include "formats/kv_type.h"
#include "formats/quant_matrix.h"

namespace imp {

// --- matmul: w is (rows, cols) in any format with a vec_dot; x is (n_tok, cols);
//     y is (n_tok, rows). y[t, r] = Σ_c w[r, c]·x[t, c].
// Reference: decodes each weight row exactly and accumulates in double.
void matmul_ref(const QuantMatrix& w, const float* x, int64_t n_tok, float* y);
// Fast, threaded over weight rows. How it treats the activations:
//   ActQuant::kNone (default): F32 activations. Each weight row is decoded once (the ISA's
//     dequantizer, bit-identical to the reference decode) into a per-thread buffer that
//     stays in L1 and dotted with every activation row in FP32 (FMA): within ~1e-6 of the
//     reference, whatever the activations look like.
//   ActQuant::kQ8: quantizes each activation row once to the format's dot_activation (Q8_0,
//     Q8_1, Q8_K) and runs ggml's integer vec_dot. Faster, but every element moves by up to
//     amax/254 of its 32-block: on models with activation outliers (SmolLM2: |x| ≫ the rest
//     of the block) this costs ~1e-1 relative logit error and changes greedy output.
//   ActQuant::kI16: quantizes each activation row once to 16 bits per element (per 32-block
//     scale amax/32767; a block's lone outlier, > 4× the rest, is taken out and added exactly
//     in FP32; act_i16.h) and runs an integer dot (vpmaddwd) for Q4_0, Q4_1, Q8_0; other
//     formats run as with kNone. A Q4_1 block costs 1.3 ns instead of 2.2 (decoding 4-bit
//     weights to F32 is compute-bound); SmolLM2's logits stay within 5.3e-4 of HF's (1.5e-3
//     without the outlier split). CpuBackend's default.
// Formats whose dot_activation is F32 (F32, F16, BF16, FP8) run their vec_dot either way.
enum class ActQuant : uint8_t { kNone, kQ8, kI16 };
void matmul(ThreadPool& pool, const QuantMatrix& w, const float* x, int64_t n_tok, float* y,
            CpuIsa isa = best_cpu_isa(), ActQuant act_quant = ActQuant::kNone);

// --- embedding: out (n_tok, cols) = rows ids[t] of w, decoded. Ids are range-checked.
void embedding_lookup(const QuantMatrix& w, std::span<const int32_t> ids, float* out);

// --- rmsnorm: x, out (n_tok, n); gain (n). out = x / sqrt(mean(x²) + eps) · gain.
void rmsnorm_ref(const float* x, const float* gain, int64_t n_tok, int64_t n, float eps, float* out);
void rmsnorm(ThreadPool& pool, const float* x, const float* gain, int64_t n_tok, int64_t n, float eps,
             float* out);

// --- RoPE, in place on x (n_tok, n_head, head_dim); token t sits at positions[t].
// Pair i (0 ≤ i < head_dim/2) rotates by angle pos · theta^(−2i/head_dim) / freq_scale.
//   kAdjacent ("norm", llama-arch GGUF): pairs (2i, 2i+1).
//   kHalfSplit ("neox", qwen2 GGUF and every HF checkpoint): pairs (i, i + head_dim/2).
// See ../shared/specs/formats.md §4.7 for why GGUF llama uses adjacent pairs.
enum class RopeStyle : uint8_t { kAdjacent, kHalfSplit };
struct RopeParams {
  RopeStyle style = RopeStyle::kAdjacent;
  float theta = 10000.0f;
  float freq_scale = 1.0f;  // linear rope scaling factor (positions are divided by it)
};
void rope_ref(float* x, std::span<const int32_t> positions, int64_t n_head, int64_t head_dim,
              const RopeParams& p);
void rope(ThreadPool& pool, float* x, std::span<const int32_t> positions, int64_t n_head,
          int64_t head_dim, const RopeParams& p);

// --- attention over one layer of a KV cache.
// The cache holds rows of head_dim elements in KV type `dtype` (each row decodes on its own
// through kv_decode_row_fn; f16/bf16 through the ISA's row dequantizer), n_kv_head rows per
// token, tokens grouped in blocks of block_tokens; block b's K rows start at k_blocks[b],
// token j of the block, kv head g at
// k_blocks[b] + (j·n_kv_head + g)·row_bytes. V likewise.
struct KvLayerView {
  KvType dtype = KvType::F32;  // rows of kv_row_bytes(dtype, head_dim), formats/kv_type.h
  int64_t n_kv_head = 0;
  int64_t head_dim = 0;
  int64_t block_tokens = 0;
  int64_t row_bytes = 0;
  std::span<const uint8_t* const> k_blocks;
  std::span<const uint8_t* const> v_blocks;
  const uint8_t* k_row(int64_t pos, int64_t g) const {
    return k_blocks[size_t(pos / block_tokens)] + ((pos % block_tokens) * n_kv_head + g) * row_bytes;
  }
  const uint8_t* v_row(int64_t pos, int64_t g) const {
    return v_blocks[size_t(pos / block_tokens)] + ((pos % block_tokens) * n_kv_head + g) * row_bytes;
  }
};
// q, out (n_tok, n_head, head_dim). Token t is at position p = pos0 + t and attends causally
// to cache positions 0 .. p (which must already be written); with a sliding window w > 0
// only to the last w of them, max(0, p − w + 1) .. p (gemma3 local layers; transformers'
// and llama.cpp's convention). Head h reads kv head h / (n_head / n_kv_head) (grouped-query
// attention). Scores scaled by `scale` (0: 1/sqrt(head_dim); gemma3 uses
// query_pre_attn_scalar^−½), softmax in FP32 (double in the reference).
void attention_ref(const float* q, int64_t n_tok, int64_t n_head, int64_t pos0, const KvLayerView& kv,
                   float* out, int64_t window = 0, float scale = 0.0f);
void attention(ThreadPool& pool, const float* q, int64_t n_tok, int64_t n_head, int64_t pos0,
               const KvLayerView& kv, float* out, int64_t window = 0, float scale = 0.0f);

// --- activations (n elements). swiglu: out = silu(gate) · up. gelu: tanh approximation.
void swiglu_ref(const float* gate, const float* up, int64_t n, float* out);
void swiglu(ThreadPool& pool, const float* gate, const float* up, int64_t n, float* out);
void gelu_tanh_ref(const float* x, int64_t n, float* out);
void gelu_tanh(ThreadPool& pool, const float* x, int64_t n, float* out);
// softmax over each of n_rows rows of n, in place; max-subtracted.
void softmax_ref(float* x, int64_t n_rows, int64_t n);
void softmax(ThreadPool& pool, float* x, int64_t n_rows, int64_t n);

}  // namespace imp
