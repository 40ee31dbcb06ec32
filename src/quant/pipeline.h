// `imp quantize` — the offline pipeline: open IN, decide per tensor (quant/policy.h),
// stream tensor by tensor (load F32 → quantize_tensor → write), write OUT under a
// temporary name (OUT.tmp-<pid>, file or folder) and rename it at the end.
// Memory: one tensor's F32 copy and its quantized planes at a time; the input is mapped.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace imp {

struct QuantizeParams {
  std::string in, out;
  std::string type;
  std::string method = "rtn";       // rtn | imatrix | awq | gptq | smoothquant (quant/methods.h)
  std::string calib, imatrix;       // calibration text; importance-matrix file (llama.cpp format)
  int64_t calib_chunks = 8, ctx = 512;
  std::string awq_target;           // AWQ: format to search against for unquantized weights
  bool act_order = false;           // GPTQ: columns by decreasing Hessian diagonal
  std::string layout = "modelopt";  // NVFP4 safetensors layout: modelopt | compressed-tensors
  std::vector<std::string> keep, quantize;  // regexes over output tensor names
  int threads = 0;                          // 0 → all hardware threads
  bool force = false;                       // replace an existing OUT
  bool pure = false;                        // GGUF: no per-tensor mix rules
  bool progress = true;                     // progress bar on stderr (only when it is a terminal)
  std::FILE* log = stdout;                  // per-tensor lines and the summary; null → silent
};

struct QuantizeSummary {
  int64_t tensors = 0, quantized = 0;
  int64_t params = 0, quantized_params = 0;
  int64_t fallbacks = 0;     // tensors whose rows the target type cannot hold (Decision::fallback)
  int64_t bytes_in = 0;      // source tensor bytes
  int64_t bytes_out = 0;     // output tensor bytes (planes), without headers
  double seconds = 0;        // wall time of the whole run
  double quant_seconds = 0;  // time inside quantize_tensor
  int threads = 1;
};

QuantizeSummary run_quantize(const QuantizeParams& p);

}  // namespace imp
