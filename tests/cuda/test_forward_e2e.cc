// End to end: the llama forward pass on the CUDA backend against the CPU backend with the
// same storage plan — logits of every prompt position within 1e-2 relative (1e-3 with the
// FP32 prefill GEMM and FP32 decode activations), and the same 32-token greedy continuation (decode steps run eagerly,
// then as a captured and replayed CUDA graph). On a tiny random llama built in memory, and
// on the demo model (~/.cache/imp/models/SmolLM2-135M-Instruct.Q4_1.gguf) when present.
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "backends/cpu/cpu_backend.h"
#include "backends/cuda/gemm_dequant.h"
#include "formats/quant_matrix.h"
#include "forward_test_util.h"
#include "io/model_file.h"
#include "model/llama.h"
#include "runtime/generate.h"

namespace imp::cuda::test {
namespace {

// A llama with random weights: vocab 96, 2 layers, 4 heads of 16 (2 KV heads), n_ff 128,
// tied F16 embedding; attention weights Q8_0, FFN BF16/F16, F32 norms near 1.
std::unique_ptr<ModelFile> tiny_llama() {
  auto m = std::make_unique<ModelFile>();
  m->path = "<tiny random llama>";
  ModelConfig& c = m->config;
  c.architecture = "llama";
  c.n_vocab = 96;
  c.n_ctx_train = 512;
  c.n_embd = 64;
  c.n_layer = 2;
  c.n_ff = 128;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.head_dim = 16;
  c.rms_norm_eps = 1e-5f;
  c.tie_word_embeddings = true;
  uint64_t seed = 1000;
  auto add = [&](const std::string& name, FormatId f, std::vector<int64_t> shape, float scale, float mean = 0.0f) {
    const int64_t rows = shape.size() == 2 ? shape[0] : 1, cols = shape.back();
    auto x = random_floats(size_t(rows * cols), seed++, scale);
    for (float& v : x) v += mean;
    OwnedQuantMatrix q = quantize(f, x, rows, cols);
    m->owned.push_back(std::make_unique<std::vector<uint8_t>>(std::move(q.data)));
    TensorSource t;
    t.name = name;
    t.shape = shape;
    t.format = f;
    t.data = *m->owned.back();
    m->tensors.push_back(std::move(t));
  };
  add("token_embd.weight", FormatId::F16, {96, 64}, 1.0f);
  add("output_norm.weight", FormatId::F32, {64}, 0.1f, 1.0f);
  for (int l = 0; l < 2; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add(p + "attn_norm.weight", FormatId::F32, {64}, 0.1f, 1.0f);
    add(p + "ffn_norm.weight", FormatId::F32, {64}, 0.1f, 1.0f);
    add(p + "attn_q.weight", FormatId::Q8_0, {64, 64}, 0.2f);
    add(p + "attn_k.weight", FormatId::Q8_0, {32, 64}, 0.2f);
    add(p + "attn_v.weight", FormatId::Q8_0, {32, 64}, 0.2f);
    add(p + "attn_output.weight", FormatId::Q8_0, {64, 64}, 0.1f);
    add(p + "ffn_gate.weight", FormatId::BF16, {128, 64}, 0.15f);
    add(p + "ffn_up.weight", FormatId::F16, {128, 64}, 0.15f);
    add(p + "ffn_down.weight", FormatId::BF16, {64, 128}, 0.1f);
  }
  return m;
}

struct Run {
  std::vector<float> prompt_logits;
  std::vector<int32_t> tokens;
};

Run run_model(const ModelFile& file, const StoragePlan& plan, Backend& backend, std::span<const int32_t> prompt,
              int64_t n_gen) {
  LlamaModel model(file, plan, backend);
  // 300 tokens: the decode steps fall in the 256-token bucket, whose graph runs 8 attention splits.
  auto kv = backend.create_kv_cache(model.kv_config(std::max<int64_t>(300, int64_t(prompt.size()) + n_gen + 1), KvType::F32));
  GenerateParams gp;
  gp.n_predict = n_gen;
  gp.sampling.temperature = 0.0f;
  gp.keep_prompt_logits = true;
  const GenerateResult r = generate(model, *kv, prompt, gp, nullptr);
  return {r.prompt_logits, r.tokens};
}

void compare(const ModelFile& file, std::span<const int32_t> prompt, CpuOpsPath cpu_path, const PlanPolicy& policy = {}) {
  const StoragePlan plan = plan_storage(file, cuda_device_caps(), policy);
  CpuBackend cpu(cpu_path, 0);
  const Run want = run_model(file, plan, cpu, prompt, 32);
  const int64_t V = int64_t(want.prompt_logits.size() / prompt.size());
  for (CudaGemmPrecision prec : {CudaGemmPrecision::kF32, CudaGemmPrecision::kBF16}) {
    const bool f32 = prec == CudaGemmPrecision::kF32;
    CudaBackendOptions o;
    o.gemm = prec;
    // FP32 GEMM goes with the exact FP32-activation GEMVs; BF16 GEMM with the default f16
    // decode activations (the tensor-core GEMVs where the layout allows).
    o.decode_x = f32 ? CudaDecodeActivations::kF32 : CudaDecodeActivations::kF16;
    CudaBackend gpu(o);
    const Run got = run_model(file, plan, gpu, prompt, 32);
    ASSERT_EQ(got.prompt_logits.size(), want.prompt_logits.size());
    for (size_t t = 0; t < prompt.size(); ++t) {
      const std::vector<float> a(got.prompt_logits.begin() + int64_t(t) * V, got.prompt_logits.begin() + int64_t(t + 1) * V);
      const std::vector<float> b(want.prompt_logits.begin() + int64_t(t) * V, want.prompt_logits.begin() + int64_t(t + 1) * V);
      EXPECT_LT(rel_error(a, b), f32 ? 1e-3 : 1e-2) << "position " << t << (f32 ? " (f32 gemm)" : " (bf16 gemm)");
    }
    EXPECT_EQ(got.tokens, want.tokens) << (f32 ? "f32 gemm" : "bf16 gemm") << ": greedy continuation differs";
    EXPECT_GE(gpu.graphs_captured(), 1) << "the decode step was never captured as a CUDA graph";
    EXPECT_GE(gpu.graph_replays(), 20) << "the decode graph was not replayed";
  }
}

TEST(CudaForwardE2E, TinyRandomLlamaMatchesCpu) {
  IMP_SKIP_WITHOUT_GPU();
  const auto file = tiny_llama();
  const std::vector<int32_t> prompt = {1, 17, 5, 88, 42, 3, 64, 9, 95, 0, 31};
  compare(*file, prompt, CpuOpsPath::kReference);
}

// The prefill GEMMs of kMma weights take the fused-dequantization kernel by default (short
// prompts; the other tests here); this runs the tiny llama's Q8_0 attention projections
// through the other path, dequantize to BF16 + cuBLAS (long prompts): logits and tokens as
// the CPU's.
TEST(CudaForwardE2E, TinyRandomLlamaWithDequantCublasGemmMatchesCpu) {
  IMP_SKIP_WITHOUT_GPU();
  const FusedGemm saved = fused_gemm_mode();
  set_fused_gemm_mode(FusedGemm::kOff);
  const auto file = tiny_llama();
  const std::vector<int32_t> prompt = {1, 17, 5, 88, 42, 3, 64, 9, 95, 0, 31};
  compare(*file, prompt, CpuOpsPath::kReference);
  set_fused_gemm_mode(saved);
}

// The GGUF→NVFP4 decode cache and the NVFP4 lm_head opt-in: prompts multiply the source
// weights, decode steps (eager and graph-replayed) the NVFP4 copies, on both backends.
TEST(CudaForwardE2E, TinyRandomLlamaWithNvfp4DecodeCacheMatchesCpu) {
  IMP_SKIP_WITHOUT_GPU();
  const auto file = tiny_llama();
  PlanPolicy p;
  p.decode_cache_nvfp4 = true;
  p.nvfp4_lm_head = true;
  const StoragePlan plan = plan_storage(*file, cuda_device_caps(), p);
  ASSERT_TRUE(plan.at("blk.0.attn_q.weight").has_decode_copy()) << plan.at("blk.0.attn_q.weight").reason;
  ASSERT_TRUE(plan.at("token_embd.weight").has_decode_copy()) << plan.at("token_embd.weight").reason;
  const std::vector<int32_t> prompt = {1, 17, 5, 88, 42, 3, 64, 9, 95, 0, 31};
  compare(*file, prompt, CpuOpsPath::kReference, p);
}

// `imp bench --trace-kernels`: the replayed decode steps, kernel by kernel, add up.
TEST(CudaForwardE2E, DecodeStepTraceAddsUpToTheReplayedSteps) {
  IMP_SKIP_WITHOUT_GPU();
  const auto file = tiny_llama();
  const StoragePlan plan = plan_storage(*file, cuda_device_caps());
  CudaBackend gpu;
  gpu.start_kernel_trace();  // before the decode graph is captured
  // The cache must outlive the generation: its graphs go with it (run_model drops both).
  LlamaModel model(*file, plan, gpu);
  auto kv = gpu.create_kv_cache(model.kv_config(300, KvType::F32));
  GenerateParams gp;
  gp.n_predict = 8;
  gp.sampling.temperature = 0.0f;
  const std::vector<int32_t> prompt = {1, 17, 5, 88};
  (void)generate(model, *kv, prompt, gp, nullptr);
  const KernelTrace t = gpu.trace_decode_step(4);
  EXPECT_EQ(t.steps, 4);
  EXPECT_GE(t.launches, 4 * 2 * 4) << "fewer than 4 kernels per layer and step";
  EXPECT_EQ(t.launches % 4, 0) << "every replay runs the same kernels";
  double sum = 0;
  for (const KernelTraceRow& r : t.rows) sum += r.advance_us;
  EXPECT_NEAR(sum, t.window_us, 1e-6 * t.window_us);
  EXPECT_GE(t.idle_us, 0.0);
  EXPECT_LT(t.idle_us, t.window_us);
}

// The L2 weight prefetch of the decode attention and of the GEMV tails (l2_prefetch.h) is a
// hint: with none, a fraction of a plane (4 KiB budgets) or every next weight (64 MiB) the
// greedy tokens are the same, and the plans were really made (and issued: a bad range would
// fault the launch).
TEST(CudaForwardE2E, WeightPrefetchLeavesTheTokensUnchanged) {
  IMP_SKIP_WITHOUT_GPU();
  const auto file = tiny_llama();
  const StoragePlan plan = plan_storage(*file, cuda_device_caps());
  const std::vector<int32_t> prompt = {1, 17, 5, 88, 42, 3};
  const int64_t saved = l2_prefetch_budget(), saved_tail = l2_tail_budget();
  std::vector<int32_t> first;
  for (int64_t budget : {int64_t(0), int64_t(4) << 10, int64_t(64) << 20}) {
    SCOPED_TRACE(budget);
    set_l2_prefetch_budget(budget);
    set_l2_tail_budget(budget);
    CudaBackend gpu;
    const test::Run got = run_model(*file, plan, gpu, prompt, 24);
    if (budget == 0) {
      first = got.tokens;
      EXPECT_EQ(gpu.l2_prefetch_planned_bytes(), 0);
    } else {
      EXPECT_EQ(got.tokens, first);
      EXPECT_GT(gpu.l2_prefetch_planned_bytes(), 0) << "no decode attention was given weights to prefetch";
      EXPECT_GE(gpu.graph_replays(), 10);
    }
  }
  set_l2_prefetch_budget(saved);
  set_l2_tail_budget(saved_tail);
}

TEST(CudaForwardE2E, DemoModelMatchesCpu) {
  IMP_SKIP_WITHOUT_GPU();
  const char* home = std::getenv("HOME");
  const std::string path = std::string(home ? home : "") + "/.cache/imp/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not present";
  const auto file = open_model_file(path);
  // Q4_1 has no CUDA GEMV: the plan must fall back to a tier CUDA runs, with the reason.
  const StoragePlan plan = plan_storage(*file, cuda_device_caps());
  const StoragePlanRow& q = plan.at("blk.0.attn_q.weight");
  EXPECT_TRUE(gemv_supports(q.held_format)) << q.reason;
  const std::vector<int32_t> prompt = {1, 504, 3458, 282, 4077, 314, 253, 1535, 28, 216, 2205, 30, 339, 1345, 29, 198};
  compare(*file, prompt, CpuOpsPath::kFast);
}

}  // namespace
}  // namespace imp::cuda::test
