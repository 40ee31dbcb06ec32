// Run-time on/off switches read from the environment (A/B knobs such as IMP_CUDA_PDL):
// on unless the variable is set to "0".
#pragma once

#include <cstdlib>
#include <cstring>

namespace imp {

inline bool env_switch_on(const char* name) {
  const char* e = std::getenv(name);
  return !(e && std::strcmp(e, "0") == 0);
}

}  // namespace imp
