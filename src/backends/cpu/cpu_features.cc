#include "backends/cpu/cpu_features.h"

#include <cstdlib>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <string>

namespace imp {

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = [] {
    CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
    // cpuid leaf 1: ECX bit 12 FMA, bit 27 OSXSAVE, bit 29 F16C; leaf 7: EBX bit 5 AVX2.
    // XGETBV confirms the OS saves the YMM state (bits 1 and 2 of XCR0).
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
      const bool osxsave = c & (1u << 27);
      unsigned xcr0 = 0;
      if (osxsave) {
        unsigned hi = 0;
        __asm__("xgetbv" : "=a"(xcr0), "=d"(hi) : "c"(0));
      }
      const bool ymm = osxsave && (xcr0 & 6u) == 6u;
      f.fma = ymm && (c & (1u << 12));
      f.f16c = ymm && (c & (1u << 29));
      if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) f.avx2 = ymm && (b & (1u << 5));
    }
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
