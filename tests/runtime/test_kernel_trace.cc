// The per-kernel decode-step table of `imp bench --trace-kernels` (runtime/kernel_trace.h):
// names shortened, timeline advances charged to the kernel that ends, idle time apart.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "runtime/kernel_trace.h"

namespace imp {
namespace {

TEST(KernelTrace, ShortNamesDropNamespacesParametersAndReturnType) {
  EXPECT_EQ(short_kernel_name("void imp::cuda::detail::(anonymous namespace)::gemv_mma_bulk_kernel<imp::cuda::detail::"
                              "(anonymous namespace)::Q4_0Mma, 1, false>(imp::cuda::detail::MmaJob, "
                              "imp::cuda::detail::(anonymous namespace)::BulkMaps, long, int, bool)"),
            "gemv_mma_bulk_kernel<Q4_0Mma, 1, false>");
  EXPECT_EQ(short_kernel_name("void imp::cuda::(anonymous namespace)::attention_decode_kernel<(imp::KvType)2>(int)"),
            "attention_decode_kernel<(KvType)2>");
  // Mangled or C names pass through.
  EXPECT_EQ(short_kernel_name("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64"),
            "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64");
  EXPECT_EQ(short_kernel_name("_Z3fooPf"), "_Z3fooPf");
}

TEST(KernelTrace, AdvancesSumToTheWindowAndChargeGapsToTheNextKernel) {
  // Two steps of: A [0, 10), B starts early under PDL [5, 30), gap, C [40, 45); then again
  // 100 ns later. Times in ns.
  std::vector<KernelSpan> spans;
  for (uint64_t base : {1000u, 1100u}) {
    spans.push_back({"void ns::A(int)", base + 0, base + 10});
    spans.push_back({"void ns::B(int)", base + 5, base + 30});
    spans.push_back({"void ns::C(int)", base + 40, base + 45});
  }
  const KernelTrace t = summarize_kernel_trace(spans, 2);
  EXPECT_EQ(t.steps, 2);
  EXPECT_EQ(t.launches, 6);
  EXPECT_DOUBLE_EQ(t.window_us, 0.145);  // 1000 → 1145 ns
  // Idle: (30, 40) twice and (1045, 1100): 10 + 10 + 55 ns.
  EXPECT_NEAR(t.idle_us, 0.075, 1e-12);
  double sum = 0;
  for (const KernelTraceRow& r : t.rows) sum += r.advance_us;
  EXPECT_NEAR(sum, t.window_us, 1e-12);
  ASSERT_EQ(t.rows.size(), 3u);
  // C: 15 ns (30 → 45) in step 1 and 15 in step 2 = 30; A: 10 + (1110 − 1045 = 65) = 75;
  // B: 20 + 20 = 40. Sorted by advance: A, B, C.
  EXPECT_EQ(t.rows[0].kernel, "A");
  EXPECT_NEAR(t.rows[0].advance_us, 0.075, 1e-12);
  EXPECT_EQ(t.rows[1].kernel, "B");
  EXPECT_NEAR(t.rows[1].advance_us, 0.040, 1e-12);
  EXPECT_NEAR(t.rows[1].duration_us, 0.050, 1e-12);  // 25 ns twice, overlap with A included
  EXPECT_EQ(t.rows[2].kernel, "C");
  EXPECT_NEAR(t.rows[2].advance_us, 0.030, 1e-12);
  EXPECT_EQ(t.rows[2].launches, 2);

  const std::string table = format_kernel_trace(t, "decode step", 2);
  EXPECT_NE(table.find("decode step, kernel by kernel (2 traced"), std::string::npos) << table;
  EXPECT_NE(table.find("(1 other kernels)"), std::string::npos) << table;
  EXPECT_NE(table.find("µs per step, 3.0 launches"), std::string::npos) << table;
}

TEST(KernelTrace, EmptyTraceIsEmpty) {
  const KernelTrace t = summarize_kernel_trace({}, 5);
  EXPECT_EQ(t.launches, 0);
  EXPECT_TRUE(t.rows.empty());
  EXPECT_EQ(t.window_us, 0.0);
}

}  // namespace
}  // namespace imp
