#include "io/model_file.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/error.h"

namespace imp {

const TensorSource* ModelFile::find(const std::string& name) const {
  for (const auto& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const TensorSource& ModelFile::at(const std::string& name) const {
  if (const auto* t = find(name)) return *t;
  fail("{}: no tensor named '{}'", path, name);
}

std::unique_ptr<ModelFile> open_model_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) fail("{}: no such file or directory", path);
  if (fs::is_directory(path, ec)) return open_hf_model(path);
  char magic[4] = {};
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open", path);
  in.read(magic, 4);
  if (in.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0) return open_gguf_model(path);
  if (fs::path(path).extension() == ".safetensors") return open_hf_model(path);
  if (fs::path(path).extension() == ".gguf") fail("{}: not a GGUF file (bad magic)", path);
  fail("{}: unknown model file (expected a .gguf file, a .safetensors file or a Hugging Face folder)", path);
}

}  // namespace imp
