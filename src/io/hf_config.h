// Hugging Face folder metadata: config.json → ModelConfig, quantization_config /
// hf_quant_config.json → QuantConfig, tokenizer files → TokenizerInfo.
// Spec: ../shared/specs/formats.md §5.3, §6–8 (config markers of each scheme).
//
// Architectures: llama, mistral, qwen2, qwen3, gemma3 (multimodal config.json nests the
// language model under "text_config"; gemma3_text is the bare one), gpt_oss (MXFP4 MoE).
// Missing optional keys take the transformers defaults of that model_type
// (tie_word_embeddings: false for llama/mistral/qwen2/qwen3, true for gemma3).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/model_config.h"

namespace imp {

enum class QuantMethod : uint8_t {
  kNone,
  kModelOpt,           // hf_quant_config.json producer modelopt, or quant_method "modelopt"
  kCompressedTensors,  // quant_method "compressed-tensors"
  kQuark,              // quant_method "quark"
  kFp8,                // quant_method "fp8" (vLLM per-tensor, DeepSeek block weight_scale_inv)
  kGptq,
  kAwq,
  kMxfp4,              // gpt-oss
  kBitsAndBytes,
};

struct QuantConfig {
  QuantMethod method = QuantMethod::kNone;
  std::string algo;        // modelopt quant_algo ("NVFP4", "FP8", "MIXED_PRECISION"); CT format
  std::string label;       // one-line summary for ModelFile::quant_scheme
  std::vector<std::string> excluded;  // module patterns left unquantized (fnmatch, or CT "re:")
  int32_t group_size = 0;  // NVFP4 16, GPTQ/AWQ group (0 = whole row)
  // FP8 / CT float
  std::string weight_strategy;  // CT: "tensor", "channel", "block", "tensor_group", "group"
  int32_t block_rows = 0, block_cols = 0;  // FP8 block structure, 128×128
  bool dynamic_activations = false;
  // GPTQ
  int32_t bits = 0;
  bool desc_act = false;
  bool sym = true;
  int32_t gptq_version = 1;  // checkpoint_format "gptq" → 1, "gptq_v2" → 2
  // bitsandbytes
  std::string bnb_quant_type;  // "nf4", "fp4"
};

// config.json (already strictly parsed) → ModelConfig. Throws naming `display_name` and
// the key for a missing or ill-typed hyper-parameter.
ModelConfig parse_hf_config(const nlohmann::json& config, const std::string& display_name);

// quantization_config inside config.json and/or the ModelOpt hf_quant_config.json (pass
// null when absent) → QuantConfig; unknown quant_method is an error naming it.
QuantConfig parse_quant_config(const nlohmann::json& config, const nlohmann::json& hf_quant_config,
                               const std::string& display_name);

// Does module path `module` (no ".weight") match one of the exclusion patterns? Returns the
// pattern, or "" when none matches. Bad regular expressions are an imp::Error.
std::string excluded_by(const QuantConfig& q, const std::string& module);

// Summary of the tokenizer files in `dir` (tokenizer.json, tokenizer.model,
// tokenizer_config.json, chat_template.jinja); `config` supplies bos/eos ids when the
// tokenizer files do not.
TokenizerInfo read_tokenizer_info(const std::string& dir, const nlohmann::json& config);

}  // namespace imp
