// Fused weight-decode × F32-activation dot products: the default fast matmul (ops.h,
// ActQuant::kNone) for the formats listed here; every other format decodes the row into a
// buffer and runs the F32 dot (same result, one more pass through L1).
//
// Each kernel decodes one 32-element block into registers (code·d + m with one FMA, equal to
// the reference decode within 1 ulp) and accumulates w·x in FP32 over 4 independent 8-lane
// chains, so results agree with matmul_ref within FP32 summation error (~1e-6 relative).
// Signature: VecDotFn with `act` a float row of n elements (n a multiple of 32) in the
// transposed block order permute_f32_activation writes: act[32b + 8j + i] = x[32b + 4i + j]
// (0 ≤ i < 8, 0 ≤ j < 4) — the order in which the kernels decode codes (f32act_avx2.cc).
#pragma once

#include "backends/cpu/cpu_features.h"
#include "formats/traits.h"

namespace imp {

// The fused kernel for (format, isa), or nullptr when there is none.
VecDotFn f32_activation_dot(FormatId format, CpuIsa isa);
// out = x with every 32-element block transposed as above; n a multiple of 32.
void permute_f32_activation(const float* x, float* out, int64_t n);

namespace avx2 {
// f32act_avx2.cc
float dot_f32act_q4_0(const ConstRowPlanes& w, const void* act, int64_t n);
float dot_f32act_q4_1(const ConstRowPlanes& w, const void* act, int64_t n);
float dot_f32act_q8_0(const ConstRowPlanes& w, const void* act, int64_t n);
}  // namespace avx2

}  // namespace imp
