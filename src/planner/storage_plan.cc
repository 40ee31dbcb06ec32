#include "planner/storage_plan.h"

#include <fmt/format.h>

#include "common/error.h"
#include "formats/traits.h"
#include "io/tensor_names.h"

namespace imp {

namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int64_t tier_bytes(const TensorSource& t, StorageTier tier) {
  switch (tier) {
    case StorageTier::kF32: return t.elements() * 4;
    case StorageTier::kBF16: return t.elements() * 2;
    case StorageTier::kNVFP4: return t.elements() / 2 + t.elements() / 16 + 4;  // codes, E4M3 scales, G
    case StorageTier::kMapped: break;
  }
  return t.bytes();
}

// NVFP4 holds rows of whole 16-element blocks.
bool fits_nvfp4(const TensorSource& t) { return t.shape.size() == 2 && t.shape[1] % 16 == 0; }

// The decode-cache rule: which matmul weights get an NVFP4 copy for decode, and why.
void plan_decode_copy(const TensorSource& t, const DeviceCaps& caps, const PlanPolicy& policy, StoragePlanRow& row) {
  row.decode_tier = row.tier;
  row.decode_format = row.held_format;
  row.decode_bytes = row.bytes;
  const bool matmul = row.op == WeightOp::kMatmul || row.role == WeightRole::kTiedEmbeddingLmHead;
  if (!matmul || row.held_format == FormatId::NVFP4_CKPT) return;
  const bool head = row.role == WeightRole::kLmHead || row.role == WeightRole::kTiedEmbeddingLmHead;
  const float held_bits = format_traits(row.held_format).bits_per_weight;
  const float nvfp4_bits = format_traits(FormatId::NVFP4_CKPT).bits_per_weight;
  std::string why;
  if (head && policy.nvfp4_lm_head) {
    why = "nvfp4 lm_head opt-in";
  } else if (row.role == WeightRole::kLinear && policy.decode_cache_nvfp4 && format_traits(t.format).gguf_type >= 0 &&
             held_bits > nvfp4_bits) {
    why = "decode cache nvfp4";
  } else {
    return;
  }
  if (!fits_nvfp4(t) || !caps.supports(WeightOp::kMatmul, StorageTier::kNVFP4, t.format)) {
    row.reason += fmt::format("; no {} copy: {}", why,
                              fits_nvfp4(t) ? "no nvfp4 kernel" : "rows are not whole 16-element blocks");
    return;
  }
  row.decode_tier = StorageTier::kNVFP4;
  row.decode_format = FormatId::NVFP4_CKPT;
  row.decode_bytes = tier_bytes(t, StorageTier::kNVFP4);
  row.reason += fmt::format("; {}: decode reads an nvfp4 copy ({:.2f} → {:.2f} MiB)", why,
                            double(row.bytes) / (1 << 20), double(row.decode_bytes) / (1 << 20));
}

// prefix: the device name's first word ("cpu", "cuda").
std::string kernel_name(WeightOp op, FormatId held, FormatId activation, const std::string& prefix) {
  if (op == WeightOp::kMatmul) return fmt::format("{}.matmul.{}·{}", prefix, format_name(held), format_name(activation));
  return fmt::format("{}.{}.{}", prefix, weight_op_name(op), format_name(held));
}

}  // namespace

std::string_view weight_role_name(WeightRole role) {
  switch (role) {
    case WeightRole::kEmbedding: return "embedding";
    case WeightRole::kTiedEmbeddingLmHead: return "embedding+lm_head";
    case WeightRole::kLmHead: return "lm_head";
    case WeightRole::kNorm: return "norm";
    case WeightRole::kBias: return "bias";
    case WeightRole::kRouter: return "router";
    case WeightRole::kLinear: return "linear";
  }
  return "?";
}

WeightRole weight_role(const std::string& name, int64_t n_dims, bool tied) {
  if (name.rfind("token_embd.", 0) == 0) return tied ? WeightRole::kTiedEmbeddingLmHead : WeightRole::kEmbedding;
  if (name.rfind("output.", 0) == 0 && ends_with(name, ".weight")) return WeightRole::kLmHead;
  if (ends_with(name, ".bias")) return WeightRole::kBias;
  if (name.find("_norm") != std::string::npos || n_dims == 1) return WeightRole::kNorm;
  if (name.find("ffn_gate_inp") != std::string::npos) return WeightRole::kRouter;
  return WeightRole::kLinear;
}

