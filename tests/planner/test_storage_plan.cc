// plan_storage: roles from GGUF and Hugging Face names alike, the activation mode recorded
// per matmul row, vectors converted only where the plan says so.
#include <gtest/gtest.h>

#include "backends/cpu/cpu_backend.h"
#include "io/model_file.h"
#include "planner/storage_plan.h"

namespace imp {
namespace {

TensorSource tensor(const std::string& name, std::vector<int64_t> shape, FormatId f) {
  TensorSource t;
  t.name = name;
  t.shape = std::move(shape);
  t.format = f;
  return t;
}

ModelFile hf_llama(bool tied) {
  ModelFile m;
  m.path = "hf-test";
  m.config.architecture = "llama";
  m.config.tie_word_embeddings = tied;
  m.tensors.push_back(tensor("model.embed_tokens.weight", {96, 64}, FormatId::BF16));
  m.tensors.push_back(tensor("model.norm.weight", {64}, FormatId::BF16));
  m.tensors.push_back(tensor("model.layers.0.input_layernorm.weight", {64}, FormatId::F32));
  m.tensors.push_back(tensor("model.layers.0.self_attn.q_proj.weight", {64, 64}, FormatId::Q8_0));
  if (!tied) m.tensors.push_back(tensor("lm_head.weight", {96, 64}, FormatId::BF16));
  return m;
}

TEST(StoragePlan, HuggingFaceNamesGetGgufRoles) {
  for (bool tied : {false, true}) {
    const ModelFile m = hf_llama(tied);
    const StoragePlan plan = plan_storage(m, cpu_device_caps());
    EXPECT_EQ(plan.at("model.embed_tokens.weight").role,
              tied ? WeightRole::kTiedEmbeddingLmHead : WeightRole::kEmbedding);
    EXPECT_EQ(plan.at("model.norm.weight").role, WeightRole::kNorm);
    EXPECT_EQ(plan.at("model.layers.0.self_attn.q_proj.weight").role, WeightRole::kLinear);
    if (!tied) EXPECT_EQ(plan.at("lm_head.weight").role, WeightRole::kLmHead);
    // A BF16 norm is converted to F32 (the plan says so); an F32 one is used in place.
    EXPECT_EQ(plan.at("model.norm.weight").tier, StorageTier::kF32);
    EXPECT_EQ(plan.at("model.layers.0.input_layernorm.weight").tier, StorageTier::kMapped);
    EXPECT_EQ(plan.at("model.layers.0.input_layernorm.weight").held_format, FormatId::F32);
  }
}

TEST(StoragePlan, ActivationModeRecordedPerMatmulRow) {
  const ModelFile m = hf_llama(false);
  const StoragePlan f32 = plan_storage(m, cpu_device_caps());
  EXPECT_EQ(f32.act_quant, ActQuant::kNone);
  EXPECT_EQ(f32.at("model.layers.0.self_attn.q_proj.weight").activation, FormatId::F32);
  EXPECT_EQ(f32.at("model.layers.0.self_attn.q_proj.weight").kernel, "cpu.matmul.q8_0·f32");
  PlanPolicy q8;
  q8.act_quant = ActQuant::kQ8;
  const StoragePlan p = plan_storage(m, cpu_device_caps(), q8);
  EXPECT_EQ(p.act_quant, ActQuant::kQ8);
  EXPECT_EQ(p.at("model.layers.0.self_attn.q_proj.weight").activation, FormatId::Q8_0);
  EXPECT_EQ(p.at("model.layers.0.self_attn.q_proj.weight").kernel, "cpu.matmul.q8_0·q8_0");
  EXPECT_EQ(p.at("lm_head.weight").activation, FormatId::F32);  // BF16 dots F32 activations either way
  EXPECT_EQ(p.at("model.norm.weight").activation, FormatId::F32);  // vectors are no matmul
}

}  // namespace
}  // namespace imp
