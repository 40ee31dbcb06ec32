// 16-bit activations (ActQuant::kI16, ops.h): the default fast matmul for the formats below.
//
// Why: decoding 4-bit weights to F32 and FMA-dotting them costs ~4 vector ops per 8
// weights, which makes batch-1 decode compute-bound; an integer dot (vpmaddwd: 16 MACs in
// one op) is not. 8-bit activations (ggml's Q8_0/Q8_1) are too coarse for models with
// activation outliers — an outlier sets the 32-block's step to amax/127 and flattens the
// rest of the block (~1e-1 relative logit error on SmolLM2). 16 bits make the step
// amax/32767, 258× finer, and a block's lone outlier is split off (below): 5.3e-4
// relative logit error on SmolLM2 against HF where Q8 costs 1e-1 (1.5e-3 without the split).
//
// Activation row of n elements (n a multiple of 32), nb = n / 32 blocks, three planes:
//   q[n]  int16   q_i = round_half_even(x_i · 32767 / amax_b), clamped to ±32767
//   d[nb] float   d_b = amax_b / 32767 (0 for an all-zero block: then q = 0)
//   s[nb] float   s_b = Σ_i x_i over the block, of the unquantized x (FP32)
// amax_b = max |x_i| over block b. Elements are in natural order.
// Outliers: when a block's largest |x_j| exceeds kI16OutlierRatio × the next largest, x_j
// leaves the block — q_j = 0, amax_b and s_b are taken over the other 31 — and goes to a
// per-row list (index, x_j) that the dots add exactly in FP32 as w_j·x_j. SmolLM2's hidden
// states carry a few such channels (|x| ≫ the rest); left in, each sets its block's step
// and costs 1.5e-3 relative logit error; taken out, the error is that of outlier-free data.
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
constexpr float kI16OutlierRatio = 4.0f;

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
  const int32_t* out_idx = nullptr;  // outliers: element index in the row (ascending)
  const float* out_x = nullptr;      // and value
  int32_t n_out = 0;
};

// Fills q (n), d and s (n / 32) and the outliers (out_idx, out_x: room for n / 32 each);
// returns the number of outliers. n must be a multiple of 32.
using I16QuantizeFn = int32_t (*)(const float* x, int64_t n, int16_t* q, float* d, float* s, int32_t* out_idx,
                                  float* out_x);
// y[r] = row r · act, r in [0, rows); row r starts at w + r·row_bytes, n elements each.
using I16DotRowsFn = void (*)(const uint8_t* w, size_t row_bytes, int64_t rows, const I16ActRow& act, int64_t n,
                              float* y);

struct I16DotKernel {
  I16DotRowsFn fn = nullptr;  // nullptr: the format has no I16 dot
  I16Order order = I16Order::kNatural;  // the order fn reads q in
};

// Scalar references (act_i16.cc): the definition above, the dot in double, natural order.
int32_t quantize_act_i16_ref(const float* x, int64_t n, int16_t* q, float* d, float* s, int32_t* out_idx,
                             float* out_x);
I16DotKernel i16_dot_rows_ref(FormatId format);
// out = q (n elements, natural order) permuted into `order`; out must not alias q.
void reorder_act_i16(const int16_t* q, int64_t n, I16Order order, int16_t* out);

// The fastest implementations the ISA has (AVX2 when asked for, else the references).
I16QuantizeFn i16_quantizer(CpuIsa isa);
I16DotKernel i16_dot_rows(FormatId format, CpuIsa isa);

// The outlier choice both quantizers share, for the 32 elements at xb: the index of the
// largest |x| (the first one) when it exceeds kI16OutlierRatio × every other |x|, else −1.
// *amax gets the max |x| over the elements that stay in the block.
inline int i16_block_outlier(const float* xb, float* amax) {
  int j = 0;
  float a1 = 0.0f, a2 = 0.0f;  // largest, second largest |x|
  for (int i = 0; i < kI16Block; ++i) {
    const float a = xb[i] < 0.0f ? -xb[i] : xb[i];
    if (a > a1) {
      a2 = a1;
      a1 = a;
      j = i;
    } else if (a > a2) {
      a2 = a;
    }
  }
  if (a1 > kI16OutlierRatio * a2) {
    *amax = a2;
    return j;
  }
  *amax = a1;
  return -1;
}

namespace avx2 {
// act_i16_avx2.cc
int32_t quantize_act_i16(const float* x, int64_t n, int16_t* q, float* d, float* s, int32_t* out_idx, float* out_x);
void dot_rows_i16_q4_0(const uint8_t* w, size_t row_bytes, int64_t rows, const I16ActRow& act, int64_t n, float* y);
void dot_rows_i16_q4_1(const uint8_t* w, size_t row_bytes, int64_t rows, const I16ActRow& act, int64_t n, float* y);
void dot_rows_i16_q8_0(const uint8_t* w, size_t row_bytes, int64_t rows, const I16ActRow& act, int64_t n, float* y);
}  // namespace avx2

}  // namespace imp