const StoragePlanRow* StoragePlan::find(const std::string& name) const {
  for (const auto& r : rows) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

const StoragePlanRow& StoragePlan::at(const std::string& name) const {
  if (const auto* r = find(name)) return *r;
  fail("storage plan has no row for tensor '{}'", name);
}

int64_t StoragePlan::total_bytes() const {
  int64_t n = 0;
  for (const auto& r : rows) n += r.bytes + (r.has_decode_copy() ? r.decode_bytes : 0);
  return n;
}

StoragePlan plan_storage(const ModelFile& model, const DeviceCaps& caps, const PlanPolicy& policy) {
  if (policy.sensitive_tier != StorageTier::kMapped && policy.sensitive_tier != StorageTier::kF32) {
    fail("plan policy: sensitive weights (embeddings, norms, router, lm_head) stay stored or go to f32, not {}",
         storage_tier_name(policy.sensitive_tier));
  }
  StoragePlan plan;
  plan.device = caps.name;
  plan.act_quant = policy.act_quant;
  const bool tied = model.config.tie_word_embeddings || (model.find("token_embd.weight") && !model.find("output.weight"));
  for (const TensorSource& t : model.tensors) {
    StoragePlanRow row;
    row.name = t.name;
    // Roles follow GGUF names; a Hugging Face checkpoint's names are translated first.
    const std::string role_name = hf_to_gguf_name(t.name, model.config.architecture).value_or(t.name);
    row.role = weight_role(role_name, int64_t(t.shape.size()), tied);
    row.disk_format = t.format;
    row.elements = t.elements();
    // Checkpoint packings (GPTQ/AWQ words) are repacked to canonical planes at load
    // (model_weights.cc); act-order GPTQ permutes columns across groups, which no kernel
    // takes, so it is dequantized (exactly) into f32/bf16 instead.
    const bool packed = t.layout != StoredLayout::kCanonical;
    const bool act_order = packed && !t.g_idx.empty();
    auto try_tier = [&](WeightOp op, StorageTier tier, std::string reason) {
      if (!caps.supports(op, tier, t.format)) return false;
      if (act_order && tier == StorageTier::kMapped) return false;
      if (tier == StorageTier::kNVFP4 && !fits_nvfp4(t)) return false;
      // Also needed: a tied embedding is looked up *and* multiplied.
      if (row.role == WeightRole::kTiedEmbeddingLmHead && !caps.supports(WeightOp::kMatmul, tier, t.format)) {
        return false;
      }
      row.op = op;
      row.tier = tier;
      row.reason = std::move(reason);
      return true;
    };
    const std::string disk = std::string(format_name(t.format));
    bool ok = false;
    switch (row.role) {
      case WeightRole::kNorm:
      case WeightRole::kBias:
        ok = try_tier(WeightOp::kVector, StorageTier::kMapped, "f32 vector, used as stored") ||
             try_tier(WeightOp::kVector, StorageTier::kF32, fmt::format("{}s run in f32; {} converted", weight_role_name(row.role), disk));
        break;
      case WeightRole::kEmbedding:
      case WeightRole::kTiedEmbeddingLmHead:
      case WeightRole::kLmHead:
      case WeightRole::kRouter: {
        const WeightOp op = row.role == WeightRole::kEmbedding || row.role == WeightRole::kTiedEmbeddingLmHead
                                ? WeightOp::kEmbeddingLookup
                                : WeightOp::kMatmul;
        const std::string what = std::string(weight_role_name(row.role));
        ok = try_tier(op, policy.sensitive_tier,
                      policy.sensitive_tier == StorageTier::kMapped
                          ? fmt::format("{} keeps its stored precision ({})", what, disk)
                          : fmt::format("policy: {} held in f32", what)) ||
             try_tier(op, StorageTier::kF32, fmt::format("no {} kernel for {} {}: converted to f32", caps.name, what, disk)) ||
             try_tier(op, StorageTier::kBF16,
                      fmt::format("no {} kernel for {} {} or f32: converted to bf16", caps.name, what, disk));
        break;
      }
      case WeightRole::kLinear:
        ok = try_tier(WeightOp::kMatmul, policy.linear_tier,
                      policy.linear_tier != StorageTier::kMapped
                          ? fmt::format("policy: linear layers held in {}", storage_tier_name(policy.linear_tier))
                      : packed ? fmt::format("{} runs as stored ({} repacked to canonical planes at load)", disk, t.note)
                               : fmt::format("{} runs as stored, memory-mapped", disk)) ||
             try_tier(WeightOp::kMatmul, StorageTier::kF32,
                      act_order ? fmt::format("act-order {} ({}): dequantized to f32", disk, t.note)
                                : fmt::format("no {} kernel for {}: converted to f32", caps.name, disk)) ||
             try_tier(WeightOp::kMatmul, StorageTier::kBF16,
                      fmt::format("no {} kernel for {} or f32: converted to bf16", caps.name, disk));
        break;
    }
    if (!ok) fail("planner: {} cannot run tensor '{}' ({}) in any tier", caps.name, t.name, disk);
    row.held_format = tier_format(row.tier, t.format);
    const std::string prefix = caps.name.substr(0, caps.name.find(' '));
    const WeightOp kernel_op = row.role == WeightRole::kTiedEmbeddingLmHead ? WeightOp::kMatmul : row.op;
    if (kernel_op == WeightOp::kMatmul && policy.act_quant == ActQuant::kQ8) {
      row.activation = format_traits(row.held_format).dot_activation;
    }
    row.kernel = caps.kernel_name ? caps.kernel_name(kernel_op, row.held_format)
                                  : kernel_name(kernel_op, row.held_format, row.activation, prefix);
    if (row.role == WeightRole::kTiedEmbeddingLmHead) {
      row.kernel = (caps.kernel_name ? caps.kernel_name(WeightOp::kEmbeddingLookup, row.held_format)
                                     : prefix + ".embedding") + "+" + row.kernel;
    }
    row.bytes = tier_bytes(t, row.tier);
    plan_decode_copy(t, caps, policy, row);
    plan.rows.push_back(std::move(row));
  }
  return plan;
}

StoragePlan as_decode_plan(StoragePlan plan) {
  for (StoragePlanRow& r : plan.rows) {
    if (!r.has_decode_copy()) continue;
    r.tier = r.decode_tier;
    r.held_format = r.decode_format;
    r.bytes = r.decode_bytes;
    r.reason += "; evaluated on the decode copy";
  }
  return plan;
}

}  // namespace imp

namespace imp {
StorageTier parse_storage_tier(const std::string& name) {
  for (StorageTier t : {StorageTier::kMapped, StorageTier::kF32, StorageTier::kBF16, StorageTier::kNVFP4}) {
    if (name == storage_tier_name(t)) return t;
  }
  fail("unknown storage tier '{}' (mapped, f32, bf16, nvfp4)", name);
}
}  // namespace imp
