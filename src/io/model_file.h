// ModelFile — an opened model on disk: a GGUF file, or a Hugging Face folder (config.json
// + one or many .safetensors shards + tokenizer files), or a single .safetensors file.
// open_model_file() picks the reader by what the path is, never by trusting the suffix
// alone: a GGUF must start with the GGUF magic.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "io/model_config.h"
#include "io/tensor_source.h"

namespace imp {

struct ModelFile {
  std::string path;
  std::string container;       // "gguf v3", "safetensors (3 shards)"
  std::string quant_scheme;    // "gguf", "modelopt nvfp4", "compressed-tensors nvfp4", "gptq v1 g128", …
  ModelConfig config;
  TokenizerInfo tokenizer;
  // Q/K projection rows are in llama.cpp's adjacent-pair RoPE order (formats.md §4.7):
  // set by the GGUF loader for the archs llama.cpp's converter permutes (llama, mistral);
  // Hugging Face checkpoints keep half-split order.
  bool rope_rows_permuted = false;
  nlohmann::json metadata;     // every raw key: GGUF KV pairs, or config.json (+ hf_quant_config.json)
  std::vector<TensorSource> tensors;
  std::vector<std::string> warnings;  // e.g. fused q/k/v partitions with different global scales
  std::vector<std::unique_ptr<MappedFile>> mappings;  // keep the bytes alive
  // Small planes a scheme had to widen at load so they match the format's plane dtype
  // (F16/BF16 row scales → F32, NF4 double-quantized absmax → F32); spans point in here.
  std::vector<std::unique_ptr<std::vector<uint8_t>>> owned;

  const TensorSource* find(const std::string& name) const;
  const TensorSource& at(const std::string& name) const;  // throws naming the tensor and file
};

std::unique_ptr<ModelFile> open_model_file(const std::string& path);

// The two readers behind it (io/gguf_model.cc, io/hf_model.cc).
std::unique_ptr<ModelFile> open_gguf_model(const std::string& path);
std::unique_ptr<ModelFile> open_hf_model(const std::string& path);  // folder or one .safetensors

}  // namespace imp
