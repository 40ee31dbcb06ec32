// Registry of AVX2 kernels. Compiled without -mavx2 on purpose: it only hands out
// function pointers, and must run on any x86-64.
#include "backends/cpu/row_kernels_avx2.h"

namespace imp {
namespace {

// The AVX2 quantizer of an activation format (F32 activations need none: a copy).
QuantizeRowFn avx2_activation_quantizer(FormatId activation) {
  switch (activation) {
    case FormatId::Q8_0: return avx2::quantize_row_q8_0;
    case FormatId::Q8_1: return avx2::quantize_row_q8_1;
    case FormatId::Q8_K: return avx2::quantize_row_q8_k;
    default: return nullptr;
  }
}

Avx2RowKernels weight_kernels(FormatId format) {
  using F = FormatId;
#define IMP_AVX2_CASE(id, fmt) \
  case F::id: return {avx2::dequantize_row_##fmt, nullptr, avx2::vec_dot_##fmt};
  switch (format) {
    IMP_AVX2_CASE(Q4_0, q4_0)
    IMP_AVX2_CASE(Q4_1, q4_1)
    IMP_AVX2_CASE(Q5_0, q5_0)
    IMP_AVX2_CASE(Q5_1, q5_1)
    IMP_AVX2_CASE(Q8_0, q8_0)
    IMP_AVX2_CASE(IQ4_NL, iq4_nl)
    IMP_AVX2_CASE(Q2_K, q2_k)
    IMP_AVX2_CASE(Q3_K, q3_k)
    IMP_AVX2_CASE(Q4_K, q4_k)
    IMP_AVX2_CASE(Q5_K, q5_k)
    IMP_AVX2_CASE(Q6_K, q6_k)
    IMP_AVX2_CASE(IQ4_XS, iq4_xs)
    IMP_AVX2_CASE(MXFP4, mxfp4)
    IMP_AVX2_CASE(NVFP4, nvfp4)
    IMP_AVX2_CASE(NVFP4_CKPT, nvfp4_ckpt)
    IMP_AVX2_CASE(MXFP4_CKPT, mxfp4_ckpt)
    IMP_AVX2_CASE(F8_E4M3, f8_e4m3)
    IMP_AVX2_CASE(F8_E5M2, f8_e5m2)
    IMP_AVX2_CASE(FP8_E4M3_TENSOR, fp8_e4m3_tensor)
    IMP_AVX2_CASE(FP8_E4M3_CHANNEL, fp8_e4m3_channel)
    IMP_AVX2_CASE(FP8_E4M3_BLOCK128, fp8_e4m3_block128)
    IMP_AVX2_CASE(F16, f16)
    IMP_AVX2_CASE(BF16, bf16)
    // F32 rows need no dequantization (the reference is a memcpy).
    case F::F32: return {nullptr, nullptr, avx2::vec_dot_f32};
    default: return {};
  }
#undef IMP_AVX2_CASE
}

}  // namespace

Avx2RowKernels avx2_row_kernels(FormatId format) {
  Avx2RowKernels k = weight_kernels(format);
  if (format_traits(format).vec_dot_ref) {
    k.quantize_activation = avx2_activation_quantizer(format_traits(format).dot_activation);
  }
  return k;
}

}  // namespace imp
