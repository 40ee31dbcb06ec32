// Shared helpers of the CUDA forward tests: random data, relative error, device buffers.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "backends/cuda/cuda_backend.h"
#include "backends/cpu/ops.h"
#include "backends/cuda/device.h"
#include "formats/quant_matrix.h"

namespace imp::cuda::test {

#define IMP_SKIP_WITHOUT_GPU() \
  if (::imp::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device visible"

inline std::vector<float> random_floats(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// max |a − b| / max |b| (b the reference).
inline double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < b.size(); ++i) {
    num = std::max(num, std::fabs(double(a[i]) - double(b[i])));
    den = std::max(den, std::fabs(double(b[i])));
  }
  return den > 0 ? num / den : num;
}

// A device buffer of the backend filled from host data.
inline float* upload(CudaBackend& b, const std::vector<float>& host) {
  float* p = b.alloc(int64_t(host.size()));
  b.write(p, host.data(), int64_t(host.size()));
  return p;
}
inline std::vector<float> download(CudaBackend& b, const float* p, size_t n) {
  std::vector<float> out(n);
  b.read(p, int64_t(n), out.data());
  return out;
}

// b.matmul of matrix h (w uploaded) on fresh random x (n_tok × w.cols, seed) against the
// FP32 reference matmul_ref: relative error below tol.
inline void expect_matmul_matches_reference(CudaBackend& b, MatrixHandle h, const OwnedQuantMatrix& w, int64_t n_tok,
                                            uint64_t seed, double tol) {
  const auto x = random_floats(size_t(n_tok * w.cols), seed);
  std::vector<float> ref(size_t(n_tok * w.rows));
  matmul_ref(w.view(), x.data(), n_tok, ref.data());
  float* dx = upload(b, x);
  float* dy = b.alloc(n_tok * w.rows);
  b.matmul(h, dx, n_tok, dy);  // outside a step: eager
  EXPECT_LT(rel_error(download(b, dy, ref.size()), ref), tol) << format_name(w.format) << ", " << n_tok << " tokens";
  b.release(dx);
  b.release(dy);
}

// A fused prefill hook's residual stream (got) against its composition's (composed), both
// from x: the same bits where the same operands reach the same GEMMs (same_bits), else the
// same update (got − x vs composed − x) within tol — the fused GEMM's activations round once
// to f16 where the composition's go through BF16.
inline void expect_same_update(const std::vector<float>& got, const std::vector<float>& composed,
                               const std::vector<float>& x, bool same_bits, double tol) {
  if (same_bits) {
    EXPECT_EQ(got, composed);
    return;
  }
  std::vector<float> d1(x.size()), d2(x.size());
  for (size_t i = 0; i < x.size(); ++i) d1[i] = got[i] - x[i], d2[i] = composed[i] - x[i];
  EXPECT_LT(rel_error(d1, d2), tol);
}

}  // namespace imp::cuda::test
