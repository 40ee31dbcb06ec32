#include "io/gguf_writer.h"

#include <unistd.h>

#include <bit>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "formats/traits.h"
#include "io/gguf_reader.h"

namespace imp {
namespace {

static_assert(std::endian::native == std::endian::little, "the GGUF writer assumes a little-endian host");

uint64_t align_up(uint64_t p, uint64_t a) { return p + (a - p % a) % a; }

class Out {
 public:
  explicit Out(std::vector<uint8_t>& b) : b_(b) {}
  template <class T>
  void put(T v) {
    const size_t at = b_.size();
    b_.resize(at + sizeof(T));
    std::memcpy(b_.data() + at, &v, sizeof(T));
  }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    b_.insert(b_.end(), s.begin(), s.end());
  }
  void bytes(const std::vector<uint8_t>& v) { b_.insert(b_.end(), v.begin(), v.end()); }

 private:
  std::vector<uint8_t>& b_;
};

void put_scalar(Out& o, const GgufValue& v) {
  switch (v.type) {
    case GgufType::kUint8: case GgufType::kBool: o.put<uint8_t>(uint8_t(v.u)); break;
    case GgufType::kInt8: o.put<int8_t>(int8_t(v.i)); break;
    case GgufType::kUint16: o.put<uint16_t>(uint16_t(v.u)); break;
    case GgufType::kInt16: o.put<int16_t>(int16_t(v.i)); break;
    case GgufType::kUint32: o.put<uint32_t>(uint32_t(v.u)); break;
    case GgufType::kInt32: o.put<int32_t>(int32_t(v.i)); break;
    case GgufType::kUint64: o.put<uint64_t>(v.u); break;
    case GgufType::kInt64: o.put<int64_t>(v.i); break;
    case GgufType::kFloat32: o.put<float>(float(v.f)); break;
    case GgufType::kFloat64: o.put<double>(v.f); break;
    case GgufType::kString: o.str(v.str); break;
    case GgufType::kArray:
      o.put<uint32_t>(uint32_t(v.elem_type));
      o.put<uint64_t>(v.array_size());
      if (v.elem_type == GgufType::kString) {
        for (const auto& s : v.strings) o.str(s);
      } else {
        o.bytes(v.raw);
      }
      break;
  }
}

}  // namespace

void GgufWriter::set(std::string key, GgufValue value) {
  if (key.empty()) fail("GGUF writer: empty key");
  if (keys_.count(key)) fail("GGUF writer: duplicate key '{}'", key);
  if (value.type == GgufType::kArray && value.elem_type == GgufType::kArray) {
    fail("GGUF writer: key '{}': nested arrays are not supported", key);
  }
  if (key == "general.alignment") {
    const auto a = value.as_int();
    if (!a || gguf_type_is_signed(value.type) || *a <= 0 || *a > int64_t(UINT32_MAX) ||
        !std::has_single_bit(uint64_t(*a))) {
      fail("GGUF writer: general.alignment must be an unsigned power of two, got {}", to_json(value).dump());
    }
    alignment_ = uint32_t(*a);
  }
  keys_.insert(key);
  kv_.emplace_back(std::move(key), std::move(value));
}

uint64_t GgufWriter::add_tensor_info(std::string name, std::vector<int64_t> shape, FormatId format) {
  const auto& t = format_traits(format);
  if (name.empty()) fail("GGUF writer: empty tensor name");
  if (names_.count(name)) fail("GGUF writer: duplicate tensor name '{}'", name);
  if (t.gguf_type < 0) fail("GGUF writer: tensor '{}': format {} has no GGUF type", name, t.name);
  if (shape.size() > kGgufMaxDims) fail("GGUF writer: tensor '{}' has {} dims (max {})", name, shape.size(), kGgufMaxDims);
  std::vector<uint64_t> ne;
  for (auto it = shape.rbegin(); it != shape.rend(); ++it) {
    if (*it < 0) fail("GGUF writer: tensor '{}' has a negative dimension {}", name, *it);
    ne.push_back(uint64_t(*it));
  }
  uint64_t want = 0;
  try {
    want = gguf_tensor_bytes(format, ne);
  } catch (const Error& e) {
    fail("GGUF writer: tensor '{}': {}", name, e.what());
  }
  names_.insert(name);
  tensors_.push_back({std::move(name), std::move(ne), format, {}, want});
  return want;
}

