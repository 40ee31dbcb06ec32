// Tokenizer::from_model picks the family from the tokenizer model the source names;
// Tokenizer::decode concatenates token bytes.
#include "runtime/tokenizer.h"

#include <filesystem>

#include "common/error.h"
#include "io/model_file.h"
#include "runtime/tokenizer_bpe.h"
#include "runtime/tokenizer_spm.h"
#include "runtime/vocab.h"

namespace imp {

std::unique_ptr<Tokenizer> Tokenizer::from_model(const ModelFile& model) {
  Vocab v;
  if (model.metadata.is_object() && model.metadata.contains("tokenizer.ggml.model")) {
    v = vocab_from_gguf(model.metadata, model.path);
  } else {
    namespace fs = std::filesystem;
    const fs::path p(model.path);
    const fs::path dir = fs::is_directory(p) ? p : p.parent_path();
    if (!fs::exists(dir / "tokenizer.json")) {
      fail("{}: the model carries no tokenizer (no tokenizer.ggml.* metadata, no tokenizer.json)", model.path);
    }
    v = vocab_from_hf_folder(dir.string());
  }
  if (v.model == "gpt2") return std::make_unique<ByteLevelBpeTokenizer>(std::move(v));
  return std::make_unique<SentencePieceBpeTokenizer>(std::move(v));
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  for (const int32_t id : ids) out += token_bytes(id);
  return out;
}

}  // namespace imp
