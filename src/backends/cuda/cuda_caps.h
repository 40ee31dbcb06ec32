// The CUDA backend's DeviceCaps for the planner (planner/device_caps.h), answered from the
// GEMV registry (gemv.h): a tier is supported for a matmul exactly when a registered kernel
// serves the format the weight is held in, so `imp plan --device cuda` and kernel selection
// cannot disagree. Host code only; needs no GPU (the registry is static).
//   kMatmul          : held format ∈ {k.format | k ∈ gemv_kernels()}; kernel = the first
//                      (fastest) registered kernel of that format, "cuda.gemv.<name>" — a
//                      *_split_* name means the weight is repacked to WeightLayout::kSplit at load
//   kVector          : F32 vectors (stored F32, or converted to F32 at load)
//   supports_kv      : a device codec for the type (kv_codec.cuh), head_dim even and ≤ 256
//   kEmbeddingLookup : in fact decoded on the host (CudaBackend::embedding): any decodable format
#pragma once

#include "planner/device_caps.h"

namespace imp::cuda {

DeviceCaps cuda_device_caps();

}  // namespace imp::cuda
