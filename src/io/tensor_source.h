// TensorSource — what a loader hands the planner: one weight as it is on disk.
// Loaders map bytes and name formats; they never convert (../shared/DESIGN.md).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "formats/quant_matrix.h"

namespace imp {

struct TensorSource {
  std::string name;            // canonical name (GGUF style for GGUF files, HF style for folders)
  std::vector<int64_t> shape;  // PyTorch order, outermost first: a Linear is [out, in]
  FormatId format = FormatId::F32;
  std::span<const uint8_t> data;    // raw payload, mapped from `file`
  std::span<const uint8_t> scales;  // split formats: the scale plane(s) as stored
  std::span<const uint8_t> zeros;   // INT4 zero points as stored
  float tensor_scale = 1.0f;        // per-tensor multiplier, already folded per scheme
  int32_t group = 0;                // INT4 group size
  std::string file;                 // the file the payload lives in
  std::string note;                 // scheme detail worth showing (e.g. "gptq v1, act-order")

  int64_t elements() const;
  int64_t bytes() const { return int64_t(data.size() + scales.size() + zeros.size()); }
  double bits_per_weight() const { return elements() ? 8.0 * double(bytes()) / double(elements()) : 0.0; }
  // rows = product of all but the last dim, cols = last dim. Validates plane sizes.
  QuantMatrix matrix() const;
};

}  // namespace imp
