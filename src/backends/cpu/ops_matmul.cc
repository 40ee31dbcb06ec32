// matmul and embedding lookup over a QuantMatrix (shapes in ops.h).
#include <algorithm>
#include <vector>

#include "backends/cpu/act_i16.h"
#include "backends/cpu/f32act.h"
#include "backends/cpu/ops.h"
#include "backends/cpu/row_kernels.h"
#include "common/error.h"

namespace imp {

namespace {

void check_matmul(const QuantMatrix& w, const char* what) {
  validate(w);
  if (!format_traits(w.format).vec_dot_ref) {
    fail("{}: format {} has no dot product (activation-only or scale format)", what, format_name(w.format));
  }
}

}  // namespace

void matmul_ref(const QuantMatrix& w, const float* x, int64_t n_tok, float* y) {
  check_matmul(w, "matmul_ref");
  const auto dequantize_row = format_traits(w.format).dequantize_ref;
  std::vector<float> row(size_t(w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    dequantize_row(row_planes(w, r), row.data(), w.cols);
    for (int64_t t = 0; t < n_tok; ++t) {
      const float* xt = x + t * w.cols;
      double acc = 0.0;
      for (int64_t c = 0; c < w.cols; ++c) acc += double(row[size_t(c)]) * double(xt[c]);
      y[t * w.rows + r] = float(acc);
    }
  }
}

// Compiled without -mavx2 (like row_kernels_avx2_table.cc): it only hands out pointers.
VecDotFn f32_activation_dot(FormatId format, CpuIsa isa) {
  if (isa != CpuIsa::kAvx2) return nullptr;
  switch (format) {
    case FormatId::Q4_0: return avx2::dot_f32act_q4_0;
    case FormatId::Q4_1: return avx2::dot_f32act_q4_1;
    case FormatId::Q8_0: return avx2::dot_f32act_q8_0;
    default: return nullptr;
  }
}

void permute_f32_activation(const float* x, float* out, int64_t n) {
  for (int64_t b = 0; b < n; b += 32) {
    for (int j = 0; j < 4; ++j) {
      for (int i = 0; i < 8; ++i) out[b + 8 * j + i] = x[b + 4 * i + j];
    }
  }
}

namespace {

// Activations stay F32. Formats with a fused kernel (f32act.h) decode in registers; the
// rest decode weight row r once into `row` (L1-resident: cols ≤ a few thousand floats) and
// run the F32 dot. Either way a batch of n_tok tokens reads each weight row once.
void matmul_f32_act(ThreadPool& pool, const QuantMatrix& w, const float* x, int64_t n_tok, float* y,
                    const CpuRowKernels& k, CpuIsa isa) {
  // Fused decode repeats per token; from a few tokens on (prefill), decoding once is cheaper.
  constexpr int64_t kFusedMaxTokens = 3;
  const VecDotFn fused = n_tok <= kFusedMaxTokens ? f32_activation_dot(w.format, isa) : nullptr;
  if (fused) {
    std::vector<float> xp(size_t(n_tok * w.cols));
    for (int64_t t = 0; t < n_tok; ++t) permute_f32_activation(x + t * w.cols, xp.data() + t * w.cols, w.cols);
    pool.parallel_for(w.rows, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const ConstRowPlanes planes = row_planes(w, r);
        for (int64_t t = 0; t < n_tok; ++t) y[t * w.rows + r] = fused(planes, xp.data() + t * w.cols, w.cols);
      }
    });
    return;
  }
  const VecDotFn dot_f32 = cpu_row_kernels(FormatId::F32, isa).vec_dot;
  pool.parallel_for(w.rows, [&](int64_t r0, int64_t r1) {
    std::vector<float> row(size_t(w.cols));
    ConstRowPlanes row_f32;
    row_f32.data = row.data();
    for (int64_t r = r0; r < r1; ++r) {
      k.dequantize(row_planes(w, r), row.data(), w.cols);
      for (int64_t t = 0; t < n_tok; ++t) y[t * w.rows + r] = dot_f32(row_f32, x + t * w.cols, w.cols);
    }
  });
}

// 16-bit activations (act_i16.h). Each token row is quantized once (and put in the
// kernel's element order); weight rows go to the kernel in chunks (whole thread chunks at
// batch 1; tiles of kTileRows for several tokens, so that a tile stays in L1 while every
// token passes over it).
void matmul_i16(ThreadPool& pool, const QuantMatrix& w, const float* x, int64_t n_tok, float* y,
                const I16DotKernel& kernel, CpuIsa isa) {
  constexpr int64_t kTileRows = 16;
  const int64_t n = w.cols, nb = n / kI16Block;
  // Reused across calls: a decode step runs hundreds of matmuls on the same few sizes.
  thread_local std::vector<int16_t> q;
  thread_local std::vector<float> ds;
  thread_local std::vector<int32_t> oi;  // per token: outlier count, then up to nb indices
  if (q.size() < size_t(2 * n_tok * n)) q.resize(size_t(2 * n_tok * n));
  if (ds.size() < size_t(3 * n_tok * nb)) ds.resize(size_t(3 * n_tok * nb));
  if (oi.size() < size_t(n_tok * (nb + 1))) oi.resize(size_t(n_tok * (nb + 1)));
  float* ox = ds.data() + 2 * n_tok * nb;
  int32_t* op = oi.data();
  int16_t* qp = q.data();                // kernel order
  int16_t* natural = q.data() + n_tok * n;
  float* d = ds.data();
  float* s = ds.data() + n_tok * nb;
  const I16QuantizeFn quantize = i16_quantizer(isa);
  const auto quantize_rows = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int32_t* count = op + t * (nb + 1);
      if (kernel.order == I16Order::kNatural) {
        *count = quantize(x + t * n, n, qp + t * n, d + t * nb, s + t * nb, count + 1, ox + t * nb);
      } else {
        *count = quantize(x + t * n, n, natural + t * n, d + t * nb, s + t * nb, count + 1, ox + t * nb);
        reorder_act_i16(natural + t * n, n, kernel.order, qp + t * n);
      }
    }
  };
  if (n_tok == 1) {
    quantize_rows(0, 1);
  } else {
    pool.parallel_for(n_tok, quantize_rows);
  }
  const size_t row_bytes = size_t(row_data_bytes(w.format, n));
  const uint8_t* base = w.data.data();
  const I16DotRowsFn dot = kernel.fn;
  pool.parallel_for(w.rows, [&](int64_t r0, int64_t r1) {
    const auto act = [&](int64_t t) {
      const int32_t* count = op + t * (nb + 1);
      return I16ActRow{qp + t * n, d + t * nb, s + t * nb, count + 1, ox + t * nb, *count};
    };
    if (n_tok == 1) return dot(base + size_t(r0) * row_bytes, row_bytes, r1 - r0, act(0), n, y + r0);
    for (int64_t r = r0; r < r1; r += kTileRows) {
      const int64_t rows = std::min(kTileRows, r1 - r);
      for (int64_t t = 0; t < n_tok; ++t) {
        dot(base + size_t(r) * row_bytes, row_bytes, rows, act(t), n, y + t * w.rows + r);
      }
    }
  });
}

}  // namespace

