// Shared between the pipeline driver (pipeline.cc) and its two writers (gguf_output.cc,
// st_output.cc): the run's state and the per-tensor step.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/thread_pool.h"
#include "quant/methods.h"
#include "quant/pipeline.h"
#include "quant/policy.h"
#include "quant/quantize_tensor.h"

namespace imp {

struct PipelineRun {
  const QuantizeParams& p;
  QuantInput& in;
  const QuantTarget& target;
  const std::vector<Decision>& decisions;
  ThreadPool& pool;
  QuantizeSummary& sum;
  std::string tmp;                 // the temporary output path (file or folder)
  std::vector<std::string> notes;  // printed after the summary
  std::chrono::steady_clock::time_point start;
  int64_t total_elements = 0, done_elements = 0;
  const quant::MethodContext* methods = nullptr;  // calibration methods; null for plain RTN

  // Tensor i as F32 with the AWQ/SmoothQuant folds applied.
  std::vector<float> load(size_t i) const;
  // A kept tensor whose values a fold changed (a norm gain): it cannot be copied as stored.
  bool kept_changes(size_t i) const { return methods && methods->changes(in.tensors[i].gguf_name); }

  // Quantizes input tensor i to decisions[i].to (counting time and sizes).
  OwnedQuantMatrix quantize(size_t i);
  // Per-tensor line on the log, progress bar on stderr; call after tensor i is written.
  void report(size_t i, int64_t bytes_out);
};

void write_gguf_output(PipelineRun& run);
void write_st_output(PipelineRun& run);

}  // namespace imp
