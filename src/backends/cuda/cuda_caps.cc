#include "backends/cuda/cuda_caps.h"

#include <fmt/core.h>

#include "backends/cuda/gemv.h"
#include "formats/traits.h"

namespace imp::cuda {
namespace {

const GemvKernel* first_kernel(FormatId f) {
  for (const GemvKernel& k : gemv_kernels()) {
    if (k.format == f) return &k;
  }
  return nullptr;
}

bool cuda_supports(WeightOp op, StorageTier tier, FormatId disk) {
  const FormatId held = tier_format(tier, disk);
  switch (op) {
    case WeightOp::kVector: return held == FormatId::F32;
    case WeightOp::kMatmul:
    case WeightOp::kEmbeddingLookup: return first_kernel(held) != nullptr;
  }
  return false;
}

std::string cuda_kernel_name(WeightOp op, FormatId held) {
  if (op == WeightOp::kMatmul) {
    const GemvKernel* k = first_kernel(held);
    return k ? fmt::format("cuda.gemv.{}", k->name) : fmt::format("cuda.gemv.none({})", format_name(held));
  }
  if (op == WeightOp::kEmbeddingLookup) return fmt::format("cuda.dequant_rows.{}", format_name(held));
  return fmt::format("cuda.{}.{}", weight_op_name(op), format_name(held));
}

}  // namespace

DeviceCaps cuda_device_caps() {
  DeviceCaps caps;
  caps.name = "cuda sm_90";
  caps.supports = cuda_supports;
  caps.supports_kv = [](KvType, int64_t) { return false; };
  caps.kernel_name = cuda_kernel_name;
  return caps;
}

}  // namespace imp::cuda
