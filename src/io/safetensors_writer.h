// Safetensors writer (one file, streamed): an 8-byte little-endian header length, the JSON
// header {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {…}}
// padded with spaces to a multiple of 8, then every tensor's bytes back to back in
// declaration order (the layout huggingface/safetensors writes and safetensors_reader reads).
//
// Tensors are declared with their dtype and shape first (so the header, which holds every
// offset, can be written up front); write() then asks a callback for each tensor's bytes
// in order, so a model larger than memory is written one tensor at a time. The file goes to
// "<path>.tmp.<pid>" and is renamed into place only when complete.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include "io/safetensors_reader.h"

namespace imp {

class SafetensorsWriter {
 public:
  // Throws on an empty or duplicate name, a negative dim, or a sub-byte tensor that does not
  // fill whole bytes.
  void declare(std::string name, StDtype dtype, std::vector<int64_t> shape);
  void set_metadata(std::string key, std::string value);

  // Bytes of tensor `index` (declaration order); must be exactly dtype × shape.
  using Producer = std::function<std::vector<uint8_t>(size_t index)>;
  void write(const std::string& path, const Producer& produce) const;

  size_t size() const { return tensors_.size(); }
  uint64_t tensor_bytes(size_t index) const { return tensors_.at(index).bytes; }

 private:
  struct Tensor {
    std::string name;
    StDtype dtype;
    std::vector<int64_t> shape;
    uint64_t bytes;
  };
  std::vector<Tensor> tensors_;
  std::unordered_set<std::string> names_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace imp