void GgufWriter::add_tensor(std::string name, std::vector<int64_t> shape, FormatId format,
                            std::span<const uint8_t> data) {
  const std::string n = name;
  const uint64_t want = add_tensor_info(std::move(name), std::move(shape), format);
  if (data.size() != want) {
    names_.erase(n);
    tensors_.pop_back();
    fail("GGUF writer: tensor '{}' ({}) has {} bytes, its shape needs {}", n, format_name(format), data.size(), want);
  }
  tensors_.back().data = data;
}

std::vector<uint8_t> GgufWriter::header(std::vector<uint64_t>& offsets) const {
  std::vector<uint8_t> b;
  Out o(b);
  o.put<uint32_t>(kGgufMagic);
  o.put<uint32_t>(3);
  o.put<uint64_t>(tensors_.size());
  o.put<uint64_t>(kv_.size());
  for (const auto& [key, value] : kv_) {
    o.str(key);
    o.put<uint32_t>(uint32_t(value.type));
    put_scalar(o, value);
  }
  offsets.clear();
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    o.str(t.name);
    o.put<uint32_t>(uint32_t(t.ne.size()));
    for (uint64_t d : t.ne) o.put<uint64_t>(d);
    o.put<uint32_t>(uint32_t(format_traits(t.format).gguf_type));
    o.put<uint64_t>(offset);
    offsets.push_back(offset);
    offset = align_up(offset + t.size, alignment_);
  }
  if (!tensors_.empty()) b.resize(size_t(align_up(b.size(), alignment_)), 0);
  return b;
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
  for (const auto& t : tensors_) {
    if (t.data.size() != t.size) fail("GGUF writer: tensor '{}' was declared without its bytes (streamed)", t.name);
  }
  std::vector<uint64_t> offsets;
  std::vector<uint8_t> b = header(offsets);
  const size_t data_start = b.size();
  for (size_t k = 0; k < tensors_.size(); ++k) {
    if (tensors_[k].data.size() != tensors_[k].size) fail("GGUF writer: tensor '{}' is streamed; use write_streamed", tensors_[k].name);
    b.resize(data_start + size_t(offsets[k]), 0);
    b.insert(b.end(), tensors_[k].data.begin(), tensors_[k].data.end());
  }
  if (!tensors_.empty()) b.resize(size_t(align_up(b.size(), alignment_)), 0);
  return b;
}

void GgufWriter::write(const std::string& path) const {
  for (const auto& t : tensors_) {
    if (t.data.size() != t.size) fail("GGUF writer: tensor '{}' was declared without its bytes; use write_streamed", t.name);
  }
  write_impl(path, [this](size_t k, std::vector<uint8_t>&) { return tensors_[k].data; });
}

void GgufWriter::write_streamed(const std::string& path, const TensorProducer& produce) const {
  write_impl(path, [&](size_t k, std::vector<uint8_t>& buf) {
    buf = produce(k);
    if (buf.size() != tensors_[k].size) {
      fail("GGUF writer: tensor '{}' produced {} bytes, its shape needs {}", tensors_[k].name, buf.size(), tensors_[k].size);
    }
    return std::span<const uint8_t>(buf);
  });
}

void GgufWriter::write_impl(const std::string& path,
                            const std::function<std::span<const uint8_t>(size_t, std::vector<uint8_t>&)>& bytes_of) const {
  namespace fs = std::filesystem;
  const std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
  std::vector<uint64_t> offsets;
  const std::vector<uint8_t> head = header(offsets);
  try {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail("{}: cannot create {}", path, tmp);
    const std::vector<char> zeros(alignment_, 0);
    out.write(reinterpret_cast<const char*>(head.data()), std::streamsize(head.size()));
    uint64_t pos = 0;  // within the data section
    std::vector<uint8_t> buf;
    for (size_t k = 0; k < tensors_.size(); ++k) {
      const std::span<const uint8_t> data = bytes_of(k, buf);
      out.write(zeros.data(), std::streamsize(offsets[k] - pos));
      out.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size()));
      pos = offsets[k] + data.size();
    }
    if (!tensors_.empty()) out.write(zeros.data(), std::streamsize(align_up(pos, alignment_) - pos));
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
