#include "io/safetensors_writer.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"

namespace imp {

void SafetensorsWriter::declare(std::string name, StDtype dtype, std::vector<int64_t> shape) {
  if (name.empty() || name == "__metadata__") fail("safetensors writer: invalid tensor name '{}'", name);
  if (names_.count(name)) fail("safetensors writer: duplicate tensor name '{}'", name);
  uint64_t elems = 1;
  for (int64_t d : shape) {
    if (d < 0) fail("safetensors writer: tensor '{}' has a negative dimension {}", name, d);
    if (d != 0 && elems > UINT64_MAX / 64 / uint64_t(d)) fail("safetensors writer: tensor '{}' is too large", name);
    elems *= uint64_t(d);
  }
  const uint64_t bits = elems * uint64_t(st_dtype_bits(dtype));
  if (bits % 8 != 0) fail("safetensors writer: tensor '{}' ({}) does not fill whole bytes", name, st_dtype_name(dtype));
  names_.insert(name);
  tensors_.push_back({std::move(name), dtype, std::move(shape), bits / 8});
}

void SafetensorsWriter::set_metadata(std::string key, std::string value) { metadata_[std::move(key)] = std::move(value); }

void SafetensorsWriter::write(const std::string& path, const Producer& produce) const {
  namespace fs = std::filesystem;
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    header[t.name] = {{"dtype", std::string(st_dtype_name(t.dtype))}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes}}};
    offset += t.bytes;
  }
  std::string text = header.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');
  const std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
  try {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail("{}: cannot create {}", path, tmp);
    const uint64_t n = text.size();
    out.write(reinterpret_cast<const char*>(&n), 8);  // little-endian host (x86-64, aarch64)
    out.write(text.data(), std::streamsize(text.size()));
    for (size_t k = 0; k < tensors_.size(); ++k) {
      const std::vector<uint8_t> bytes = produce(k);
      if (bytes.size() != tensors_[k].bytes) {
        fail("safetensors writer: tensor '{}' produced {} bytes, its dtype and shape need {}", tensors_[k].name,
             bytes.size(), tensors_[k].bytes);
      }
      out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    }
    out.flush();
    if (!out) fail("{}: write failed (disk full?)", path);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    fail("{}: cannot rename {} into place: {}", path, tmp, ec.message());
  }
}

}  // namespace imp
