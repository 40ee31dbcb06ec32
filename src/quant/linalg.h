// Small dense double-precision linear algebra for GPTQ (row-major n × n matrices).
#pragma once

#include <cstdint>
#include <vector>

namespace imp::quant {

// In place: A (symmetric positive definite) → its lower Cholesky factor L (A = L·Lᵀ); the
// strict upper triangle is zeroed. Returns false (A left partly overwritten) when a pivot
// is not positive.
bool cholesky_lower(std::vector<double>& a, int64_t n);

// GPTQ's factor: the upper Cholesky factor U of H⁻¹ (H⁻¹ = Uᵀ·U), H SPD. False when H is
// not positive definite.
bool inverse_cholesky_upper(const std::vector<double>& h, int64_t n, std::vector<double>& u);

}  // namespace imp::quant
