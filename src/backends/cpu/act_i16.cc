// Scalar references of the 16-bit activation path (definition in act_i16.h) and the
// run-time choice of its kernels. Compiled without -mavx2: it only hands out pointers to
// the AVX2 kernels, which run after cpu_features() said so.
#include "backends/cpu/act_i16.h"

#include <algorithm>
#include <cmath>

#include "common/bits.h"
#include "formats/f16.h"

namespace imp {

int32_t quantize_act_i16_ref(const float* x, int64_t n, int16_t* q, float* d, float* s, int32_t* out_idx,
                             float* out_x) {
  int32_t n_out = 0;
  for (int64_t b = 0; b < n / kI16Block; ++b) {
    const float* xb = x + b * kI16Block;
    float amax = 0.0f, sum = 0.0f;
    const int j = i16_block_outlier(xb, &amax);
    for (int i = 0; i < kI16Block; ++i) {
      if (i != j) sum += xb[i];
    }
    const float id = amax > 0.0f ? kI16Max / amax : 0.0f;
    d[b] = amax / kI16Max;
    s[b] = sum;
    for (int i = 0; i < kI16Block; ++i) {
      // nearbyint: round half to even (default rounding mode), as vcvtps2dq does.
      const float v = i == j ? 0.0f : std::clamp(std::nearbyint(xb[i] * id), -kI16Max, kI16Max);
      q[b * kI16Block + i] = int16_t(v);
    }
    if (j >= 0) {
      out_idx[n_out] = int32_t(b * kI16Block + j);
      out_x[n_out++] = xb[j];
    }
  }
  return n_out;
}

namespace {

// Codes of one block of each format: c[0..31] in element order, dw, mw (w = c·dw + mw).
struct BlockCodes {
  int c[kI16Block];
  double dw, mw;
};

template <size_t kBlockBytes, class Decode>
void dot_rows_ref(const uint8_t* w, size_t row_bytes, int64_t rows, const I16ActRow& act, int64_t n, float* y,
                  Decode decode) {
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* p = w + size_t(r) * row_bytes;
    double acc = 0.0;
    for (int64_t b = 0; b < n / kI16Block; ++b, p += kBlockBytes) {
      BlockCodes k;
      decode(p, k);
      int64_t isum = 0;
      for (int i = 0; i < kI16Block; ++i) isum += int64_t(k.c[i]) * act.q[b * kI16Block + i];
      acc += k.dw * double(act.d[b]) * double(isum) + k.mw * double(act.s[b]);
    }
    for (int32_t o = 0; o < act.n_out; ++o) {
      BlockCodes k;
      const int32_t idx = act.out_idx[o];
      decode(w + size_t(r) * row_bytes + size_t(idx / kI16Block) * kBlockBytes, k);
      acc += (double(k.c[idx % kI16Block]) * k.dw + k.mw) * double(act.out_x[o]);
    }
    y[r] = float(acc);
  }
}

// Q4_0: d f16 | qs[16]; element j: low nibble of qs[j], element j + 16: high nibble; c = q − 8.
void dot_rows_q4_0_ref(const uint8_t* w, size_t row_bytes, int64_t rows, const I16ActRow& act, int64_t n, float* y) {
  dot_rows_ref<18>(w, row_bytes, rows, act, n, y, [](const uint8_t* p, BlockCodes& k) {
    for (int j = 0; j < 16; ++j) {
      k.c[j] = (p[2 + j] & 0x0F) - 8;
      k.c[j + 16] = (p[2 + j] >> 4) - 8;
    }
    k.dw = f16_to_f32(load_u16(p));
    k.mw = 0.0;
  });
}

// Q4_1: d f16 | m f16 | qs[16]; c = nibble, w = c·d + m.
void dot_rows_q4_1_ref(const uint8_t* w, size_t row_bytes, int64_t rows, const I16ActRow& act, int64_t n, float* y) {
  dot_rows_ref<20>(w, row_bytes, rows, act, n, y, [](const uint8_t* p, BlockCodes& k) {
    for (int j = 0; j < 16; ++j) {
      k.c[j] = p[4 + j] & 0x0F;
      k.c[j + 16] = p[4 + j] >> 4;
    }
    k.dw = f16_to_f32(load_u16(p));
    k.mw = f16_to_f32(load_u16(p + 2));
  });
}

// Q8_0: d f16 | qs int8[32].
void dot_rows_q8_0_ref(const uint8_t* w, size_t row_bytes, int64_t rows, const I16ActRow& act, int64_t n, float* y) {
  dot_rows_ref<34>(w, row_bytes, rows, act, n, y, [](const uint8_t* p, BlockCodes& k) {
    for (int j = 0; j < 32; ++j) k.c[j] = int8_t(p[2 + j]);
    k.dw = f16_to_f32(load_u16(p));
    k.mw = 0.0;
  });
}

}  // namespace

I16DotKernel i16_dot_rows_ref(FormatId format) {
  switch (format) {
    case FormatId::Q4_0: return {dot_rows_q4_0_ref, I16Order::kNatural};
    case FormatId::Q4_1: return {dot_rows_q4_1_ref, I16Order::kNatural};
    case FormatId::Q8_0: return {dot_rows_q8_0_ref, I16Order::kNatural};
    default: return {};
  }
}

void reorder_act_i16(const int16_t* q, int64_t n, I16Order order, int16_t* out) {
  for (int64_t b = 0; b < n; b += kI16Block) {
    const int16_t* in = q + b;
    int16_t* o = out + b;
    switch (order) {
      case I16Order::kNatural:
        for (int i = 0; i < kI16Block; ++i) o[i] = in[i];
        break;
      case I16Order::kQ4Pairs:
        for (int half = 0; half < 2; ++half) {
          for (int k = 0; k < 8; ++k) {
            o[16 * half + k] = in[16 * half + 2 * k];
            o[16 * half + 8 + k] = in[16 * half + 2 * k + 1];
          }
        }
        break;
      case I16Order::kQ8Pairs:
        for (int k = 0; k < 16; ++k) {
          o[k] = in[2 * k];
          o[16 + k] = in[2 * k + 1];
        }
        break;
    }
  }
}

I16QuantizeFn i16_quantizer(CpuIsa isa) {
  return isa == CpuIsa::kAvx2 ? avx2::quantize_act_i16 : quantize_act_i16_ref;
}

I16DotKernel i16_dot_rows(FormatId format, CpuIsa isa) {
  if (isa != CpuIsa::kAvx2) return i16_dot_rows_ref(format);
  switch (format) {
    case FormatId::Q4_0: return {avx2::dot_rows_i16_q4_0, I16Order::kQ4Pairs};
    case FormatId::Q4_1: return {avx2::dot_rows_i16_q4_1, I16Order::kQ4Pairs};
    case FormatId::Q8_0: return {avx2::dot_rows_i16_q8_0, I16Order::kNatural};
    default: return {};
  }
}

}  // namespace imp
