#include "io/safetensors_reader.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>

#include "common/error.h"

namespace imp {
namespace {

constexpr uint64_t kMaxHeader = 100'000'000;  // the Rust reader's MAX_HEADER_SIZE

struct DtypeRow {
  StDtype id;
  std::string_view name;
  int bits;
};

constexpr std::array<DtypeRow, 22> kDtypes = {{
    {StDtype::BOOL, "BOOL", 8},       {StDtype::U8, "U8", 8},
    {StDtype::I8, "I8", 8},           {StDtype::F8_E5M2, "F8_E5M2", 8},
    {StDtype::F8_E4M3, "F8_E4M3", 8}, {StDtype::F8_E8M0, "F8_E8M0", 8},
    {StDtype::F8_E4M3FNUZ, "F8_E4M3FNUZ", 8}, {StDtype::F8_E5M2FNUZ, "F8_E5M2FNUZ", 8},
    {StDtype::I16, "I16", 16},        {StDtype::U16, "U16", 16},
    {StDtype::F16, "F16", 16},        {StDtype::BF16, "BF16", 16},
    {StDtype::I32, "I32", 32},        {StDtype::U32, "U32", 32},
    {StDtype::F32, "F32", 32},        {StDtype::I64, "I64", 64},
    {StDtype::U64, "U64", 64},        {StDtype::F64, "F64", 64},
    {StDtype::C64, "C64", 64},        {StDtype::F4, "F4", 4},
    {StDtype::F6_E2M3, "F6_E2M3", 6}, {StDtype::F6_E3M2, "F6_E3M2", 6},
}};

const DtypeRow& row(StDtype d) {
  for (const auto& r : kDtypes) {
    if (r.id == d) return r;
  }
  fail("unknown safetensors dtype id {}", int(d));
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// A non-negative JSON integer that fits u64 (floats, negatives and strings rejected).
std::optional<uint64_t> as_u64(const nlohmann::json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return uint64_t(v.get<int64_t>());
  return std::nullopt;
}

}  // namespace

std::optional<StDtype> st_dtype_from_name(std::string_view name) {
  for (const auto& r : kDtypes) {
    if (r.name == name) return r.id;
  }
  return std::nullopt;
}
std::string_view st_dtype_name(StDtype d) { return row(d).name; }
int st_dtype_bits(StDtype d) { return row(d).bits; }

int64_t StTensor::elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // overflow excluded by parse_safetensors
  return n;
}

const StTensor* StFile::find(std::string_view tensor) const {
  for (const auto& t : tensors) {
    if (t.name == tensor) return &t;
  }
  return nullptr;
}

nlohmann::json parse_json_strict(std::string_view text, const std::string& display_name) {
  // One set of seen keys per open object; the callback sees keys before their values.
  std::vector<std::set<std::string>> seen;
  std::string duplicate;
  auto cb = [&](int /*depth*/, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (ev == E::object_start) {
      seen.emplace_back();
    } else if (ev == E::object_end) {
      if (!seen.empty()) seen.pop_back();
    } else if (ev == E::key && !seen.empty() && duplicate.empty()) {
      const auto& k = parsed.get_ref<const std::string&>();
      if (!seen.back().insert(k).second) duplicate = k;
    }
    return true;
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/true,
                              /*ignore_comments=*/false);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: invalid JSON: {}", display_name, e.what());
  }
  if (!duplicate.empty()) fail("{}: duplicate JSON key '{}'", display_name, duplicate);
  return j;
}

