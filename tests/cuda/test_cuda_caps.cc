// The CUDA planner caps answer from the GEMV registry (host-only: runs without a GPU).
#include <gtest/gtest.h>

#include <unistd.h>

#include <fmt/core.h>

#include <filesystem>

#include "backends/cuda/cuda_caps.h"
#include "backends/cuda/gemv.h"
#include "formats/traits.h"
#include "io/model_file.h"
#include "planner/storage_plan.h"
#include "quant/synth_model.h"

namespace imp::cuda {
namespace {

TEST(CudaCaps, MatmulTiersAreExactlyTheRegistryFormats) {
  const DeviceCaps caps = cuda_device_caps();
  int served = 0;
  for (int i = 0; i < kFormatCount; ++i) {
    const auto f = FormatId(i);
    bool in_registry = false;
    for (const GemvKernel& k : gemv_kernels()) in_registry |= k.format == f;
    EXPECT_EQ(caps.supports(WeightOp::kMatmul, StorageTier::kMapped, f), in_registry) << format_name(f);
    EXPECT_EQ(in_registry, gemv_supports(f)) << format_name(f);
    served += in_registry;
  }
  EXPECT_GE(served, 22);  // bf16 f16, 12 GGUF types, nvfp4 mxfp4 (ggml), the checkpoint tiers
  EXPECT_TRUE(caps.supports(WeightOp::kMatmul, StorageTier::kBF16, FormatId::NF4));    // held as bf16
  EXPECT_FALSE(caps.supports(WeightOp::kMatmul, StorageTier::kF32, FormatId::Q4_0));   // no f32 GEMV
  EXPECT_FALSE(caps.supports(WeightOp::kMatmul, StorageTier::kMapped, FormatId::NF4));
  EXPECT_TRUE(caps.supports(WeightOp::kVector, StorageTier::kMapped, FormatId::F32));
  EXPECT_EQ(caps.kernel_name(WeightOp::kMatmul, FormatId::FP8_E4M3_BLOCK128), "cuda.gemv.fp8_e4m3_block128_vec16");
  // What the backend's default decode runs: not the integer-dot kernels (opt-in), and Q5_K /
  // Q6_K on the tensor cores unless their kMma layout is switched off.
  EXPECT_EQ(caps.kernel_name(WeightOp::kMatmul, FormatId::Q4_0), "cuda.gemv.q4_0_mma_bulk");
  const bool saved = mma_high_bit_formats_on();
  set_mma_high_bit_formats(false);
  EXPECT_EQ(caps.kernel_name(WeightOp::kMatmul, FormatId::Q5_K), "cuda.gemv.q5_k_vec16");
  EXPECT_EQ(caps.kernel_name(WeightOp::kMatmul, FormatId::Q6_K), "cuda.gemv.q6_k_split_vec16");
  set_mma_high_bit_formats(true);
  EXPECT_EQ(caps.kernel_name(WeightOp::kMatmul, FormatId::Q6_K), "cuda.gemv.q6_k_mma_bulk");
  EXPECT_EQ(caps.kernel_name(WeightOp::kMatmul, FormatId::Q5_K), "cuda.gemv.q5_k_mma_bulk");
  set_mma_high_bit_formats(saved);
}

TEST(CudaCaps, PlanOfASyntheticModelUsesCudaKernels) {
  namespace fs = std::filesystem;
  const fs::path out = fs::temp_directory_path() / fmt::format("imp_caps_{}.gguf", ::getpid());
  SynthOptions o;
  o.preset = "tiny";
  o.type = FormatId::Q4_1;
  o.out = out.string();
  o.layers = 1;
  synth_model(o);
  const auto file = open_model_file(out.string());
  const StoragePlan plan = plan_storage(*file, cuda_device_caps());
  EXPECT_EQ(plan.device, "cuda sm_90");
  EXPECT_EQ(plan.at("blk.0.attn_q.weight").kernel, "cuda.gemv.q4_1_vec16");
  EXPECT_EQ(plan.at("output.weight").held_format, FormatId::Q6_K);
  EXPECT_EQ(plan.at("blk.0.attn_norm.weight").held_format, FormatId::F32);
  fs::remove(out);
}

}  // namespace
}  // namespace imp::cuda
