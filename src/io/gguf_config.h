// ModelConfig and TokenizerInfo from GGUF metadata (../shared/specs/formats.md §4.4, 4.6).
//
// Keys are "{arch}.<name>" with arch = general.architecture (llama, mistral, qwen2, qwen3,
// gemma3, …). llama.cpp checks each key's GGUF type exactly; imp accepts any integer width
// (and FLOAT32 or FLOAT64 for floats) and range-checks the value instead. A key of the
// wrong kind (a string where a count belongs) or out of range is an imp::Error naming the
// file and the key; a missing key leaves the field at its default, so that `imp inspect`
// can show any file — the model loaders check what they need.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/gguf_reader.h"
#include "io/model_config.h"

namespace imp {

// warnings receives notes such as "per-layer feed_forward_length varies".
ModelConfig gguf_model_config(const GgufFile& f, std::vector<std::string>& warnings);
TokenizerInfo gguf_tokenizer_info(const GgufFile& f);
// "Q4_K_M" for general.file_type 15 (LlamaFileType); "" for ids not in the table.
std::string gguf_file_type_name(int64_t file_type);

}  // namespace imp
