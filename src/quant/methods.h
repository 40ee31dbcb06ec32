// The calibration side of `imp quantize` (--method rtn|imatrix|awq|gptq|smoothquant,
// --calib TEXT, --imatrix FILE): prepared once before the tensors stream, then consulted
// per tensor by the pipeline (quant/pipeline.cc) and quantize_tensor.
//
//   calibration  the INPUT model runs --calib-chunks chunks of --ctx tokens from the end
//                of --calib (quant/calib.h) collecting what the method needs
//   importance   per weight, mean(x²) per column: from --imatrix, else from the
//                calibration; used by the weighted quantizers (GGUF types, NVFP4 search)
//                for every method; divided by s² where AWQ/SmoothQuant folded s in
//   awq          per llama group (quant/awq.h) a scale s searched against each member's
//                target format; the fold is applied to the tensors as they load
//   smoothquant  s from max|X| and max|W| (quant/smoothquant.h), folded the same way
//   gptq         XᵀX per input; the factor (U, order, damping) is computed once per input
//                and shared by the weights reading it (q/k/v, gate/up)
// Tensors are named in GGUF convention (InputTensor::gguf_name) throughout.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "quant/calib.h"
#include "quant/gptq.h"
#include "quant/imatrix.h"
#include "quant/policy.h"
#include "quant/quant_input.h"

namespace imp::quant {

struct MethodParams {
  std::string method = "rtn";  // rtn | imatrix | awq | gptq | smoothquant
  std::string calib, imatrix;  // calibration text, importance-matrix file
  int64_t ctx = 512, chunks = 8;
  int64_t awq_samples = 128;   // activation rows kept per input for the AWQ search
  bool act_order = false;
  int threads = 0;
  // AWQ: the format searched against for weights the output keeps unquantized (e.g. --type
  // f32 to write the folded float model); empty = such weights are not searched (s = 1).
  std::string awq_target;
};

bool known_method(const std::string& m);

class MethodContext {
 public:
  // Null when nothing is needed (rtn without --imatrix/--calib).
  static std::unique_ptr<MethodContext> prepare(const MethodParams& mp, const std::string& model_path,
                                                const QuantInput& in, const std::vector<Decision>& decisions,
                                                std::FILE* log);

  bool changes(const std::string& gguf_name) const;
  // Applies the AWQ / SmoothQuant folds to a tensor as loaded (rows × cols; 1-D: rows = 1).
  void transform(const std::string& gguf_name, std::vector<float>& x, int64_t rows, int64_t cols) const;
  // mean(x²) per column of a weight (folds applied); empty when there is none.
  std::span<const float> importance(const std::string& gguf_name) const;
  // GPTQ factor of a weight's input; nullptr without calibration statistics for it.
  // Act-order (when asked for) only where the format quantizes column by column.
  const GptqFactor* gptq(const std::string& gguf_name, FormatId format) const;
  // max |x| of the weight's input over the calibration tokens, after the AWQ/SmoothQuant
  // fold (the input becomes x_j / s_j); nullopt without calibration statistics for it.
  // ModelOpt turns it into the static input_scale: amax / (6·448) for NVFP4, amax / 448 FP8.
  std::optional<float> input_amax(const std::string& gguf_name) const;
  const std::string& method() const { return mp_.method; }
  bool act_order() const { return mp_.act_order; }
  double prepare_seconds = 0;
  std::vector<std::string> notes;

 private:
  MethodParams mp_;
  std::unique_ptr<CalibCollector> calib_;
  std::map<std::string, std::vector<float>> importance_;
  std::map<std::string, std::vector<float>> col_scale_;   // W[:, j] *= s_j
  std::map<std::string, std::vector<float>> row_div_;     // (1-D gain or linear rows) /= s
  mutable std::mutex mu_;
  mutable std::map<std::string, std::unique_ptr<GptqFactor>> factors_;  // by statistics owner
};

}  // namespace imp::quant
