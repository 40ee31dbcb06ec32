#include "planner/device_caps.h"

#include "common/error.h"

namespace imp {

void require_kv_type(const DeviceCaps& caps, KvType type, int64_t head_dim) {
  if (!caps.supports_kv || !caps.supports_kv(type, head_dim)) {
    fail("KV type {} is not supported by backend {} (head_dim {})", kv_type_name(type), caps.name, head_dim);
  }
}

}  // namespace imp
