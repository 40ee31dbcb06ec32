// Fused weight-decode × F32-activation dot products: the default fast matmul (ops.h,
// ActQuant::kNone) for the formats listed here; every other format decodes the row into a
// buffer and runs the F32 dot (same result, one more pass through L1).
//
// Each kernel decodes one 32-element block into registers (the codes as int8 lanes, the
// block's scale d and offset m, with the decoders the int8 kernels use), forms
// w = float(q)·d + m with one FMA and accumulates w·x in FP32 over 4 independent 8-lane
// chains. Weights equal the reference decode within 1 ulp (one rounding instead of two for
// Q4_1), so results agree with matmul_ref within FP32 summation error (~1e-6 relative).
// Signature: VecDotFn with `act` a float row of n elements (n a multiple of 32).
#pragma once

#include "backends/cpu/cpu_features.h"
#include "formats/traits.h"

namespace imp {

// The fused kernel for (format, isa), or nullptr when there is none.
VecDotFn f32_activation_dot(FormatId format, CpuIsa isa);

namespace avx2 {
// f32act_avx2.cc
float dot_f32act_q4_0(const ConstRowPlanes& w, const void* act, int64_t n);
float dot_f32act_q4_1(const ConstRowPlanes& w, const void* act, int64_t n);
float dot_f32act_q8_0(const ConstRowPlanes& w, const void* act, int64_t n);
}  // namespace avx2

}  // namespace imp
