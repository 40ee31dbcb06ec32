// The AVX2+FMA+F16C kernels (files *_avx2.cc). Only called after cpu_features() says the
// CPU has all three. A null entry means "no fast kernel yet; use the reference".
#pragma once

#include "formats/traits.h"

namespace imp {

struct Avx2RowKernels {
  DequantizeRowFn dequantize = nullptr;
  QuantizeRowFn quantize_activation = nullptr;
  VecDotFn vec_dot = nullptr;
};

Avx2RowKernels avx2_row_kernels(FormatId format);

}  // namespace imp
