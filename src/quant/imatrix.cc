#include "quant/imatrix.h"

#include <cstring>
#include <fmt/format.h>

#include "common/error.h"
#include "io/gguf_reader.h"
#include "io/gguf_writer.h"
#include "io/mapped_file.h"

namespace imp::quant {

namespace {

constexpr std::string_view kSum2 = ".in_sum2", kCounts = ".counts";

bool ends_with(const std::string& s, std::string_view suf) {
  return s.size() > suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

std::vector<float> f32_tensor(const GgufFile& g, const GgufTensorInfo& t) {
  if (t.format != FormatId::F32) fail("{}: imatrix tensor '{}' is not F32", g.name, t.name);
  const auto bytes = g.tensor_data(t);
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

// Bounds-checked little-endian reader for the legacy format.
struct Cursor {
  std::span<const uint8_t> b;
  size_t at = 0;
  const std::string& path;
  bool has(size_t n) const { return at + n <= b.size(); }
  void need(size_t n, const char* what) const {
    if (!has(n)) fail("{}: legacy imatrix truncated reading {} at byte {}", path, what, at);
  }
  int32_t i32(const char* what) {
    need(4, what);
    int32_t v;
    std::memcpy(&v, b.data() + at, 4);
    at += 4;
    return v;
  }
};

Imatrix read_legacy(std::span<const uint8_t> bytes, const std::string& path) {
  Imatrix m;
  Cursor c{bytes, 0, path};
  const int32_t n = c.i32("the entry count");
  if (n < 1) fail("{}: legacy imatrix has {} entries", path, n);
  for (int32_t i = 0; i < n; ++i) {
    const int32_t len = c.i32("a name length");
    if (len < 1 || len > 4096) fail("{}: legacy imatrix entry {} has a name of {} bytes", path, i, len);
    c.need(size_t(len), "a name");
    std::string name(reinterpret_cast<const char*>(bytes.data() + c.at), size_t(len));
    c.at += size_t(len);
    const int32_t ncall = c.i32("ncall");
    const int32_t nval = c.i32("nval");
    if (nval < 1 || ncall < 0) fail("{}: legacy imatrix entry '{}' has nval {} ncall {}", path, name, nval, ncall);
    c.need(size_t(nval) * 4, "values");
    ImatrixEntry e;
    e.in_sum2.resize(size_t(nval));
    std::memcpy(e.in_sum2.data(), bytes.data() + c.at, size_t(nval) * 4);
    c.at += size_t(nval) * 4;
    // values = mean(x²)·ncall: keep in_sum2/count = mean by taking count = ncall (≥ 1).
    e.count = float(ncall > 0 ? ncall : 1);
    m.entries[name] = std::move(e);
  }
  if (c.has(4)) {
    c.i32("n_call");
    if (c.has(4)) {
      const int32_t len = c.i32("the dataset length");
      if (len > 0 && c.has(size_t(len))) {
        m.datasets.emplace_back(reinterpret_cast<const char*>(bytes.data() + c.at), size_t(len));
      }
    }
  }
  return m;
}

}  // namespace

std::vector<float> Imatrix::importance(const std::string& weight) const {
  const auto it = entries.find(weight);
  if (it == entries.end()) return {};
  std::vector<float> v = it->second.in_sum2;
  const float c = it->second.count > 0 ? it->second.count : 1.0f;
  for (float& x : v) x /= c;
  return v;
}

Imatrix imatrix_from_calibration(const CalibCollector& c, std::vector<std::string> datasets, uint32_t chunk_count,
                                 uint32_t chunk_size) {
  Imatrix m;
  m.datasets = std::move(datasets);
  m.chunk_count = chunk_count;
  m.chunk_size = chunk_size;
  for (const std::string& w : c.weight_names()) {
    const LinearStats* s = c.find(w);
    ImatrixEntry e;
    e.in_sum2.assign(s->sum_x2.begin(), s->sum_x2.end());
    e.count = float(s->n_tok);
    m.entries[w] = std::move(e);
  }
  return m;
}

void write_imatrix(const Imatrix& m, const std::string& path) {
  if (m.entries.empty()) fail("imatrix: nothing to write to '{}' (no weights were observed)", path);
  GgufWriter w;
  w.set("general.type", GgufValue::of_string("imatrix"));
  w.set("imatrix.datasets", GgufValue::of_strings(m.datasets));
  w.set("imatrix.chunk_count", GgufValue::of_uint(GgufType::kUint32, m.chunk_count));
  w.set("imatrix.chunk_size", GgufValue::of_uint(GgufType::kUint32, m.chunk_size));
  std::vector<float> counts;
  counts.reserve(m.entries.size());
  for (const auto& [name, e] : m.entries) counts.push_back(e.count);
  size_t i = 0;
  for (const auto& [name, e] : m.entries) {
    const auto* p = reinterpret_cast<const uint8_t*>(e.in_sum2.data());
    w.add_tensor(name + std::string(kSum2), {1, int64_t(e.in_sum2.size())}, FormatId::F32,
                 std::span(p, e.in_sum2.size() * 4));
    w.add_tensor(name + std::string(kCounts), {1, 1}, FormatId::F32,
                 std::span(reinterpret_cast<const uint8_t*>(&counts[i]), 4));
    ++i;
  }
  w.write(path);
}

Imatrix read_imatrix(const std::string& path) {
  MappedFile f(path);
  const auto bytes = f.bytes();
  uint32_t magic = 0;
  if (bytes.size() >= 4) std::memcpy(&magic, bytes.data(), 4);
  if (magic != kGgufMagic) return read_legacy(bytes, path);
  const GgufFile g = parse_gguf(bytes, path);
  Imatrix m;
  if (const GgufValue* d = g.find("imatrix.datasets"); d && d->type == GgufType::kArray) m.datasets = d->strings;
  if (const GgufValue* v = g.find("imatrix.chunk_count")) m.chunk_count = uint32_t(v->as_int().value_or(0));
  if (const GgufValue* v = g.find("imatrix.chunk_size")) m.chunk_size = uint32_t(v->as_int().value_or(0));
  std::map<std::string, const GgufTensorInfo*> sums, counts;
  for (const GgufTensorInfo& t : g.tensors) {
    if (ends_with(t.name, kSum2)) sums[t.name.substr(0, t.name.size() - kSum2.size())] = &t;
    else if (ends_with(t.name, kCounts)) counts[t.name.substr(0, t.name.size() - kCounts.size())] = &t;
  }
  if (sums.empty()) fail("{}: no '<weight>.in_sum2' tensors (not an imatrix file?)", path);
  for (const auto& [name, t] : sums) {
    const auto c = counts.find(name);
    if (c == counts.end()) fail("{}: '{}.in_sum2' has no '{}.counts'", path, name, name);
    const std::vector<float> cv = f32_tensor(g, *c->second);
    if (cv.size() != 1) {
      fail("{}: '{}.counts' has {} entries; per-expert (3-D) imatrices are not supported", path, name, cv.size());
    }
    ImatrixEntry e;
    e.in_sum2 = f32_tensor(g, *t);
    e.count = cv[0];
    m.entries[name] = std::move(e);
  }
  return m;
}

}  // namespace imp::quant
