// Fresh random test data and the relative error every numeric test reports.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace imp::test {

// Seeded from the OS on every run: each run tests new data.
inline std::mt19937& rng() {
  static std::mt19937 g{std::random_device{}()};
  return g;
}

// n draws from N(0, scale²).
inline std::vector<float> randn(int64_t n, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng());
  return v;
}

// ‖a − ref‖ / ‖ref‖ (‖a − ref‖ when ref is all zero); NaN anywhere is infinitely wrong.
inline double rel_err(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(ref[i])) return INFINITY;
    num += (double(a[i]) - ref[i]) * (double(a[i]) - ref[i]);
    den += double(ref[i]) * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

}  // namespace imp::test
