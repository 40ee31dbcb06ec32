// Link-time stand-in until the tokenizer (branch `tok`) merges: text prompts fail with a
// clear message, --tokens works. DELETE THIS FILE when src/runtime/tokenizer.cc lands.
#include "common/error.h"
#include "io/model_file.h"
#include "runtime/tokenizer.h"

namespace imp {

std::unique_ptr<Tokenizer> Tokenizer::from_model(const ModelFile& model) {
  fail("{}: text prompts need the tokenizer, which is not in this build yet; use --tokens", model.path);
}

}  // namespace imp
