// The AVX2+FMA+F16C kernels (files *_avx2.cc). Only called after cpu_features() says the
// CPU has all three. A null entry means "no fast kernel yet; use the reference".
//
// Contract with the scalar references of formats/ (tests/backends/cpu/test_row_kernels.cc):
//   dequantize_row_*  bit-identical output (same fp32 operations in the same order);
//   quantize_row_q8_* byte-identical blocks (same rounding: roundf for Q8_0/Q8_1,
//                     nearest-even for Q8_K);
//   vec_dot_*         exact integer sums per block, FP32 across blocks: within 1e-5 of
//                     Σ|w·a| of the reference.
// Signatures are those of formats/traits.h (DequantizeRowFn, QuantizeRowFn, VecDotFn).
#pragma once

#include "formats/traits.h"

namespace imp {

struct Avx2RowKernels {
  DequantizeRowFn dequantize = nullptr;
  QuantizeRowFn quantize_activation = nullptr;
  VecDotFn vec_dot = nullptr;
};

Avx2RowKernels avx2_row_kernels(FormatId format);

namespace avx2 {

#define IMP_AVX2_WEIGHT_KERNELS(fmt)                                          \
  void dequantize_row_##fmt(const ConstRowPlanes& src, float* dst, int64_t n); \
  float vec_dot_##fmt(const ConstRowPlanes& w, const void* act, int64_t n);

// legacy_avx2.cc — activations Q8_0 (Q4_1, Q5_1: Q8_1)
IMP_AVX2_WEIGHT_KERNELS(q4_0)
IMP_AVX2_WEIGHT_KERNELS(q4_1)
IMP_AVX2_WEIGHT_KERNELS(q5_0)
IMP_AVX2_WEIGHT_KERNELS(q5_1)
IMP_AVX2_WEIGHT_KERNELS(q8_0)
IMP_AVX2_WEIGHT_KERNELS(iq4_nl)
// kquants_avx2.cc — activations Q8_K
IMP_AVX2_WEIGHT_KERNELS(q2_k)
IMP_AVX2_WEIGHT_KERNELS(q3_k)
IMP_AVX2_WEIGHT_KERNELS(q4_k)
IMP_AVX2_WEIGHT_KERNELS(q5_k)
IMP_AVX2_WEIGHT_KERNELS(q6_k)
IMP_AVX2_WEIGHT_KERNELS(iq4_xs)
// fp4_avx2.cc — activations Q8_0
IMP_AVX2_WEIGHT_KERNELS(mxfp4)
IMP_AVX2_WEIGHT_KERNELS(nvfp4)
IMP_AVX2_WEIGHT_KERNELS(nvfp4_ckpt)
IMP_AVX2_WEIGHT_KERNELS(mxfp4_ckpt)
// fp8_avx2.cc — activations F32
IMP_AVX2_WEIGHT_KERNELS(f8_e4m3)
IMP_AVX2_WEIGHT_KERNELS(f8_e5m2)
IMP_AVX2_WEIGHT_KERNELS(fp8_e4m3_tensor)
IMP_AVX2_WEIGHT_KERNELS(fp8_e4m3_channel)
IMP_AVX2_WEIGHT_KERNELS(fp8_e4m3_block128)
// float_avx2.cc — activations F32
IMP_AVX2_WEIGHT_KERNELS(f16)
IMP_AVX2_WEIGHT_KERNELS(bf16)
float vec_dot_f32(const ConstRowPlanes& w, const void* act, int64_t n);

#undef IMP_AVX2_WEIGHT_KERNELS

// activations_avx2.cc
void quantize_row_q8_0(const float* src, const RowPlanes& dst, int64_t n);
void quantize_row_q8_1(const float* src, const RowPlanes& dst, int64_t n);
void quantize_row_q8_k(const float* src, const RowPlanes& dst, int64_t n);

}  // namespace avx2
}  // namespace imp
