// StoragePlan — the one decision of where and how each weight lives (../shared/DESIGN.md).
//
// plan_storage(model, caps, policy) gives every tensor of the model one row: the tier it
// will be held in, the kernel family that consumes it, its bytes in that tier and a one-line
// reason. Backends materialize exactly this; nothing downstream overrides a tier.
//
// Policy (what stays high precision): token embeddings, norms, biases, MoE routers and the
// lm_head are "sensitive" — they keep their stored format or go to F32, never to a tier of
// fewer bits than stored. Linear layers take policy.linear_tier when the backend supports it
// and fall back to F32 (with the reason) when it does not.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backends/cpu/ops.h"
#include "io/model_file.h"
#include "planner/device_caps.h"

namespace imp {

enum class WeightRole : uint8_t { kEmbedding, kTiedEmbeddingLmHead, kLmHead, kNorm, kBias, kRouter, kLinear };
std::string_view weight_role_name(WeightRole role);

struct PlanPolicy {
  StorageTier linear_tier = StorageTier::kMapped;     // attention / FFN projections
  StorageTier sensitive_tier = StorageTier::kMapped;  // embeddings, lm_head, router: kMapped or kF32
  // CPU matmul activations (backends/cpu/ops.h): kNone = F32 (exact), kQ8 = the format's
  // integer dot activation. The plan records it per matmul row and the backend is built
  // with plan.act_quant.
  ActQuant act_quant = ActQuant::kNone;
  // GGUF→NVFP4 decode cache (--decode-cache nvfp4): linear weights of a GGUF file whose
  // held format has more bits than NVFP4 also get an NVFP4 copy, made at load, that decode
  // steps (one token) read; prefill keeps the held format. Opt-in: it costs the copy's memory
  // and NVFP4's rounding on every generated token.
  bool decode_cache_nvfp4 = false;
  // The lm_head (or tied embedding's matmul) likewise, from any source format (--nvfp4-lm-head).
  bool nvfp4_lm_head = false;
};

struct StoragePlanRow {
  std::string name;
  WeightRole role = WeightRole::kLinear;
  FormatId disk_format = FormatId::F32;
  StorageTier tier = StorageTier::kMapped;
  FormatId held_format = FormatId::F32;  // tier_format(tier, disk_format)
  WeightOp op = WeightOp::kMatmul;
  // Activation format a matmul row consumes: F32, or with ActQuant::kQ8 the held format's
  // dot_activation (Q8_0/Q8_1/Q8_K; F32 for float formats). Vectors: the F32 they are
  // used as — a row whose tier is kMapped is used in place, any other tier is converted.
  FormatId activation = FormatId::F32;
  std::string kernel;  // "cpu.matmul.q4_1·f32"
  int64_t elements = 0;
  int64_t bytes = 0;   // in the chosen tier
  std::string reason;
  // What a decode step (one token) multiplies: the same as tier / held_format / bytes, or the
  // NVFP4 decode-cache copy (PlanPolicy::decode_cache_nvfp4, nvfp4_lm_head).
  StorageTier decode_tier = StorageTier::kMapped;
  FormatId decode_format = FormatId::F32;
  int64_t decode_bytes = 0;
  bool has_decode_copy() const { return decode_tier != tier; }
};

struct StoragePlan {
  std::string device;
  ActQuant act_quant = ActQuant::kNone;  // PlanPolicy::act_quant, for the backend
  std::vector<StoragePlanRow> rows;

  const StoragePlanRow* find(const std::string& name) const;
  const StoragePlanRow& at(const std::string& name) const;  // throws naming the tensor
  int64_t total_bytes() const;  // held weights plus decode-cache copies
};

// Role of a tensor from its (GGUF-style) name; tied says token_embd also serves as lm_head.
WeightRole weight_role(const std::string& name, int64_t n_dims, bool tied);

// Throws imp::Error when a weight has no tier the device can run.
StoragePlan plan_storage(const ModelFile& model, const DeviceCaps& caps, const PlanPolicy& policy = {});

// The plan as a decode step reads it: each row with a decode copy is held in that copy's
// tier instead (so every pass multiplies what decode would). The eval harness scores the
// decode cache's quality cost with it; a tied embedding then also looks its rows up in
// the copy, which a real decode does not.
StoragePlan as_decode_plan(StoragePlan plan);

}  // namespace imp

namespace imp {
// "mapped", "f32", "bf16" → tier; anything else is an imp::Error listing the choices.
StorageTier parse_storage_tier(const std::string& name);
}  // namespace imp
