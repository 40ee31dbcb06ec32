// libFuzzer target: the Hugging Face JSON readers (io/hf_config.h, io/safetensors_reader.h)
// on arbitrary text: strict JSON → config.json → ModelConfig, quantization_config (with
// the input's "hf_quant_config" member, if any, as hf_quant_config.json), exclusion
// matching on typical module names, and model.safetensors.index.json. Any input must
// succeed or raise imp::Error.
#include <cstdint>
#include <string_view>

#include "common/error.h"
#include "io/hf_config.h"
#include "io/safetensors_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto j = imp::parse_json_strict(text, "config.json");
    try {
      (void)imp::parse_hf_config(j, "config.json");
    } catch (const imp::Error&) {
    }
    try {
      const nlohmann::json hfq = j.is_object() && j.contains("hf_quant_config") ? j["hf_quant_config"] : nlohmann::json();
      const auto q = imp::parse_quant_config(j, hfq, "config.json");
      for (const char* m : {"lm_head", "model.layers.0.self_attn.q_proj", "model.layers.12.mlp.gate"}) {
        (void)imp::excluded_by(q, m);
      }
    } catch (const imp::Error&) {
    }
  } catch (const imp::Error&) {
  }
  try {
    (void)imp::parse_safetensors_index(text, "model.safetensors.index.json");
  } catch (const imp::Error&) {
  }
  return 0;
}
