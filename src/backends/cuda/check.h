// Every CUDA runtime call is checked; a failure is an imp::Error naming the call and site.
#pragma once

#include <cuda_runtime.h>

#include "common/error.h"

#define IMP_CUDA_CHECK(expr)                                                                      \
  do {                                                                                            \
    const cudaError_t imp_cuda_err_ = (expr);                                                     \
    if (imp_cuda_err_ != cudaSuccess) {                                                           \
      ::imp::fail("CUDA error '{}' in {} at {}:{}", cudaGetErrorString(imp_cuda_err_), #expr,     \
                  __FILE__, __LINE__);                                                            \
    }                                                                                             \
  } while (0)

// After a kernel launch: launch-configuration errors surface here, not at the next sync.
#define IMP_CUDA_CHECK_LAUNCH() IMP_CUDA_CHECK(cudaGetLastError())
