// The formats traits table: one constexpr row per FormatId.
//
// Row layout conventions (see formats/row_planes.h):
//   - a row of n elements of a self-contained format is n / block_elems blocks of
//     block_bytes each, in `data`;
//   - split formats keep packed codes in `data` (block_bytes per block_elems elements)
//     and their scales in `scales`, one scale_bytes entry per scale group.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "formats/format_id.h"
#include "formats/row_planes.h"

namespace imp {

// Where a format's scales live.
enum class ScaleLayout : uint8_t {
  kNone,       // plain scalars
  kInBlock,    // inside each block (every GGUF type)
  kPerBlock,   // separate plane, one scale per block of the row (NVFP4_CKPT, MXFP4_CKPT, NF4)
  kPerGroup,   // separate plane, one scale (and zero) per `group` elements (INT4_GROUP)
  kPerRow,     // one scale per output row (FP8 / INT8 per channel)
  kPerTensor,  // one scale for the whole tensor (FP8 per tensor)
  kTile128,    // one scale per 128×128 tile (FP8 block)
};

// Reference kernels. `n` is the row length in elements.
using DequantizeRowFn = void (*)(const ConstRowPlanes& src, float* dst, int64_t n);
using QuantizeRowFn = void (*)(const float* src, const RowPlanes& dst, int64_t n);
// Dot of one weight row with one activation row already in `dot_activation` format.
using VecDotFn = float (*)(const ConstRowPlanes& w, const void* act, int64_t n);

struct FormatTraits {
  FormatId id;
  std::string_view name;     // as users type it: "q4_k", "nvfp4_ckpt", "bf16"
  int32_t gguf_type;         // ggml_type id, or -1 when GGUF has none
  int32_t block_elems;       // elements per block
  int32_t block_bytes;       // bytes of `data` per block
  float bits_per_weight;     // including in-block and per-block scales
  ScaleLayout scale_layout;
  int32_t scale_bytes;       // bytes per entry in the scales plane (split formats)
  bool needs_tensor_scale;   // a per-tensor F32 multiplier completes the decode
  bool has_zero_points;
  bool is_activation_only;   // Q8_1, Q8_K: dot-product intermediates, never weights
  FormatId dot_activation;   // the activation format the CPU dot product pairs with
  QuantizeRowFn quantize_ref;
  DequantizeRowFn dequantize_ref;
  VecDotFn vec_dot_ref;      // nullptr for formats that are not weights
};

const FormatTraits& format_traits(FormatId id);

std::optional<FormatId> format_from_name(std::string_view name);
std::optional<FormatId> format_from_gguf_type(uint32_t gguf_type);
// Throws imp::Error naming the id when GGUF has no such type or imp does not know it.
FormatId checked_format_from_gguf_type(uint32_t gguf_type);

inline std::string_view format_name(FormatId id) { return format_traits(id).name; }
inline bool is_split_format(FormatId id) {
  const auto layout = format_traits(id).scale_layout;
  return layout != ScaleLayout::kNone && layout != ScaleLayout::kInBlock;
}

}  // namespace imp
