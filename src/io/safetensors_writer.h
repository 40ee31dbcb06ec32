// SafeTensors writer — streams one .safetensors file tensor by tensor.
// Layout (../shared/specs/formats.md §5; huggingface/safetensors README), as the reader
// (io/safetensors_reader.h) enforces it:
//   bytes 0..7   N = u64 LE header length; the JSON header is padded with spaces so that
//                8 + N is a multiple of 8 (the data buffer starts 8-byte aligned)
//   bytes 8..8+N {"__metadata__": {str: str}, "<name>": {"dtype", "shape", "data_offsets"}}
//   data         tensors back to back in declaration order, no gaps (the reader requires
//                the buffer to be tiled exactly)
// Usage: declare every tensor (name, dtype, shape) with add(), then begin(path) writes the
// header and write(name, bytes) must follow in declaration order with exactly the declared
// size; finish() checks that every tensor was written and closes the file. The caller
// chooses the path (the quantizer writes into a temporary folder and renames it).
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "io/safetensors_reader.h"

namespace imp {

class SafetensorsWriter {
 public:
  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }
  // Throws on a duplicate or empty name, a negative dimension, or a size that is not a
  // whole number of bytes.
  void add(const std::string& name, StDtype dtype, std::vector<int64_t> shape);
  uint64_t bytes_of(const std::string& name) const;

  void begin(const std::string& path);
  void write(const std::string& name, std::span<const uint8_t> bytes);
  void finish();

  // All in one: declare, write the header and every tensor (tests, small files).
  struct Tensor {
    std::string name;
    StDtype dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  static void write_file(const std::string& path, const std::vector<Tensor>& tensors,
                         const std::map<std::string, std::string>& metadata = {});

 private:
  struct Entry {
    std::string name;
    StDtype dtype;
    std::vector<int64_t> shape;
    uint64_t begin = 0, end = 0;
  };
  std::map<std::string, std::string> metadata_;
  std::vector<Entry> entries_;
  std::map<std::string, size_t> index_;
  uint64_t total_ = 0;
  size_t next_ = 0;
  std::string path_;
  std::ofstream out_;
};

}  // namespace imp
