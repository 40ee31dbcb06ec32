#include "planner/storage_tier.h"

namespace imp {

std::string_view storage_tier_name(StorageTier tier) {
  switch (tier) {
    case StorageTier::kMapped: return "mapped";
    case StorageTier::kF32: return "f32";
    case StorageTier::kBF16: return "bf16";
    case StorageTier::kNVFP4: return "nvfp4";
  }
  return "?";
}

std::string_view weight_op_name(WeightOp op) {
  switch (op) {
    case WeightOp::kMatmul: return "matmul";
    case WeightOp::kEmbeddingLookup: return "embedding";
    case WeightOp::kVector: return "vector";
  }
  return "?";
}

}  // namespace imp
