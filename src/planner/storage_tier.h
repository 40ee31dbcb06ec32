// StorageTier — the runtime layout a weight is held in, and the op families that consume
// weights. This is the vocabulary shared by the planner (which chooses a tier per weight)
// and the backends (which say what they can run on each tier); it depends on nothing but
// formats/.
//
// CPU tiers:
//   kMapped  the file's own bytes, memory-mapped, in the file's own format (no copy);
//   kF32     converted at load to plain float32 (exact for every format imp decodes);
//   kBF16    converted at load to bfloat16 (round-to-nearest-even of the decoded value);
//   kNVFP4   converted at load to NVFP4 (ModelOpt planes, formats/nvfp4_ckpt.h: E2M1 codes,
//            an E4M3 scale per 16 elements, a per-tensor F32 G = amax / (6·448)) — the
//            GGUF→NVFP4 decode cache (PlanPolicy::decode_cache), or every linear layer with
//            --storage nvfp4 (how the eval harness measures that cache's quality cost).
//            Rows need a multiple of 16 columns.
#pragma once

#include <cstdint>
#include <string_view>

#include "formats/format_id.h"

namespace imp {

enum class StorageTier : uint8_t { kMapped, kF32, kBF16, kNVFP4 };

// Kernel families a weight can feed.
enum class WeightOp : uint8_t {
  kMatmul,           // y = W·x over rows of W (linear layers, lm_head)
  kEmbeddingLookup,  // one row of W per token id, decoded to float
  kVector,           // a 1-D F32 vector used elementwise (norm gains, biases)
};

std::string_view storage_tier_name(StorageTier tier);
std::string_view weight_op_name(WeightOp op);

// The format a weight has once it is held in `tier` (kMapped keeps the disk format).
inline FormatId tier_format(StorageTier tier, FormatId disk) {
  switch (tier) {
    case StorageTier::kF32: return FormatId::F32;
    case StorageTier::kBF16: return FormatId::BF16;
    case StorageTier::kNVFP4: return FormatId::NVFP4_CKPT;
    case StorageTier::kMapped: break;
  }
  return disk;
}

}  // namespace imp
