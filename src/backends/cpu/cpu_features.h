// Run-time CPU feature detection. Kernels are compiled once per ISA (the *_avx2.cc files
// get -mavx2 -mfma -mf16c) and chosen here at start; IMP_CPU_ISA=scalar forces the
// scalar reference kernels everywhere (for A/B checks and for bisecting a bad kernel).
#pragma once

#include <string_view>

namespace imp {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
};

enum class CpuIsa { kScalar, kAvx2 };

const CpuFeatures& cpu_features();
// The best ISA this CPU runs, unless IMP_CPU_ISA says otherwise.
CpuIsa best_cpu_isa();
std::string_view cpu_isa_name(CpuIsa isa);

}  // namespace imp
