#include "io/gguf_value.h"

#include <array>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/error.h"

namespace imp {
namespace {

constexpr std::array<std::string_view, kGgufTypeCount> kNames = {
    "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
    "BOOL",  "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"};
constexpr std::array<uint32_t, kGgufTypeCount> kSizes = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

uint64_t uint_max(GgufType t) { return gguf_type_size(t) == 8 ? ~uint64_t(0) : (uint64_t(1) << (8 * gguf_type_size(t))) - 1; }
int64_t int_max(GgufType t) { return int64_t(uint_max(t) >> 1); }

// Element k of a packed numeric array, as a scalar of the element type.
GgufValue decode_element(GgufType t, const uint8_t* p) {
  switch (t) {
    case GgufType::kUint8: return GgufValue::of_uint(t, p[0]);
    case GgufType::kBool: return GgufValue::of_bool(p[0] != 0);
    case GgufType::kInt8: { int8_t v; std::memcpy(&v, p, 1); return GgufValue::of_int(t, v); }
    case GgufType::kUint16: { uint16_t v; std::memcpy(&v, p, 2); return GgufValue::of_uint(t, v); }
    case GgufType::kInt16: { int16_t v; std::memcpy(&v, p, 2); return GgufValue::of_int(t, v); }
    case GgufType::kUint32: { uint32_t v; std::memcpy(&v, p, 4); return GgufValue::of_uint(t, v); }
    case GgufType::kInt32: { int32_t v; std::memcpy(&v, p, 4); return GgufValue::of_int(t, v); }
    case GgufType::kUint64: { uint64_t v; std::memcpy(&v, p, 8); return GgufValue::of_uint(t, v); }
    case GgufType::kInt64: { int64_t v; std::memcpy(&v, p, 8); return GgufValue::of_int(t, v); }
    case GgufType::kFloat32: { float v; std::memcpy(&v, p, 4); return GgufValue::of_float(t, v); }
    case GgufType::kFloat64: { double v; std::memcpy(&v, p, 8); return GgufValue::of_float(t, v); }
    default: break;
  }
  fail("GGUF {} is not a fixed-size element type", gguf_type_name(t));
}

// Appends scalar v (of v.type) to raw in its on-disk encoding.
void encode_element(const GgufValue& v, std::vector<uint8_t>& raw) {
  uint8_t b[8];
  const uint32_t n = gguf_type_size(v.type);
  switch (v.type) {
    case GgufType::kUint8: case GgufType::kBool: case GgufType::kUint16: case GgufType::kUint32:
    case GgufType::kUint64: std::memcpy(b, &v.u, n); break;  // little-endian host: low bytes first
    case GgufType::kInt8: case GgufType::kInt16: case GgufType::kInt32: case GgufType::kInt64:
      std::memcpy(b, &v.i, n); break;
    case GgufType::kFloat32: { const float x = float(v.f); std::memcpy(b, &x, 4); break; }
    case GgufType::kFloat64: std::memcpy(b, &v.f, 8); break;
    default: fail("GGUF {} is not a fixed-size element type", gguf_type_name(v.type));
  }
  raw.insert(raw.end(), b, b + n);
}

GgufType checked_type(const nlohmann::json& j, const char* field) {
  if (!j.is_string()) fail("typed GGUF value: '{}' must be a type name string", field);
  const auto t = gguf_type_from_name(j.get<std::string>());
  if (!t) fail("typed GGUF value: unknown type '{}'", j.get<std::string>());
  return *t;
}

GgufValue scalar_from_json(GgufType t, const nlohmann::json& v) {
  switch (t) {
    case GgufType::kBool:
      if (!v.is_boolean()) fail("typed GGUF value: BOOL needs true/false, got {}", v.dump());
      return GgufValue::of_bool(v.get<bool>());
    case GgufType::kString:
      if (!v.is_string()) fail("typed GGUF value: STRING needs a string, got {}", v.dump());
      return GgufValue::of_string(v.get<std::string>());
    case GgufType::kFloat32: case GgufType::kFloat64:
      if (!v.is_number()) fail("typed GGUF value: {} needs a number, got {}", gguf_type_name(t), v.dump());
      return GgufValue::of_float(t, v.get<double>());
    case GgufType::kArray: fail("typed GGUF value: nested arrays are not supported");
    default: break;
  }
  if (v.is_number_unsigned()) {
    const uint64_t x = v.get<uint64_t>();
    if (gguf_type_is_signed(t)) {
      if (x > uint64_t(int_max(t))) fail("typed GGUF value: {} does not fit {}", x, gguf_type_name(t));
      return GgufValue::of_int(t, int64_t(x));
    }
    return GgufValue::of_uint(t, x);
  }
  if (v.is_number_integer()) {
    const int64_t x = v.get<int64_t>();
    if (!gguf_type_is_signed(t)) fail("typed GGUF value: {} does not fit {}", x, gguf_type_name(t));
    return GgufValue::of_int(t, x);
  }
  fail("typed GGUF value: {} needs an integer, got {}", gguf_type_name(t), v.dump());
}

}  // namespace

std::string_view gguf_type_name(GgufType t) {
  const auto i = uint32_t(t);
  return i < kGgufTypeCount ? kNames[i] : std::string_view("?");
}

std::optional<GgufType> gguf_type_from_name(std::string_view name) {
  for (uint32_t i = 0; i < kGgufTypeCount; ++i) {
    if (kNames[i] == name) return GgufType(i);
  }
  return std::nullopt;
}

uint32_t gguf_type_size(GgufType t) {
  const auto i = uint32_t(t);
  return i < kGgufTypeCount ? kSizes[i] : 0;
}

bool gguf_type_is_integer(GgufType t) {
  switch (t) {
    case GgufType::kUint8: case GgufType::kInt8: case GgufType::kUint16: case GgufType::kInt16:
    case GgufType::kUint32: case GgufType::kInt32: case GgufType::kUint64: case GgufType::kInt64:
      return true;
    default: return false;
  }
}

bool gguf_type_is_signed(GgufType t) {
  return t == GgufType::kInt8 || t == GgufType::kInt16 || t == GgufType::kInt32 || t == GgufType::kInt64;
}

GgufValue GgufValue::of_uint(GgufType t, uint64_t v) {
  if ((!gguf_type_is_integer(t) || gguf_type_is_signed(t)) && t != GgufType::kBool) {
    fail("GGUF {} is not an unsigned integer type", gguf_type_name(t));
  }
  if (v > (t == GgufType::kBool ? 1 : uint_max(t))) fail("{} does not fit GGUF {}", v, gguf_type_name(t));
  GgufValue r;
  r.type = t;
  r.u = v;
  return r;
}

GgufValue GgufValue::of_int(GgufType t, int64_t v) {
  if (!gguf_type_is_signed(t)) fail("GGUF {} is not a signed integer type", gguf_type_name(t));
  const int64_t hi = int_max(t);
  if (v > hi || v < -hi - 1) fail("{} does not fit GGUF {}", v, gguf_type_name(t));
  GgufValue r;
  r.type = t;
  r.i = v;
  return r;
}

GgufValue GgufValue::of_float(GgufType t, double v) {
  if (t != GgufType::kFloat32 && t != GgufType::kFloat64) fail("GGUF {} is not a float type", gguf_type_name(t));
  GgufValue r;
  r.type = t;
  r.f = t == GgufType::kFloat32 ? double(float(v)) : v;
  return r;
}

GgufValue GgufValue::of_bool(bool v) {
  GgufValue r;
  r.type = GgufType::kBool;
  r.u = v ? 1 : 0;
  return r;
}

GgufValue GgufValue::of_string(std::string v) {
  GgufValue r;
  r.type = GgufType::kString;
  r.str = std::move(v);
  return r;
}

GgufValue GgufValue::of_array(GgufType elem, std::vector<uint8_t> raw) {
  const uint32_t size = gguf_type_size(elem);
  if (size == 0) fail("GGUF array of {} must be built with of_strings (strings) or is not supported (arrays)",
                      gguf_type_name(elem));
  if (raw.size() % size != 0) fail("GGUF array of {}: {} bytes is not a whole number of elements", gguf_type_name(elem),
                                   raw.size());
  GgufValue r;
  r.type = GgufType::kArray;
  r.elem_type = elem;
  r.raw = std::move(raw);
  return r;
}

GgufValue GgufValue::of_strings(std::vector<std::string> v) {
  GgufValue r;
  r.type = GgufType::kArray;
  r.elem_type = GgufType::kString;
  r.strings = std::move(v);
  return r;
}

uint64_t GgufValue::array_size() const {
  if (type != GgufType::kArray) return 0;
  return elem_type == GgufType::kString ? strings.size() : raw.size() / gguf_type_size(elem_type);
}

GgufValue GgufValue::element(uint64_t k) const {
  if (type != GgufType::kArray) fail("GGUF {} value is not an array", gguf_type_name(type));
  if (k >= array_size()) fail("GGUF array index {} out of range (size {})", k, array_size());
  if (elem_type == GgufType::kString) return of_string(strings[k]);
  return decode_element(elem_type, raw.data() + k * gguf_type_size(elem_type));
}

std::optional<int64_t> GgufValue::as_int() const {
  if (gguf_type_is_signed(type)) return i;
  if (gguf_type_is_integer(type) && u <= uint64_t(std::numeric_limits<int64_t>::max())) return int64_t(u);
  return std::nullopt;
}

std::optional<double> GgufValue::as_float() const {
  if (type == GgufType::kFloat32 || type == GgufType::kFloat64) return f;
  return std::nullopt;
}

std::string GgufValue::type_string() const {
  if (type == GgufType::kArray) return fmt::format("ARRAY[{}]", gguf_type_name(elem_type));
  return std::string(gguf_type_name(type));
}

bool GgufValue::operator==(const GgufValue& o) const {
  if (type != o.type) return false;
  switch (type) {
    case GgufType::kArray: return elem_type == o.elem_type && raw == o.raw && strings == o.strings;
    case GgufType::kString: return str == o.str;
    case GgufType::kFloat32: case GgufType::kFloat64:
      // Bit equality: a NaN read back equals itself, -0 differs from +0.
      return std::memcmp(&f, &o.f, sizeof f) == 0;
    default: return gguf_type_is_signed(type) ? i == o.i : u == o.u;
  }
}

nlohmann::json to_json(const GgufValue& v) {
  switch (v.type) {
    case GgufType::kBool: return v.u != 0;
    case GgufType::kString: return v.str;
    case GgufType::kFloat32: case GgufType::kFloat64: return v.f;
    case GgufType::kArray: {
      nlohmann::json a = nlohmann::json::array();
      if (v.elem_type == GgufType::kString) {
        for (const auto& s : v.strings) a.push_back(s);
      } else {
        const uint64_t n = v.array_size();
        for (uint64_t k = 0; k < n; ++k) a.push_back(to_json(v.element(k)));
      }
      return a;
    }
    default: break;
  }
  if (gguf_type_is_signed(v.type)) return v.i;
  return v.u;
}

nlohmann::json to_typed_json(const GgufValue& v) {
  nlohmann::json j = {{"type", gguf_type_name(v.type)}, {"value", to_json(v)}};
  if (v.type == GgufType::kArray) j["elem_type"] = gguf_type_name(v.elem_type);
  return j;
}

GgufValue from_typed_json(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("type") || !j.contains("value")) {
    fail("typed GGUF value must be an object with 'type' and 'value', got {}", j.dump());
  }
  const GgufType t = checked_type(j["type"], "type");
  const auto& v = j["value"];
  if (t != GgufType::kArray) return scalar_from_json(t, v);
  if (!j.contains("elem_type")) fail("typed GGUF value: ARRAY needs 'elem_type'");
  const GgufType e = checked_type(j["elem_type"], "elem_type");
  if (!v.is_array()) fail("typed GGUF value: ARRAY needs a list, got {}", v.dump());
  if (e == GgufType::kArray) fail("typed GGUF value: nested arrays are not supported");
  if (e == GgufType::kString) {
    std::vector<std::string> s;
    for (const auto& x : v) s.push_back(scalar_from_json(e, x).str);
    return GgufValue::of_strings(std::move(s));
  }
  std::vector<uint8_t> raw;
  for (const auto& x : v) encode_element(scalar_from_json(e, x), raw);
  return GgufValue::of_array(e, std::move(raw));
}

}  // namespace imp
