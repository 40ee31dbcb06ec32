// SwiGLU, GELU (tanh approximation) and softmax (conventions in ops.h).
#include <algorithm>
#include <cmath>

#include "backends/cpu/ops.h"

namespace imp {

namespace {
// Below this many elements a parallel_for costs more than it saves.
constexpr int64_t kMinParallel = 4096;
constexpr double kSqrt2OverPi = 0.79788456080286535588;

template <class Fn>
void for_chunks(ThreadPool& pool, int64_t n, Fn&& fn) {
  if (n < kMinParallel) {
    fn(0, n);
    return;
  }
  const int64_t chunks = std::min<int64_t>(pool.size(), n / (kMinParallel / 2));
  pool.parallel_for(chunks, [&](int64_t c0, int64_t c1) {
    fn(n * c0 / chunks, n * c1 / chunks);
  });
}
}  // namespace

void swiglu_ref(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[i];
    out[i] = float(g / (1.0 + std::exp(-g)) * double(up[i]));
  }
}

void swiglu(ThreadPool& pool, const float* gate, const float* up, int64_t n, float* out) {
  for_chunks(pool, n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float g = gate[i];
      out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
  });
}

void gelu_tanh_ref(const float* x, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    out[i] = float(0.5 * v * (1.0 + std::tanh(kSqrt2OverPi * (v + 0.044715 * v * v * v))));
  }
}

void gelu_tanh(ThreadPool& pool, const float* x, int64_t n, float* out) {
  for_chunks(pool, n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      // 0.5·v·(1 + tanh(u)) = v / (1 + e^(−2u)): the same function without the
      // cancellation of 1 + tanh(u) for negative v, so float keeps ~1e-7 relative error.
      const float v = x[i];
      const float u = float(kSqrt2OverPi) * (v + 0.044715f * v * v * v);
      out[i] = v / (1.0f + std::exp(-2.0f * u));
    }
  });
}

void softmax_ref(float* x, int64_t n_rows, int64_t n) {
  if (n <= 0) return;
  for (int64_t r = 0; r < n_rows; ++r) {
    float* row = x + r * n;
    const double mx = *std::max_element(row, row + n);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += std::exp(double(row[i]) - mx);
    for (int64_t i = 0; i < n; ++i) row[i] = float(std::exp(double(row[i]) - mx) / sum);
  }
}

void softmax(ThreadPool& pool, float* x, int64_t n_rows, int64_t n) {
  if (n <= 0) return;
  pool.parallel_for(n_rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* row = x + r * n;
      const float mx = *std::max_element(row, row + n);
      float sum = 0.0f;
      for (int64_t i = 0; i < n; ++i) sum += (row[i] = std::exp(row[i] - mx));
      const float inv = 1.0f / sum;
      for (int64_t i = 0; i < n; ++i) row[i] *= inv;
    }
  });
}

}  // namespace imp
