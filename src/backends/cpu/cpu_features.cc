#include "backends/cpu/cpu_features.h"

#include <cstdlib>
#include <string>

namespace imp {

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = [] {
    CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
    f.f16c = __builtin_cpu_supports("f16c");
#endif
    return f;
  }();
  return features;
}

CpuIsa best_cpu_isa() {
  static const CpuIsa isa = [] {
    if (const char* env = std::getenv("IMP_CPU_ISA"); env && std::string(env) == "scalar") return CpuIsa::kScalar;
    const auto& f = cpu_features();
    return (f.avx2 && f.fma && f.f16c) ? CpuIsa::kAvx2 : CpuIsa::kScalar;
  }();
  return isa;
}

std::string_view cpu_isa_name(CpuIsa isa) { return isa == CpuIsa::kAvx2 ? "avx2" : "scalar"; }

}  // namespace imp
