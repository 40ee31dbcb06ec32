// `imp quantize IN OUT --type T [--method rtn] [--keep RE]… [--quantize RE]… [--threads N]
//  [--force] [--pure] [--layout modelopt|compressed-tensors]`: the offline quantizer
// (quant/pipeline.h). OUT ending in .gguf → a GGUF (types and llama.cpp mixes), anything
// else → a safetensors folder (nvfp4, fp8, fp8-channel, fp8-block, mxfp4, int4/gptq, f16, bf16, f32).
#include <memory>

#include "quant/pipeline.h"
#include "quant/policy.h"
#include "tools/commands.h"

namespace imp {

void register_quantize_command(CLI::App& app) {
  auto a = std::make_shared<QuantizeParams>();
  auto* cmd = app.add_subcommand("quantize", "Quantize a model (GGUF or Hugging Face folder) into GGUF or safetensors");
  cmd->add_option("in", a->in,
                  "Input: GGUF file or Hugging Face folder (F32/F16/BF16; quantized inputs are requantized)")
      ->required();
  cmd->add_option("out", a->out, "Output: NAME.gguf for GGUF, any other path for a safetensors folder")->required();
  cmd->add_option("-t,--type", a->type, "Target type or mix: " + target_type_list())->required();
  cmd->add_option("--method", a->method, "Quantization method: rtn, imatrix, awq, gptq, smoothquant")->default_val("rtn");
  cmd->add_option("--calib", a->calib, "Calibration text (awq, gptq, smoothquant; imatrix without --imatrix)");
  cmd->add_option("--imatrix", a->imatrix, "Importance matrix (imp imatrix / llama-imatrix GGUF, or legacy .dat)");
  cmd->add_option("--calib-chunks", a->calib_chunks, "Calibration chunks, taken from the end of --calib")->default_val(8);
  cmd->add_option("--ctx", a->ctx, "Tokens per calibration chunk")->default_val(512);
  cmd->add_option("--awq-target", a->awq_target,
                  "AWQ: search scales for this format where the output keeps weights (e.g. --type f32: folded model)");
  cmd->add_flag("--act-order", a->act_order, "GPTQ: process columns by decreasing Hessian diagonal (int4, nvfp4)");
  cmd->add_option("--layout", a->layout, "NVFP4 safetensors layout: modelopt or compressed-tensors")
      ->default_val("modelopt");
  cmd->add_option("--keep", a->keep, "Regex over output tensor names: keep at source precision (repeatable)");
  cmd->add_option("--quantize", a->quantize, "Regex over output tensor names: quantize even if the default keeps it");
  cmd->add_option("--threads", a->threads, "Worker threads (0 = all cores)")->default_val(0);
  cmd->add_flag("--force", a->force, "Replace an existing OUT");
  cmd->add_flag("--pure", a->pure, "GGUF: give every quantized tensor the base type (no llama.cpp mix rules)");
  cmd->add_flag(
      "--no-progress", [a](int64_t) { a->progress = false; }, "No progress bar on stderr");
  cmd->callback([a] { run_quantize(*a); });
}

}  // namespace imp
