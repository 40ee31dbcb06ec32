// RowPlanes — where one row of a weight lives in memory.
//
// Self-contained block formats (every GGUF type, the plain scalars) use `data` only:
// the row is n / block_elems consecutive blocks. Split formats, whose scales travel in
// separate tensors in the checkpoint (NVFP4 and MXFP4 as safetensors carry them,
// scaled FP8, INT8 per channel, INT4 groups, NF4), also point `scales` (and `zeros`)
// at this row's entries of those tensors and carry the per-tensor multiplier.
#pragma once

#include <cstdint>

namespace imp {

struct ConstRowPlanes {
  const void* data = nullptr;    // packed payload of the row
  const void* scales = nullptr;  // this row's scales (split formats), dtype per format
  const void* zeros = nullptr;   // this row's zero points (INT4 groups)
  float tensor_scale = 1.0f;     // per-tensor multiplier (NVFP4 G, FP8 per-tensor)
  int32_t group = 0;             // elements per scale where the format leaves it open
};

struct RowPlanes {
  void* data = nullptr;
  void* scales = nullptr;
  void* zeros = nullptr;
  float tensor_scale = 1.0f;
  int32_t group = 0;

  operator ConstRowPlanes() const { return {data, scales, zeros, tensor_scale, group}; }
};

}  // namespace imp
