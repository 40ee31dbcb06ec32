// The matrix-unit ceilings prefill is held to: measured dense GEMM rates of the tensor
// cores, in TFLOP/s, from the same run as the numbers they bound (../shared/DESIGN.md,
// "What fast means here").
#pragma once

#include <cstdint>

namespace imp::cuda {

struct MatrixRates {
  double bf16_tflops = 0.0;  // BF16 × BF16 → BF16, FP32 accumulation
  double fp8_tflops = 0.0;   // E4M3 × E4M3 → BF16, FP32 accumulation (no fast-accumulation mode)
  int64_t n = 0;             // the GEMM was n × n × n
  int iters = 0;             // timed iterations per type, after warm-up
};

// cuBLASLt on the current device: D (n × n) = Aᵀ · B in the TN layout the FP8 prefill uses,
// operands filled with random finite values (all-zero data would flatter the clocks), a few
// warm-up calls, then `iters` calls timed with CUDA events; rate = 2n³ · iters / seconds.
// FP8 runs with the same settings as the W8A8 prefill (gemm_fp8.h), so the fraction of it a
// prefill reaches is a fair one. Allocates ~0.4 GiB at n = 8192 and frees it.
MatrixRates measure_matrix_rates(int64_t n = 8192, int iters = 20);

}  // namespace imp::cuda
