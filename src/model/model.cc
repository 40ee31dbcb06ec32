#include "model/model.h"

#include "common/error.h"
#include "io/tensor_names.h"
#include "model/gemma3.h"
#include "model/llama.h"

namespace imp {

std::unique_ptr<Model> create_model(const ModelFile& file, const StoragePlan& plan, Backend& backend) {
  const std::string& a = file.config.architecture;
  if (a == "llama" || a == "mistral" || a == "qwen2" || a == "qwen3") {
    return std::make_unique<LlamaModel>(file, plan, backend);
  }
  if (a == "gemma3") return std::make_unique<Gemma3Model>(file, plan, backend);
  fail("{}: unknown architecture '{}' (imp runs {})", file.path, a.empty() ? "(none)" : a, kSupportedArchitectures);
}

const TensorSource* find_weight(const ModelFile& file, const std::string& gguf_name) {
  if (const TensorSource* t = file.find(gguf_name)) return t;
  if (const auto hf = gguf_to_hf_name(gguf_name, file.config.architecture)) return file.find(*hf);
  return nullptr;
}

const TensorSource& weight_at(const ModelFile& file, const std::string& gguf_name) {
  if (const TensorSource* t = find_weight(file, gguf_name)) return *t;
  const auto hf = gguf_to_hf_name(gguf_name, file.config.architecture);
  fail("{}: tensor '{}'{} is missing", file.path, gguf_name, hf ? fmt::format(" (Hugging Face '{}')", *hf) : "");
}

}  // namespace imp
