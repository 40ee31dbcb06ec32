// Registry of AVX2 kernels. Compiled without -mavx2 on purpose: it only hands out
// function pointers, and must run on any x86-64.
#include "backends/cpu/row_kernels_avx2.h"

namespace imp {

Avx2RowKernels avx2_row_kernels(FormatId format) {
  switch (format) {
    default:
      return {};
  }
}

}  // namespace imp
