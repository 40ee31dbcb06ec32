// Shared helpers of the CUDA forward tests: random data, relative error, device buffers.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "backends/cuda/cuda_backend.h"
#include "backends/cuda/device.h"

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

}  // namespace imp::cuda::test