void matmul(ThreadPool& pool, const QuantMatrix& w, const float* x, int64_t n_tok, float* y, CpuIsa isa,
            ActQuant act_quant) {
  check_matmul(w, "matmul");
  const CpuRowKernels k = cpu_row_kernels(w.format, isa);
  const FormatId act_format = format_traits(w.format).dot_activation;
  if (act_quant == ActQuant::kI16) {
    const I16DotKernel kernel = i16_dot_rows(w.format, isa);
    if (kernel.fn) return matmul_i16(pool, w, x, n_tok, y, kernel, isa);
  }
  if (act_format != FormatId::F32 && act_quant != ActQuant::kQ8) {
    return matmul_f32_act(pool, w, x, n_tok, y, k, isa);
  }

  // Quantize every activation row once; all weight rows then reuse it.
  const void* act = x;
  int64_t act_stride = w.cols * int64_t(sizeof(float));
  std::vector<uint8_t> act_buf;
  if (act_format != FormatId::F32) {
    act_stride = row_data_bytes(act_format, w.cols);
    act_buf.resize(size_t(act_stride * n_tok));
    pool.parallel_for(n_tok, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        RowPlanes dst;
        dst.data = act_buf.data() + t * act_stride;
        k.quantize_activation(x + t * w.cols, dst, w.cols);
      }
    });
    act = act_buf.data();
  }

  const auto* act_bytes = static_cast<const uint8_t*>(act);
  pool.parallel_for(w.rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const ConstRowPlanes planes = row_planes(w, r);
      for (int64_t t = 0; t < n_tok; ++t) {
        y[t * w.rows + r] = k.vec_dot(planes, act_bytes + t * act_stride, w.cols);
      }
    }
  });
}

void embedding_lookup(const QuantMatrix& w, std::span<const int32_t> ids, float* out) {
  validate(w);
  const auto dequantize_row = cpu_row_kernels(w.format).dequantize;
  for (size_t t = 0; t < ids.size(); ++t) {
    if (ids[t] < 0 || ids[t] >= w.rows) {
      fail("token id {} is outside the vocabulary (0..{})", ids[t], w.rows - 1);
    }
    dequantize_row(row_planes(w, ids[t]), out + int64_t(t) * w.cols, w.cols);
  }
}

}  // namespace imp