std::unique_ptr<StFile> parse_safetensors(std::span<const uint8_t> bytes, const std::string& display_name) {
  auto file = std::make_unique<StFile>();
  file->name = display_name;
  const std::string& fname = file->name;
  if (bytes.size() < 8) fail("{}: not a safetensors file: {} bytes, the header length alone needs 8", fname, bytes.size());
  const uint64_t n = read_u64_le(bytes.data());
  if (n > kMaxHeader) fail("{}: safetensors header length {} exceeds the limit of {} bytes", fname, n, kMaxHeader);
  if (n > bytes.size() - 8) {
    fail("{}: safetensors header length {} runs past the end of the file ({} bytes)", fname, n, bytes.size());
  }
  file->header_bytes = n;
  const std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), size_t(n));
  if (text.empty() || text.front() != '{') fail("{}: safetensors header does not start with '{{'", fname);
  const nlohmann::json header = parse_json_strict(text, fname + " (safetensors header)");
  if (!header.is_object()) fail("{}: safetensors header is not a JSON object", fname);

  const std::span<const uint8_t> buffer = bytes.subspan(size_t(8 + n));
  for (const auto& [key, entry] : header.items()) {
    if (key == "__metadata__") {
      if (!entry.is_object()) fail("{}: __metadata__ is not a JSON object", fname);
      for (const auto& [mk, mv] : entry.items()) {
        if (!mv.is_string()) fail("{}: __metadata__ value of '{}' is not a string", fname, mk);
        file->metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    if (!entry.is_object()) fail("{}: tensor '{}': header entry is not a JSON object", fname, key);
    StTensor t;
    t.name = key;
    const auto dt = entry.find("dtype");
    if (dt == entry.end() || !dt->is_string()) fail("{}: tensor '{}': missing or non-string \"dtype\"", fname, key);
    const auto id = st_dtype_from_name(dt->get_ref<const std::string&>());
    if (!id) fail("{}: tensor '{}': unknown dtype '{}'", fname, key, dt->get_ref<const std::string&>());
    t.dtype = *id;
    const auto sh = entry.find("shape");
    if (sh == entry.end() || !sh->is_array()) fail("{}: tensor '{}': missing or non-array \"shape\"", fname, key);
    uint64_t count = 1;
    for (const auto& d : *sh) {
      const auto v = as_u64(d);
      if (!v || *v > uint64_t(std::numeric_limits<int64_t>::max())) {
        fail("{}: tensor '{}': shape entry {} is not a non-negative integer", fname, key, d.dump());
      }
      if (*v != 0 && count > std::numeric_limits<uint64_t>::max() / *v) {
        fail("{}: tensor '{}': element count of shape {} overflows", fname, key, sh->dump());
      }
      count *= *v;
      t.shape.push_back(int64_t(*v));
    }
    const uint64_t bits = uint64_t(st_dtype_bits(t.dtype));
    if (count > std::numeric_limits<uint64_t>::max() / bits || count * bits / 8 > uint64_t(std::numeric_limits<int64_t>::max())) {
      fail("{}: tensor '{}': byte size of shape {} overflows", fname, key, sh->dump());
    }
    if ((count * bits) % 8 != 0) {
      fail("{}: tensor '{}': {} elements of {} do not fill whole bytes", fname, key, count, st_dtype_name(t.dtype));
    }
    const uint64_t size = count * bits / 8;
    const auto off = entry.find("data_offsets");
    if (off == entry.end() || !off->is_array() || off->size() != 2) {
      fail("{}: tensor '{}': \"data_offsets\" must be an array [begin, end]", fname, key);
    }
    const auto b = as_u64((*off)[0]), e = as_u64((*off)[1]);
    if (!b || !e) fail("{}: tensor '{}': data_offsets {} are not non-negative integers", fname, key, off->dump());
    if (*b > *e) fail("{}: tensor '{}': data_offsets begin {} is after end {}", fname, key, *b, *e);
    if (*e > buffer.size()) {
      fail("{}: tensor '{}': data_offsets end {} is past the data buffer ({} bytes)", fname, key, *e, buffer.size());
    }
    if (*e - *b != size) {
      fail("{}: tensor '{}': data_offsets span {} bytes but {} {} needs {}", fname, key, *e - *b,
           st_dtype_name(t.dtype), sh->dump(), size);
    }
    t.begin = *b;
    t.end = *e;
    t.data = buffer.subspan(size_t(*b), size_t(size));
    file->tensors.push_back(std::move(t));
  }
  std::sort(file->tensors.begin(), file->tensors.end(), [](const StTensor& a, const StTensor& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // The tensors must tile the buffer: each begins where the previous one ended.
  uint64_t pos = 0;
  const StTensor* prev = nullptr;
  for (auto& t : file->tensors) {
    if (t.begin < pos) {
      fail("{}: tensor '{}' (bytes {}..{}) overlaps tensor '{}' (ends at {})", fname, t.name, t.begin, t.end,
           prev->name, pos);
    }
    if (t.begin > pos) {
      fail("{}: gap in the data buffer: bytes {}..{} before tensor '{}' belong to no tensor", fname, pos, t.begin,
           t.name);
    }
    pos = t.end;
    prev = &t;
    t.file = &file->name;
  }
  if (pos != buffer.size()) {
    fail("{}: data buffer holds {} bytes but the tensors cover {} (trailing bytes belong to no tensor)", fname,
         buffer.size(), pos);
  }
  return file;
}

std::map<std::string, std::string> parse_safetensors_index(std::string_view text, const std::string& display_name) {
  const nlohmann::json j = parse_json_strict(text, display_name);
  if (!j.is_object()) fail("{}: not a JSON object", display_name);
  const auto wm = j.find("weight_map");
  if (wm == j.end() || !wm->is_object()) fail("{}: missing \"weight_map\" object", display_name);
  std::map<std::string, std::string> out;
  for (const auto& [name, shard] : wm->items()) {
    if (!shard.is_string()) fail("{}: weight_map entry '{}' is not a string", display_name, name);
    const auto& s = shard.get_ref<const std::string&>();
    if (s.empty() || s == "." || s == ".." || s.find('/') != std::string::npos || s.find('\\') != std::string::npos ||
        s.find('\0') != std::string::npos) {
      fail("{}: weight_map entry '{}' names shard '{}', which is not a plain file name in the folder", display_name,
           name, s);
    }
    out[name] = s;
  }
  if (out.empty()) fail("{}: weight_map is empty", display_name);
  return out;
}

namespace {

std::string read_text_file(const MappedFile& f) {
  const auto b = f.bytes();
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

void add_file(StCollection& c, const std::string& path) {
  c.mappings.push_back(std::make_unique<MappedFile>(path));
  c.files.push_back(parse_safetensors(c.mappings.back()->bytes(), path));
}

}  // namespace

StCollection open_safetensors(const std::string& path) {
  namespace fs = std::filesystem;
  StCollection c;
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    add_file(c, path);
    for (const auto& t : c.files[0]->tensors) c.by_name[t.name] = &t;
    c.container = "safetensors";
    return c;
  }
  const fs::path dir(path);
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(index, ec)) {
    const MappedFile idx(index.string());
    const auto map = parse_safetensors_index(read_text_file(idx), index.string());
    std::map<std::string, size_t> shard_of;  // shard file name → position in c.files
    for (const auto& [tensor, shard] : map) {
      if (shard_of.count(shard)) continue;
      const fs::path p = dir / shard;
      if (!fs::is_regular_file(p, ec)) {
        fail("{}: shard '{}' (listed for tensor '{}') does not exist", index.string(), shard, tensor);
      }
      shard_of[shard] = c.files.size();
      add_file(c, p.string());
    }
    std::map<std::string, std::string> found_in;  // tensor → shard it was found in
    for (const auto& [shard, i] : shard_of) {
      for (const auto& t : c.files[i]->tensors) {
        const auto [it, fresh] = found_in.emplace(t.name, shard);
        if (!fresh) fail("{}: tensor '{}' occurs in two shards, '{}' and '{}'", index.string(), t.name, it->second, shard);
        c.by_name.emplace(t.name, &t);
      }
    }
    for (const auto& [tensor, shard] : found_in) {
      const auto it = map.find(tensor);
      if (it == map.end()) fail("{}: tensor '{}' in shard '{}' is missing from the index", index.string(), tensor, shard);
      if (it->second != shard) {
        fail("{}: tensor '{}' is in shard '{}' but the index lists it in '{}'", index.string(), tensor, shard,
             it->second);
      }
    }
    for (const auto& [tensor, shard] : map) {
      if (!c.by_name.count(tensor)) {
        fail("{}: tensor '{}' is listed for shard '{}' but that shard does not hold it", index.string(), tensor, shard);
      }
    }
    c.container = fmt::format("safetensors ({} shards)", c.files.size());
    return c;
  }
  fs::path single = dir / "model.safetensors";
  if (!fs::is_regular_file(single, ec)) {
    std::vector<fs::path> found;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (e.is_regular_file() && e.path().extension() == ".safetensors") found.push_back(e.path());
    }
    if (found.empty()) fail("{}: no .safetensors file and no model.safetensors.index.json", path);
    if (found.size() > 1) {
      fail("{}: {} .safetensors files but no model.safetensors.index.json to say which tensor is where", path,
           found.size());
    }
    single = found[0];
  }
  add_file(c, single.string());
  for (const auto& t : c.files[0]->tensors) c.by_name[t.name] = &t;
  c.container = "safetensors";
  return c;
}

}  // namespace imp
