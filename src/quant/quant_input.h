// The input side of `imp quantize`: an opened model (GGUF or HF folder) with every tensor
// named in the OUTPUT's convention, and the two ways to read one tensor — as F32 (for
// quantizing) or as its stored bytes (for copying) — with the RoPE row permutation between
// HF and llama.cpp order applied where the conversion needs it (llama/mistral attn_q/attn_k,
// io/tensor_names.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "io/gguf_reader.h"
#include "io/mapped_file.h"
#include "io/model_file.h"

namespace imp {

enum class OutputKind { kGguf, kSafetensors };

struct InputTensor {
  const TensorSource* src = nullptr;
  std::string out_name;       // GGUF name for GGUF output, HF name for safetensors output
  std::string gguf_name;      // GGUF-convention name (the mix rules read it); may equal out_name
  int layer = -1;             // blk index, -1 outside the blocks
  int64_t rope_heads = 0;     // > 0: permute rows in groups of heads (attn_q: n_head, attn_k: n_head_kv)
  bool rope_to_gguf = false;  // direction of that permutation
  // Added to every value on load: gemma3 norm gains are stored as 1 + w in GGUF and as w in
  // Hugging Face checkpoints, so GGUF → HF subtracts 1 (HF → GGUF of gemma3 is refused).
  float value_offset = 0.0f;
  int64_t rows() const;       // product of all but the last dim (1 for 1-D)
  int64_t cols() const;
};

struct QuantInput {
  std::unique_ptr<ModelFile> model;
  bool is_gguf = false;
  std::string arch;                      // llama.cpp architecture name
  std::unique_ptr<MappedFile> gguf_map;  // GGUF input: the typed KV pairs live in gguf
  GgufFile gguf;
  std::vector<InputTensor> tensors;   // llama.cpp order for GGUF output (layer, name), else by name
  std::vector<std::string> warnings;  // skipped tensors, requantization, …
};

QuantInput open_quant_input(const std::string& path, OutputKind out);

// The tensor as rows × cols F32 in output row order (dequantized, RoPE-permuted).
std::vector<float> load_f32(const InputTensor& t);
// The stored bytes in output row order (permuted when needed); only for self-contained
// formats (scalars and GGUF types) and tensors without a value_offset.
std::vector<uint8_t> load_bytes(const InputTensor& t);

}  // namespace imp
