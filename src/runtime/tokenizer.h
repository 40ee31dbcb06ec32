// Tokenizer — text ↔ token ids for a loaded model, built from GGUF metadata
// (tokenizer.ggml.*) or from a Hugging Face folder's tokenizer.json.
//
// Families: "gpt2" byte-level BPE (with the model's pre-tokenizer: smollm, llama-bpe,
// qwen2, gpt2 …) and "llama" SentencePiece-style BPE with byte fallback (gemma, llama 2).
// Ids must equal Hugging Face `tokenizers` output for the same model and text.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace imp {

struct ModelFile;

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Throws imp::Error naming the model when it carries no usable tokenizer.
  static std::unique_ptr<Tokenizer> from_model(const ModelFile& model);

  // add_bos: prepend BOS when the model asks for it (tokenizer.ggml.add_bos_token).
  // parse_special: text such as "<|im_start|>" becomes its special token id.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const = 0;
  // The raw bytes of one token (may be part of a UTF-8 sequence).
  virtual std::string token_bytes(int32_t id) const = 0;
  std::string decode(std::span<const int32_t> ids) const;

  virtual int32_t n_vocab() const = 0;
  virtual int32_t bos_id() const = 0;        // -1 when none
  virtual int32_t eos_id() const = 0;        // -1 when none
  virtual bool add_bos_default() const = 0;  // what the model's metadata says
  // End of generation: eos, eot, <|im_end|>, <end_of_turn> …
  virtual bool is_end_of_generation(int32_t id) const = 0;
  // Token id of an exact special/control token text, or -1.
  virtual int32_t special_token(std::string_view text) const = 0;
};

}  // namespace imp
