#include "io/safetensors_writer.h"

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace imp {

void SafetensorsWriter::add(const std::string& name, StDtype dtype, std::vector<int64_t> shape) {
  if (name.empty() || name == "__metadata__") fail("safetensors writer: bad tensor name '{}'", name);
  if (index_.count(name)) fail("safetensors writer: duplicate tensor '{}'", name);
  if (out_.is_open()) fail("safetensors writer: tensor '{}' declared after the header was written", name);
  uint64_t bits = uint64_t(st_dtype_bits(dtype));
  for (int64_t d : shape) {
    if (d < 0) fail("safetensors writer: tensor '{}' has a negative dimension {}", name, d);
    if (d != 0 && bits > (uint64_t(1) << 62) / uint64_t(d)) fail("safetensors writer: tensor '{}' is too large", name);
    bits *= uint64_t(d);
  }
  if (bits % 8 != 0) fail("safetensors writer: tensor '{}' is not a whole number of bytes", name);
  index_[name] = entries_.size();
  entries_.push_back({name, dtype, std::move(shape), total_, total_ + bits / 8});
  total_ += bits / 8;
}

uint64_t SafetensorsWriter::bytes_of(const std::string& name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) fail("safetensors writer: unknown tensor '{}'", name);
  const Entry& e = entries_[it->second];
  return e.end - e.begin;
}

void SafetensorsWriter::begin(const std::string& path) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata_.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata_) m[k] = v;
    h["__metadata__"] = m;
  }
  for (const Entry& e : entries_) {
    h[e.name] = {{"dtype", st_dtype_name(e.dtype)}, {"shape", e.shape}, {"data_offsets", {e.begin, e.end}}};
  }
  std::string text = h.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  path_ = path;
  out_.open(path, std::ios::binary | std::ios::trunc);
  if (!out_) fail("{}: cannot create the file", path);
  const uint64_t n = text.size();
  out_.write(reinterpret_cast<const char*>(&n), sizeof n);
  out_.write(text.data(), std::streamsize(text.size()));
  next_ = 0;
}

void SafetensorsWriter::write(const std::string& name, std::span<const uint8_t> bytes) {
  if (!out_.is_open()) fail("safetensors writer: write('{}') before begin()", name);
  if (next_ >= entries_.size() || entries_[next_].name != name) {
    fail("{}: tensor '{}' written out of declaration order", path_, name);
  }
  const Entry& e = entries_[next_];
  if (bytes.size() != e.end - e.begin) {
    fail("{}: tensor '{}' has {} bytes, its dtype and shape need {}", path_, name, bytes.size(), e.end - e.begin);
  }
  out_.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  ++next_;
}

void SafetensorsWriter::finish() {
  if (next_ != entries_.size()) {
    fail("{}: {} of {} tensors written (next: '{}')", path_, next_, entries_.size(), entries_[next_].name);
  }
  out_.flush();
  if (!out_) fail("{}: write failed (disk full?)", path_);
  out_.close();
}

void SafetensorsWriter::write_file(const std::string& path, const std::vector<Tensor>& tensors,
                                   const std::map<std::string, std::string>& metadata) {
  SafetensorsWriter w;
  for (const auto& [k, v] : metadata) w.set_metadata(k, v);
  for (const auto& t : tensors) w.add(t.name, t.dtype, t.shape);
  w.begin(path);
  for (const auto& t : tensors) w.write(t.name, t.bytes);
  w.finish();
}

}  // namespace imp
