// CUPTI kernel tracing (backends/cuda/cupti_tracer.h) on the device: a window holds exactly
// the kernels launched in it, with demangled names and ordered timestamps; the decode-step
// trace of a tiny model adds up to its replayed steps. Skips without a GPU.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include "backends/cuda/check.h"
#include "backends/cuda/cupti_tracer.h"
#include "backends/cuda/gemv.h"
#include "forward_test_util.h"

namespace imp::cuda::test {
namespace {

TEST(CudaKernelTrace, AWindowHoldsTheKernelsLaunchedInIt) {
  IMP_SKIP_WITHOUT_GPU();
  cupti_start();
  constexpr int64_t kCols = 4096;
  float* x = nullptr;
  int8_t* qs = nullptr;
  float* d = nullptr;
  int32_t* sums = nullptr;
  IMP_CUDA_CHECK(cudaMalloc(&x, kCols * 4));
  IMP_CUDA_CHECK(cudaMalloc(&qs, kCols));
  IMP_CUDA_CHECK(cudaMalloc(&d, kCols / 32 * 4));
  IMP_CUDA_CHECK(cudaMalloc(&sums, kCols / 32 * 4));
  IMP_CUDA_CHECK(cudaMemset(x, 0, kCols * 4));
  quantize_x_q8_0(x, kCols, qs, d, sums, nullptr);  // before the window: not reported
  IMP_CUDA_CHECK(cudaDeviceSynchronize());
  (void)cupti_take(0, 0);
  const uint64_t t0 = cupti_now_ns();
  for (int i = 0; i < 3; ++i) quantize_x_q8_0(x, kCols, qs, d, sums, nullptr);
  IMP_CUDA_CHECK(cudaDeviceSynchronize());
  const uint64_t t1 = cupti_now_ns();
  const std::vector<KernelSpan> spans = cupti_take(t0, t1);
  cudaFree(x), cudaFree(qs), cudaFree(d), cudaFree(sums);
  ASSERT_EQ(spans.size(), 3u);
  for (const KernelSpan& k : spans) {
    EXPECT_NE(short_kernel_name(k.name).find("quantize_q8_0_kernel"), std::string::npos) << k.name;
    EXPECT_LE(t0, k.start_ns);
    EXPECT_LT(k.start_ns, k.end_ns);
    EXPECT_LE(k.end_ns, t1);
  }
  const KernelTrace t = summarize_kernel_trace(spans, 3);
  ASSERT_EQ(t.rows.size(), 1u);
  EXPECT_EQ(t.rows[0].launches, 3);
}

}  // namespace
}  // namespace imp::cuda::test
