#include "model/presets.h"

#include <string>

#include "common/error.h"

namespace imp {
namespace {

constexpr ModelPreset kPresets[] = {
    {"llama3.1-8b", "llama", "LlamaForCausalLM", "llama", 4096, 32, 32, 8, 128, 14336, 128256, 131072, 500000.0f, 1e-5f,
     false, false},
    {"llama3.2-1b", "llama", "LlamaForCausalLM", "llama", 2048, 16, 32, 8, 64, 8192, 128256, 131072, 500000.0f, 1e-5f,
     true, false},
    {"qwen3-8b", "qwen3", "Qwen3ForCausalLM", "qwen3", 4096, 36, 32, 8, 128, 12288, 151936, 40960, 1000000.0f, 1e-6f,
     false, true},
    {"tiny", "llama", "LlamaForCausalLM", "llama", 256, 2, 4, 2, 64, 512, 512, 2048, 10000.0f, 1e-5f, false, false},
};

}  // namespace

std::span<const ModelPreset> model_presets() { return kPresets; }

const ModelPreset& find_model_preset(std::string_view name) {
  std::string known;
  for (const ModelPreset& p : kPresets) {
    if (p.name == name) return p;
    known += known.empty() ? std::string(p.name) : ", " + std::string(p.name);
  }
  fail("unknown model preset '{}' (known: {})", name, known);
}

}  // namespace imp
