// CPU row kernels per format: a fast row dequantizer, the quantizer for the activation
// format the dot product pairs with, and the dot product itself.
//
// cpu_row_kernels(format, isa) returns the fastest kernels the ISA has for the format and
// falls back to the scalar references of formats/ for anything it lacks, so callers never
// branch on the ISA themselves.
#pragma once

#include "backends/cpu/cpu_features.h"
#include "formats/traits.h"

namespace imp {

struct CpuRowKernels {
  DequantizeRowFn dequantize = nullptr;   // weight row → float
  QuantizeRowFn quantize_activation = nullptr;  // float → traits.dot_activation row
  VecDotFn vec_dot = nullptr;              // weight row · activation row
  CpuIsa dequantize_isa = CpuIsa::kScalar; // which ISA each entry came from
  CpuIsa quantize_isa = CpuIsa::kScalar;
  CpuIsa vec_dot_isa = CpuIsa::kScalar;
};

CpuRowKernels cpu_row_kernels(FormatId format, CpuIsa isa = best_cpu_isa());

}  // namespace imp
