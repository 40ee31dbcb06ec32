// quantize_tensor — the one entry point that turns one F32 weight into a target format.
// Every writer of `imp quantize` (GGUF, ModelOpt/compressed-tensors NVFP4, FP8, MXFP4,
// GPTQ) calls it per tensor; calibration methods (imatrix-weighted, AWQ, GPTQ — branch
// quant-methods) plug in here through QuantOptions without touching the writers.
//
//   TensorJob   : name, rows × cols F32 data (row-major, rows = output features), target
//   QuantOptions: method (RTN today) and optional per-column importance (cols floats, an
//                 imatrix row: Σ x² of the column's activations); null → plain RTN
//   result      : an OwnedQuantMatrix in the formats core's canonical planes
//                 (formats/quant_matrix.h), bit-identical to formats::quantize() for RTN
//
// Rows are quantized in parallel chunks on the ThreadPool. Formats whose scale spans more
// than one row are handled exactly as quantize() does: the per-tensor scale (NVFP4_CKPT G,
// FP8 per tensor) is computed from the amax of the whole tensor first; FP8 128×128 tiles
// are quantized in bands of 128 rows (a tile never spans two bands).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "formats/quant_matrix.h"

namespace imp {

class ThreadPool;
namespace quant {
struct GptqFactor;
}

struct TensorJob {
  std::string name;             // output name, for messages
  std::span<const float> data;  // rows × cols
  int64_t rows = 0;
  int64_t cols = 0;
  FormatId format = FormatId::F32;
  int32_t group = 0;  // INT4_GROUP group size (128 for GPTQ)
};

struct QuantOptions {
  std::string method = "rtn";          // rtn | imatrix | awq | smoothquant | gptq (quant/methods.h)
  const float* importance = nullptr;   // cols per-column weights (imatrix mean x²), or null:
                                       // importance-weighted quantizer where the format has one
  const quant::GptqFactor* gptq = nullptr;  // method gptq: the factor of the weight's input
  ThreadPool* pool = nullptr;          // null → the calling thread does all rows
};

// Throws imp::Error naming the tensor when the format cannot hold the row length, the data
// size disagrees with rows × cols, or the method is unknown.
OwnedQuantMatrix quantize_tensor(const TensorJob& job, const QuantOptions& opt);

}  // namespace imp
