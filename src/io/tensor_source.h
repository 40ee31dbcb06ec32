// TensorSource — what a loader hands the planner: one weight as it is on disk.
// Loaders map bytes and name formats; they never convert (../shared/DESIGN.md).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "formats/quant_matrix.h"

namespace imp {

// How the planes are arranged on disk. Loaders never repack (DESIGN.md), so a checkpoint
// whose packing differs from the canonical plane layout of its FormatId
// (formats/quant_matrix.h) keeps its stored bytes and says so here; matrix() refuses
// anything but kCanonical, and the backend calls the scheme's repack function
// (io/schemes/gptq.h, io/schemes/awq.h) when it materializes the weight.
enum class StoredLayout : uint8_t {
  kCanonical,
  kGptqV1,    // INT4_GROUP as GPTQ v1: qweight I32 [in/8, out], qzeros I32 [groups, out/8] (zero − 1),
              // scales F16 [groups, out], optional g_idx I32 [in]
  kGptqV2,    // the same with zeros stored as is
  kAwqGemm,   // INT4_GROUP as AutoAWQ GEMM: qweight I32 [in, out/8] interleaved, qzeros I32
              // [groups, out/8] interleaved, scales F16 [groups, out]
};

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
  StoredLayout layout = StoredLayout::kCanonical;
  std::span<const uint8_t> g_idx;   // GPTQ act-order: I32 group of each input feature
  // Static per-tensor activation scale, a multiplier, folded per scheme (compressed-tensors'
  // divisor inverted); absent for dynamic activation quantization. The W4A4 / W8A8 GEMM
  // output is multiplied by alpha = input_scale · tensor_scale.
  std::optional<float> input_scale;

  int64_t elements() const;
  int64_t bytes() const { return int64_t(data.size() + scales.size() + zeros.size() + g_idx.size()); }
  double bits_per_weight() const { return elements() ? 8.0 * double(bytes()) / double(elements()) : 0.0; }
  // rows = product of all but the last dim, cols = last dim. Validates plane sizes.
  // Throws for a non-canonical StoredLayout (repack it first).
  QuantMatrix matrix() const;
  // The i-th slice along the outermost dim (one expert of a stacked [E, rows, cols] MoE
  // weight), every plane cut to match. Canonical row-major planes only; kTile128 scales
  // need rows per slice % 128 == 0.
  TensorSource slice_outer(int64_t i) const;
};

}  // namespace imp
