#include "backends/cuda/cuda_caps.h"

#include <fmt/core.h>

#include "backends/cuda/forward_kernels.h"
#include "backends/cuda/gemv.h"
#include "formats/traits.h"

namespace imp::cuda {
namespace {

// The kernel CudaBackend::gemv takes in its default (f16-activation) decode mode: the first
// of the layout the upload would choose (mma_layout_chosen; 4096 columns stand for a row of
// whole units: Q6_K's tensor-core kernels only while they are opted in), skipping the
// integer-dot kernels (--act-quant q8 only).
const GemvKernel* first_kernel(FormatId f) {
  for (const GemvKernel& k : gemv_kernels()) {
    if (k.format != f || k.quantizes_x || (k.layout == WeightLayout::kMma && !mma_layout_chosen(f, 4096))) continue;
    return &k;
  }
  return nullptr;
}

bool cuda_supports(WeightOp op, StorageTier tier, FormatId disk) {
  const FormatId held = tier_format(tier, disk);
  const FormatTraits& t = format_traits(held);
  if (t.is_activation_only) return false;
  switch (op) {
    case WeightOp::kVector: return held == FormatId::F32;
    case WeightOp::kMatmul: return first_kernel(held) != nullptr;
    // CudaBackend::embedding decodes the looked-up rows on the host (exactly, as the CPU
    // reference does) and uploads them: any decodable format.
    case WeightOp::kEmbeddingLookup: return t.dequantize_ref != nullptr;
  }
  return false;
}

// A device codec exists (kv_codec.cuh), rows of whole bytes, and the attention kernel's
// head_dim bound (≤ 256, 8 elements per lane).
bool cuda_supports_kv(KvType type, int64_t head_dim) {
  return kv_type_fits_head_dim(type, head_dim) && kv_dtype_supported_on_device(int32_t(type)) && head_dim % 2 == 0 &&
         head_dim <= 256;
}

std::string cuda_kernel_name(WeightOp op, FormatId held) {
  if (op == WeightOp::kMatmul) {
    const GemvKernel* k = first_kernel(held);
    return k ? fmt::format("cuda.gemv.{}", k->name) : fmt::format("cuda.gemv.none({})", format_name(held));
  }
  if (op == WeightOp::kEmbeddingLookup) return fmt::format("cuda.embedding(host decode).{}", format_name(held));
  return fmt::format("cuda.{}.{}", weight_op_name(op), format_name(held));
}

}  // namespace

DeviceCaps cuda_device_caps() {
  DeviceCaps caps;
  caps.name = "cuda sm_90";
  caps.supports = cuda_supports;
  caps.supports_kv = cuda_supports_kv;
  caps.kernel_name = cuda_kernel_name;
  return caps;
}

}  // namespace imp::cuda
