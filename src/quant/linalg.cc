#include "quant/linalg.h"

#include <cmath>

namespace imp::quant {

bool cholesky_lower(std::vector<double>& a, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    double* rj = a.data() + j * n;
    double d = rj[j];
    for (int64_t k = 0; k < j; ++k) d -= rj[k] * rj[k];
    if (!(d > 0)) return false;
    d = std::sqrt(d);
    rj[j] = d;
    for (int64_t i = j + 1; i < n; ++i) {
      double* ri = a.data() + i * n;
      double s = ri[j];
      for (int64_t k = 0; k < j; ++k) s -= ri[k] * rj[k];
      ri[j] = s / d;
    }
    for (int64_t k = j + 1; k < n; ++k) rj[k] = 0;
  }
  return true;
}

bool inverse_cholesky_upper(const std::vector<double>& h, int64_t n, std::vector<double>& u) {
  std::vector<double> l = h;
  if (!cholesky_lower(l, n)) return false;
  // M = L⁻¹ (lower), column by column of the identity: forward substitution.
  std::vector<double> m(size_t(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const double* li = l.data() + i * n;
    double* mi = m.data() + i * n;
    mi[i] = 1.0 / li[i];
    for (int64_t j = 0; j < i; ++j) {
      double s = 0;
      for (int64_t k = j; k < i; ++k) s -= li[k] * m[size_t(k * n + j)];
      mi[j] = s / li[i];
    }
  }
  // H⁻¹ = Mᵀ·M: (a, b) = Σ_k M[k,a]·M[k,b], k ≥ max(a, b).
  u.assign(size_t(n * n), 0.0);
  for (int64_t k = 0; k < n; ++k) {
    const double* mk = m.data() + k * n;
    for (int64_t a = 0; a <= k; ++a) {
      const double v = mk[a];
      if (v == 0) continue;
      double* ua = u.data() + a * n;
      for (int64_t b = a; b <= k; ++b) ua[b] += v * mk[b];
    }
  }
  for (int64_t a = 0; a < n; ++a) {
    for (int64_t b = a + 1; b < n; ++b) u[size_t(b * n + a)] = u[size_t(a * n + b)];
  }
  if (!cholesky_lower(u, n)) return false;
  // U = Lᵀ of H⁻¹'s lower factor.
  for (int64_t a = 0; a < n; ++a) {
    for (int64_t b = a + 1; b < n; ++b) {
      u[size_t(a * n + b)] = u[size_t(b * n + a)];
      u[size_t(b * n + a)] = 0;
    }
  }
  return true;
}

}  // namespace imp::quant
