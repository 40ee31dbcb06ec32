// DeviceCaps — what the planner needs to know about a backend: its name and its one
// supports(op, tier, format) answer (the same function kernel selection and tests call).
#pragma once

#include <functional>
#include <string>

#include "planner/storage_tier.h"

namespace imp {

struct DeviceCaps {
  std::string name;  // "cpu (avx2)", "cuda sm_90"
  // Can this backend run `op` on a weight stored on disk as `disk_format` and held in `tier`?
  std::function<bool(WeightOp op, StorageTier tier, FormatId disk_format)> supports;
};

}  // namespace imp
