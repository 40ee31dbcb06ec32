// GGUF writer — writes GGUF v3 (../shared/specs/formats.md §4): header, KV pairs of every
// type in insertion order, tensor infos, zero padding to the alignment, then each tensor's
// bytes at the next aligned offset (the placement gguf-py uses and ggml requires).
//
// Tensor bytes are not copied: add_tensor keeps a view, and the caller keeps the bytes
// alive until write()/to_bytes() returns. write() goes to "<path>.tmp.<pid>" and renames
// it over <path> only after everything was written, so a failed write never leaves a
// half-written model under the real name.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "formats/format_id.h"
#include "io/gguf_value.h"

namespace imp {

class GgufWriter {
 public:
  // Adds a KV pair; throws on an empty or duplicate key. "general.alignment" must be an
  // unsigned integer power of two and sets the data alignment.
  void set(std::string key, GgufValue value);
  // shape in PyTorch order (outermost first, at most 4 dims); format must have a GGUF type
  // and data must be exactly the size type × shape gives.
  void add_tensor(std::string name, std::vector<int64_t> shape, FormatId format, std::span<const uint8_t> data);
  // Streaming writers (the quantizer): declare a tensor without its bytes, take the header
  // from header_bytes() and write each tensor's bytes at data start + offsets[i] yourself.
  // to_bytes()/write() refuse a writer holding such declarations. Returns the tensor's size.
  uint64_t add_tensor_info(std::string name, std::vector<int64_t> shape, FormatId format);
  std::vector<uint8_t> header_bytes(std::vector<uint64_t>& offsets) const { return header(offsets); }

  // Or, with every tensor declared by add_tensor_info, let write_streamed fetch each one's
  // bytes from a callback, called once per tensor in declaration order (models larger than
  // memory: imp synth); it must return exactly the bytes the shape needs.
  using TensorProducer = std::function<std::vector<uint8_t>(size_t index)>;
  void write_streamed(const std::string& path, const TensorProducer& produce) const;

  uint32_t alignment() const { return alignment_; }
  std::vector<uint8_t> to_bytes() const;
  void write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    std::vector<uint64_t> ne;  // ggml order
    FormatId format;
    std::span<const uint8_t> data;
    uint64_t size = 0;  // data.size(), or the declared size of a streamed tensor
  };
  // Everything before the data section, padding included; offsets[i] = tensor i's offset
  // in the data section (computed here so that a later general.alignment still applies).
  std::vector<uint8_t> header(std::vector<uint64_t>& offsets) const;
  void write_impl(const std::string& path,
                  const std::function<std::span<const uint8_t>(size_t, std::vector<uint8_t>&)>& bytes_of) const;

  uint32_t alignment_ = 32;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::unordered_set<std::string> keys_, names_;
  std::vector<Tensor> tensors_;
};

}  // namespace imp
