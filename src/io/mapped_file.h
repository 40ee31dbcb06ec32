// MappedFile — a read-only memory map of a whole file. Mapping never reads the file:
// pages come in only when touched, so opening a 100 GB model is instant.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace imp {

class MappedFile {
 public:
  // Throws imp::Error naming the path when the file cannot be opened or mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  uint64_t size() const { return size_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace imp
