#include "io/gguf_reader.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

#include "common/error.h"
#include "formats/quant_matrix.h"

namespace imp {
namespace {

static_assert(std::endian::native == std::endian::little, "the GGUF reader assumes a little-endian host");

// Smallest encodings, used to bound counts by the bytes left before allocating anything.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;              // key length, value type, one-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;  // name len, n_dims, type, offset
constexpr uint64_t kMaxInt64 = uint64_t(std::numeric_limits<int64_t>::max());

// Bounds-checked reader over the file bytes. Every failure names the file, what was being
// read and where.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> b, const std::string& name) : b_(b), name_(name) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return b_.size() - pos_; }

  void need(uint64_t n, std::string_view what) const {
    if (n > left()) {
      fail("{}: truncated file: {} needs {} bytes at offset {}, only {} left", name_, what, n, pos_, left());
    }
  }
  template <class T>
  T read(std::string_view what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  const uint8_t* take(uint64_t n, std::string_view what) {
    need(n, what);
    const uint8_t* p = b_.data() + pos_;
    pos_ += n;
    return p;
  }
  std::string string(std::string_view what) {
    const uint64_t at = pos_;
    const uint64_t n = read<uint64_t>(what);
    if (n > left()) {
      fail("{}: {} at offset {} has length {}, past the end of the file ({} bytes left)", name_, what, at, n, left());
    }
    const auto* p = reinterpret_cast<const char*>(take(n, what));
    return std::string(p, n);
  }

 private:
  std::span<const uint8_t> b_;
  const std::string& name_;
  uint64_t pos_ = 0;
};

GgufType read_value_type(Cursor& c, const std::string& name, const std::string& key, bool in_array) {
  const uint64_t at = c.pos();
  const uint32_t t = c.read<uint32_t>(in_array ? "array element type" : "value type");
  if (t >= kGgufTypeCount) fail("{}: key '{}': unknown value type {} at offset {}", name, key, t, at);
  if (in_array && GgufType(t) == GgufType::kArray) {
    fail("{}: key '{}': nested arrays are not supported (ggml rejects them too)", name, key);
  }
  return GgufType(t);
}

GgufValue read_scalar(Cursor& c, GgufType t, const std::string& name, const std::string& key) {
  switch (t) {
    case GgufType::kUint8: return GgufValue::of_uint(t, c.read<uint8_t>("UINT8 value"));
    case GgufType::kInt8: return GgufValue::of_int(t, c.read<int8_t>("INT8 value"));
    case GgufType::kUint16: return GgufValue::of_uint(t, c.read<uint16_t>("UINT16 value"));
    case GgufType::kInt16: return GgufValue::of_int(t, c.read<int16_t>("INT16 value"));
    case GgufType::kUint32: return GgufValue::of_uint(t, c.read<uint32_t>("UINT32 value"));
    case GgufType::kInt32: return GgufValue::of_int(t, c.read<int32_t>("INT32 value"));
    case GgufType::kUint64: return GgufValue::of_uint(t, c.read<uint64_t>("UINT64 value"));
    case GgufType::kInt64: return GgufValue::of_int(t, c.read<int64_t>("INT64 value"));
    case GgufType::kFloat32: return GgufValue::of_float(t, c.read<float>("FLOAT32 value"));
    case GgufType::kFloat64: return GgufValue::of_float(t, c.read<double>("FLOAT64 value"));
    case GgufType::kBool: {
      const uint64_t at = c.pos();
      const uint8_t b = c.read<uint8_t>("BOOL value");
      if (b > 1) fail("{}: key '{}': BOOL value {} at offset {} is not 0 or 1", name, key, b, at);
      return GgufValue::of_bool(b != 0);
    }
    case GgufType::kString: return GgufValue::of_string(c.string("string value"));
    case GgufType::kArray: break;
  }
  fail("{}: key '{}': unexpected value type {}", name, key, uint32_t(t));
}

GgufValue read_value(Cursor& c, const std::string& name, const std::string& key) {
  const GgufType t = read_value_type(c, name, key, false);
  if (t != GgufType::kArray) return read_scalar(c, t, name, key);
  const GgufType e = read_value_type(c, name, key, true);
  const uint64_t at = c.pos();
  const uint64_t n = c.read<uint64_t>("array length");
  if (e == GgufType::kString) {
    // Each string takes at least its 8-byte length.
    if (n > c.left() / 8) {
      fail("{}: key '{}': array of {} strings at offset {} cannot fit in the {} bytes left", name, key, n, at, c.left());
    }
    std::vector<std::string> s;
    s.reserve(size_t(n));
    for (uint64_t k = 0; k < n; ++k) s.push_back(c.string("array string"));
    return GgufValue::of_strings(std::move(s));
  }
  const uint64_t size = gguf_type_size(e);
  if (n > c.left() / size) {
    fail("{}: key '{}': array of {} {} at offset {} runs past the end of the file ({} bytes left)", name, key, n,
         gguf_type_name(e), at, c.left());
  }
  const uint8_t* p = c.take(n * size, "array data");
  if (e == GgufType::kBool) {
    for (uint64_t k = 0; k < n; ++k) {
      if (p[k] > 1) fail("{}: key '{}': BOOL array element {} is {}, not 0 or 1", name, key, k, p[k]);
    }
  }
  return GgufValue::of_array(e, std::vector<uint8_t>(p, p + n * size));
}

uint32_t alignment_from(const GgufValue& v, const std::string& name) {
  const auto a = v.as_int();
  if (!a || gguf_type_is_signed(v.type)) {
    fail("{}: general.alignment must be an unsigned integer, got {}", name, v.type_string());
  }
  if (*a == 0 || *a > int64_t(std::numeric_limits<uint32_t>::max()) || !std::has_single_bit(uint64_t(*a))) {
    fail("{}: general.alignment {} is not a power of two that fits in 32 bits", name, *a);
  }
  return uint32_t(*a);
}

GgufTensorInfo read_tensor_info(Cursor& c, const std::string& name, uint32_t index) {
  GgufTensorInfo t;
  t.name = c.string("tensor name");
  if (t.name.empty()) fail("{}: tensor {} has an empty name", name, index);
  const uint32_t n_dims = c.read<uint32_t>("tensor n_dims");
  if (n_dims > kGgufMaxDims) {
    fail("{}: tensor '{}' has {} dimensions (at most {} supported)", name, t.name, n_dims, kGgufMaxDims);
  }
  for (uint32_t d = 0; d < n_dims; ++d) {
    const uint64_t ne = c.read<uint64_t>("tensor dimension");
    if (ne > kMaxInt64) fail("{}: tensor '{}' dimension {} is {}, out of range", name, t.name, d, ne);
    t.ne.push_back(ne);
  }
  const uint64_t type_at = c.pos();
  t.ggml_type = c.read<uint32_t>("tensor type");
  try {
    t.format = checked_format_from_gguf_type(t.ggml_type);
  } catch (const Error& e) {
    fail("{}: tensor '{}' (type at offset {}): {}", name, t.name, type_at, e.what());
  }
  t.offset = c.read<uint64_t>("tensor offset");
  try {
    t.size = gguf_tensor_bytes(t.format, t.ne);
  } catch (const Error& e) {
    fail("{}: tensor '{}': {}", name, t.name, e.what());
  }
  return t;
}

// Offsets aligned, bytes inside the data section, no two tensors sharing a byte.
void check_tensor_placement(const GgufFile& f) {
  const uint64_t data_size = f.bytes.size() - f.layout.data_offset;
  for (const auto& t : f.tensors) {
    if (t.offset % f.alignment != 0) {
      fail("{}: tensor '{}' offset {} is not a multiple of the alignment {}", f.name, t.name, t.offset, f.alignment);
    }
    if (t.offset > data_size || t.size > data_size - t.offset) {
      fail("{}: tensor '{}' ({} bytes at data offset {}) runs past the end of the file (data section holds {} bytes)",
           f.name, t.name, t.size, t.offset, data_size);
    }
  }
  std::vector<const GgufTensorInfo*> order;
  for (const auto& t : f.tensors) {
    if (t.size > 0) order.push_back(&t);
  }
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const auto* a = order[k - 1];
    const auto* b = order[k];
    if (b->offset < a->offset + a->size) {
      fail("{}: tensors '{}' (data offset {}, {} bytes) and '{}' (data offset {}) overlap", f.name, a->name, a->offset,
           a->size, b->name, b->offset);
    }
  }
}

}  // namespace

