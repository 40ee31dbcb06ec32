// The GGUF→NVFP4 decode cache (PlanPolicy::decode_cache_nvfp4, nvfp4_lm_head) on a
// synthetic Q8_0 llama: the plan gives every linear (and, opted in, the lm_head) an NVFP4
// decode copy with the bytes it saves; a single-token step multiplies exactly those copies
// (logits bit-identical to a model whose linears are held in NVFP4), a prompt step the
// source weights (bit-identical to a model without the cache); as_decode_plan plans the
// copies as held tiers.
#include <gtest/gtest.h>

#include <filesystem>
#include <unistd.h>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "formats/traits.h"
#include "io/model_file.h"
#include "model/llama.h"
#include "planner/storage_plan.h"
#include "quant/synth_model.h"
#include "runtime/kv_cache.h"

namespace imp {
namespace {

namespace fs = std::filesystem;

struct SynthQ8 {
  fs::path dir = fs::temp_directory_path() / ("imp_decode_cache_" + std::to_string(::getpid()));
  std::string path = (dir / "tiny-q8_0.gguf").string();
  SynthQ8() {
    fs::create_directories(dir);
    SynthOptions o;
    o.preset = "tiny";
    o.type = FormatId::Q8_0;
    o.container = SynthContainer::kGguf;
    o.out = path;
    o.seed = 7;
    o.layers = 2;
    o.threads = 2;
    synth_model(o);
  }
  ~SynthQ8() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

// Logits of a 5-token prompt (one multi-token forward) and, in a fresh cache, of a single
// token at position 0 (a one-token forward: the decode path, with no history).
struct Logits {
  std::vector<float> prompt_logits, step_logits;
};
Logits run(const ModelFile& file, const StoragePlan& plan) {
  CpuBackend backend(CpuOpsPath::kFast, 2);
  LlamaModel model(file, plan, backend);
  Logits r;
  KvCache kv(model.kv_config(32, KvType::F32));
  const std::vector<int32_t> prompt = {1, 5, 9, 13, 2};
  model.forward(prompt, kv, false, r.prompt_logits);
  KvCache kv1(model.kv_config(32, KvType::F32));
  const std::vector<int32_t> one = {17};
  model.forward(one, kv1, false, r.step_logits);
  return r;
}

TEST(DecodeCache, PlanGivesLinearsAndOptedInHeadAnNvfp4Copy) {
  SynthQ8 m;
  const auto file = open_model_file(m.path);
  PlanPolicy p;
  p.decode_cache_nvfp4 = true;
  const StoragePlan plan = plan_storage(*file, cpu_device_caps(), p);
  int copies = 0;
  for (const StoragePlanRow& r : plan.rows) {
    if (r.role == WeightRole::kLinear) {
      ASSERT_TRUE(r.has_decode_copy()) << r.name;
      EXPECT_EQ(r.decode_format, FormatId::NVFP4_CKPT);
      EXPECT_EQ(r.tier, StorageTier::kMapped);  // prefill keeps the source
      EXPECT_EQ(r.decode_bytes, r.elements / 2 + r.elements / 16 + 4) << r.name;
      EXPECT_LT(r.decode_bytes, r.bytes) << r.name;
      EXPECT_NE(r.reason.find("decode cache nvfp4"), std::string::npos) << r.reason;
      ++copies;
    } else {
      EXPECT_FALSE(r.has_decode_copy()) << r.name << ": not opted in";
    }
  }
  EXPECT_EQ(copies, 2 * 7);
  EXPECT_EQ(plan.total_bytes(), [&] {
    int64_t n = 0;
    for (const auto& r : plan.rows) n += r.bytes + (r.has_decode_copy() ? r.decode_bytes : 0);
    return n;
  }());
  p.nvfp4_lm_head = true;
  const StoragePlan with_head = plan_storage(*file, cpu_device_caps(), p);
  EXPECT_TRUE(with_head.at("output.weight").has_decode_copy());
  // Formats at or under NVFP4's 4.5 bits get no copy: nothing to save.
  PlanPolicy none;
  none.decode_cache_nvfp4 = true;
  none.linear_tier = StorageTier::kNVFP4;
  for (const StoragePlanRow& r : plan_storage(*file, cpu_device_caps(), none).rows) {
    EXPECT_FALSE(r.has_decode_copy()) << r.name << " is already held in nvfp4";
  }
}

TEST(DecodeCache, StepsReadTheCopyPromptsTheSource) {
  SynthQ8 m;
  const auto file = open_model_file(m.path);
  PlanPolicy cached;
  cached.decode_cache_nvfp4 = true;
  PlanPolicy held_nvfp4;
  held_nvfp4.linear_tier = StorageTier::kNVFP4;
  const Logits source = run(*file, plan_storage(*file, cpu_device_caps()));
  const Logits with_cache = run(*file, plan_storage(*file, cpu_device_caps(), cached));
  const Logits all_nvfp4 = run(*file, plan_storage(*file, cpu_device_caps(), held_nvfp4));
  // The prompt forward multiplies the Q8_0 weights: identical to no cache.
  EXPECT_EQ(with_cache.prompt_logits, source.prompt_logits);
  // A single-token step multiplies the NVFP4 copies: identical to the model held in NVFP4,
  // and not to the source model.
  EXPECT_EQ(with_cache.step_logits, all_nvfp4.step_logits);
  EXPECT_NE(with_cache.step_logits, source.step_logits);
}

TEST(DecodeCache, DecodePlanHoldsTheCopiesForEvaluation) {
  SynthQ8 m;
  const auto file = open_model_file(m.path);
  PlanPolicy cached;
  cached.decode_cache_nvfp4 = true;
  const StoragePlan eval_plan = as_decode_plan(plan_storage(*file, cpu_device_caps(), cached));
  PlanPolicy held_nvfp4;
  held_nvfp4.linear_tier = StorageTier::kNVFP4;
  const StoragePlan held = plan_storage(*file, cpu_device_caps(), held_nvfp4);
  for (const StoragePlanRow& r : eval_plan.rows) {
    EXPECT_EQ(r.held_format, held.at(r.name).held_format) << r.name;
    EXPECT_EQ(r.bytes, held.at(r.name).bytes) << r.name;
  }
  // Every pass on the copies: the prompt logits equal those of the model held in NVFP4.
  EXPECT_EQ(run(*file, eval_plan).prompt_logits, run(*file, held).prompt_logits);
}

}  // namespace
}  // namespace imp
