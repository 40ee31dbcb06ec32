// 16-bit activations (ActQuant::kI16, ops.h): the default fast matmul for the formats below.
//
// Why: decoding 4-bit weights to F32 and FMA-dotting them costs ~4 vector ops per 8
// weights, which makes batch-1 decode compute-bound; an integer dot (vpmaddwd: 16 MACs in
// one op) is not. 8-bit activations (ggml's Q8_0/Q8_1) are too coarse for models with
// activation outliers — an outlier sets the 32-block's step to amax/127 and flattens the
// rest of the block (~1e-1 relative logit error on SmolLM2). 16 bits make the step
// amax/32767, 258× finer: 1.5e-3 relative logit error on SmolLM2 where Q8 costs 1e-1 —
// still above the 1e-3 bound against HF, which is why this path is opt-in.
//
// Activation row of n elements (n a multiple of 32), nb = n / 32 blocks, three planes:
//   q[n]  int16   q_i = round_half_even(x_i · 32767 / amax_b), clamped to ±32767
//   d[nb] float   d_b = amax_b / 32767 (0 for an all-zero block: then q = 0)
//   s[nb] float   s_b = Σ_i x_i over the block, of the unquantized x (FP32)
// amax_b = max |x_i| over block b. Elements are in natural order.
//
// Dot with one weight row, per 32-block b (weights w_i = c_i·dw + mw, codes c_i integers):
//   Σ_i w_i·x_i ≈ dw·d_b·Σ_i c_i·q_i + mw·s_b
// The integer sum is exact (|c| ≤ 128, |q| ≤ 32767, 32 terms < 2^31); the only error is
// x's rounding to q (≤ d_b/2 per element). Using the exact s_b keeps the offset term free
// of it. Codes: Q4_0 c = nibble − 8 (mw = 0), Q4_1 c = nibble (mw = m), Q8_0 c = int8.
//
// Kernels compute y[r] for `rows` consecutive weight rows (row_bytes apart) against one
// activation row, so the matmul pays one call per row chunk, not per row.
//
// Element order of q: the references read q in natural order; the AVX2 kernels read it
// permuted per block (reorder_act_i16) so that they can widen weight codes to int16 with
// shifts and masks only — no vpmovzxbw / vpermd, which share one shuffle port and bounded
// the natural-order kernel (order names and layouts at I16Order). d and s never move.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backends/cpu/cpu_features.h"
#include "formats/format_id.h"

namespace imp {

constexpr int kI16Block = 32;
constexpr float kI16Max = 32767.0f;

// Within each 32-block, position → element:
//   kNatural: i → i
//   kQ4Pairs: 0..7 → 0,2,…,14;  8..15 → 1,3,…,15;  16..23 → 16,18,…,30;  24..31 → 17,…,31
//             (a Q4 block's 16 bytes read as int16 and masked with 0x000F / 0x0F00)
//   kQ8Pairs: 0..15 → 0,2,…,30;  16..31 → 1,3,…,31  (int8 pairs split by shifts)
enum class I16Order : uint8_t { kNatural, kQ4Pairs, kQ8Pairs };

struct I16ActRow {
  const int16_t* q = nullptr;
  const float* d = nullptr;
  const float* s = nullptr;
};

// Fills q (n), d and s (n / 32). n must be a multiple of 32.
using I16QuantizeFn = void (*)(const float* x, int64_t n, int16_t* q, float* d, float* s);
// y[r] = row r · act, r in [0, rows); row r starts at w + r·row_bytes, n elements each.
using I16DotRowsFn = void (*)(const uint8_t* w, size_t row_bytes, int64_t rows, const I16ActRow& act, int64_t n,
                              float* y);

struct I16DotKernel {
  I16DotRowsFn fn = nullptr;  // nullptr: the format has no I16 dot
  I16Order order = I16Order::kNatural;  // the order fn reads q in
};

// Scalar references (act_i16.cc): the definition above, the dot in double, natural order.
void quantize_act_i16_ref(const float* x, int64_t n, int16_t* q, float* d, float* s);
I16DotKernel i16_dot_rows_ref(FormatId format);
// out = q (n elements, natural order) permuted into `order`; out must not alias q.
void reorder_act_i16(const int16_t* q, int64_t n, I16Order order, int16_t* out);

// The fastest implementations the ISA has (AVX2 when asked for, else the references).
I16QuantizeFn i16_quantizer(CpuIsa isa);
I16DotKernel i16_dot_rows(FormatId format, CpuIsa isa);

namespace avx2 {
// act_i16_avx2.cc
void quantize_act_i16(const float* x, int64_t n, int16_t* q, float* d, float* s);
void dot_rows_i16_q4_0(const uint8_t* w, size_t row_bytes, int64_t rows, const I16ActRow& act, int64_t n, float* y);
void dot_rows_i16_q4_1(const uint8_t* w, size_t row_bytes, int64_t rows, const I16ActRow& act, int64_t n, float* y);
void dot_rows_i16_q8_0(const uint8_t* w, size_t row_bytes, int64_t rows, const I16ActRow& act, int64_t n, float* y);
}  // namespace avx2

}  // namespace imp