std::vector<int64_t> GgufTensorInfo::shape() const {
  std::vector<int64_t> s;
  for (auto it = ne.rbegin(); it != ne.rend(); ++it) s.push_back(int64_t(*it));
  return s;
}

uint64_t GgufTensorInfo::elements() const {
  uint64_t n = 1;
  for (uint64_t d : ne) n *= d;  // bounded by gguf_tensor_bytes at parse time
  return n;
}

uint64_t gguf_tensor_bytes(FormatId format, std::span<const uint64_t> ne) {
  const auto& t = format_traits(format);
  uint64_t elements = 1;
  for (uint64_t d : ne) {
    if (d != 0 && elements > kMaxInt64 / d) fail("element count overflows 63 bits");
    elements *= d;
  }
  if (elements == 0) return 0;
  const uint64_t ne0 = ne.empty() ? 1 : ne[0];
  if (ne0 % uint64_t(t.block_elems) != 0) {
    fail("{} row length ne[0] = {} is not a multiple of the block size {}", t.name, ne0, t.block_elems);
  }
  const uint64_t row_bytes = uint64_t(row_data_bytes(format, int64_t(ne0)));
  const uint64_t rows = elements / ne0;
  if (rows > kMaxInt64 / row_bytes) fail("byte size overflows 63 bits ({} rows of {} bytes)", rows, row_bytes);
  return rows * row_bytes;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  const auto it = kv_index.find(std::string(key));
  return it == kv_index.end() ? nullptr : &kv[it->second].second;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view tensor_name) const {
  const auto it = tensor_index.find(std::string(tensor_name));
  return it == tensor_index.end() ? nullptr : &tensors[it->second];
}

