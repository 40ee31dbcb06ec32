// Every cuBLAS call is checked; a failure is an imp::Error naming the status, call and site.
#pragma once

#include <cublas_v2.h>

#include "common/error.h"

#define IMP_CUBLAS_CHECK(expr)                                                                     \
  do {                                                                                             \
    const cublasStatus_t imp_cublas_st_ = (expr);                                                  \
    if (imp_cublas_st_ != CUBLAS_STATUS_SUCCESS) {                                                 \
      ::imp::fail("cuBLAS error {} ({}) in {} at {}:{}", int(imp_cublas_st_),                      \
                  cublasGetStatusString(imp_cublas_st_), #expr, __FILE__, __LINE__);               \
    }                                                                                              \
  } while (0)
