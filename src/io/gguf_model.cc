#include "common/error.h"
#include "io/model_file.h"

namespace imp {

std::unique_ptr<ModelFile> open_gguf_model(const std::string& path) { fail("{}: GGUF reader not implemented yet", path); }

}  // namespace imp