std::span<const uint8_t> GgufFile::tensor_data(const GgufTensorInfo& t) const {
  return bytes.subspan(size_t(layout.data_offset + t.offset), size_t(t.size));
}

GgufFile parse_gguf(std::span<const uint8_t> bytes, const std::string& name) {
  GgufFile f;
  f.name = name;
  f.bytes = bytes;
  Cursor c(bytes, name);
  if (bytes.size() < 4) fail("{}: not a GGUF file: {} bytes, too short for the magic", name, bytes.size());
  const uint32_t magic = c.read<uint32_t>("magic");
  if (magic != kGgufMagic) fail("{}: not a GGUF file: bad magic {:08x} (expected \"GGUF\")", name, magic);
  f.version = c.read<uint32_t>("version");
  if (f.version != 0 && (f.version & 0xFFFFu) == 0) {
    fail("{}: big-endian GGUF file (version field reads {:#x}); only little-endian files are supported", name,
         f.version);
  }
  if (f.version < 2 || f.version > 3) {
    fail("{}: GGUF version {} is not supported (this reader handles versions 2 and 3)", name, f.version);
  }
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("kv count");
  if (n_kv > c.left() / kMinKvBytes) {
    fail("{}: kv count {} cannot fit in the {} bytes after the header", name, n_kv, c.left());
  }
  if (n_tensors > c.left() / kMinTensorInfoBytes) {
    fail("{}: tensor count {} cannot fit in the {} bytes after the header", name, n_tensors, c.left());
  }

  f.kv.reserve(size_t(n_kv));
  for (uint64_t k = 0; k < n_kv; ++k) {
    f.layout.kv_offsets.push_back(c.pos());
    std::string key = c.string("key");
    if (key.empty()) fail("{}: key {} at offset {} is empty", name, k, f.layout.kv_offsets.back());
    if (f.kv_index.count(key)) fail("{}: duplicate key '{}'", name, key);
    GgufValue v = read_value(c, name, key);
    f.kv_index.emplace(key, f.kv.size());
    f.kv.emplace_back(std::move(key), std::move(v));
  }
  if (const GgufValue* a = f.find("general.alignment")) f.alignment = alignment_from(*a, name);

  f.tensors.reserve(size_t(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    f.layout.tensor_info_offsets.push_back(c.pos());
    GgufTensorInfo t = read_tensor_info(c, name, uint32_t(k));
    if (f.tensor_index.count(t.name)) fail("{}: duplicate tensor name '{}'", name, t.name);
    f.tensor_index.emplace(t.name, f.tensors.size());
    f.tensors.push_back(std::move(t));
  }
  f.layout.tensor_infos_end = c.pos();
  // ggml pads to the alignment only when there are tensors; a metadata-only file may end here.
  const uint64_t pad = (f.alignment - c.pos() % f.alignment) % f.alignment;
  f.layout.data_offset = n_tensors == 0 ? std::min<uint64_t>(c.pos() + pad, bytes.size()) : c.pos() + pad;
  if (f.layout.data_offset > bytes.size()) {
    fail("{}: truncated file: the tensor data section starts at offset {}, past the end of the file ({} bytes)", name,
         f.layout.data_offset, bytes.size());
  }
  check_tensor_placement(f);
  return f;
}

nlohmann::json gguf_metadata_json(const GgufFile& f) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [key, value] : f.kv) j[key] = to_json(value);
  return j;
}

}  // namespace imp
