#include "backends/cpu/row_kernels.h"

#include "backends/cpu/row_kernels_avx2.h"

namespace imp {

CpuRowKernels cpu_row_kernels(FormatId format, CpuIsa isa) {
  const auto& t = format_traits(format);
  CpuRowKernels k;
  k.dequantize = t.dequantize_ref;
  k.quantize_activation = format_traits(t.dot_activation).quantize_ref;
  k.vec_dot = t.vec_dot_ref;
  if (isa == CpuIsa::kAvx2) {
    const Avx2RowKernels fast = avx2_row_kernels(format);
    if (fast.dequantize) {
      k.dequantize = fast.dequantize;
      k.dequantize_isa = CpuIsa::kAvx2;
    }
    if (fast.quantize_activation) {
      k.quantize_activation = fast.quantize_activation;
      k.quantize_isa = CpuIsa::kAvx2;
    }
    if (fast.vec_dot) {
      k.vec_dot = fast.vec_dot;
      k.vec_dot_isa = CpuIsa::kAvx2;
    }
  }
  return k;
}

}  // namespace imp
