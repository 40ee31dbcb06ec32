// DeviceCaps — what the planner needs to know about a backend: its name and its one
// supports(op, tier, format) answer (the same function kernel selection and tests call),
// and its supports_kv(type, head_dim) answer for the KV cache.
#pragma once

#include <functional>
#include <string>

#include "formats/kv_type.h"
#include "planner/storage_tier.h"

namespace imp {

struct DeviceCaps {
  std::string name;  // "cpu (avx2)", "cuda sm_90"
  // Can this backend run `op` on a weight stored on disk as `disk_format` and held in `tier`?
  std::function<bool(WeightOp op, StorageTier tier, FormatId disk_format)> supports;
  // Can this backend keep a KV cache of `type` for heads of head_dim elements?
  std::function<bool(KvType type, int64_t head_dim)> supports_kv;
  // Optional: the kernel that will consume a weight held as `held` for `op`, as the plan
  // shows it. Unset: the planner's CPU kernel names.
  std::function<std::string(WeightOp op, FormatId held)> kernel_name;
};

// Fails, naming the KV type, head_dim and backend, unless caps.supports_kv says yes.
void require_kv_type(const DeviceCaps& caps, KvType type, int64_t head_dim);

}  // namespace imp
