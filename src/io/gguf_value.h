// GgufValue — one GGUF metadata value with its exact on-disk type, so that a file read
// and written again keeps every key's type (a UINT8 stays a UINT8).
//
// Value types (../shared/specs/formats.md §4.2; ids as stored, u32 LE):
//   0 UINT8  1 INT8  2 UINT16  3 INT16  4 UINT32  5 INT32  6 FLOAT32  7 BOOL (one byte, 0|1)
//   8 STRING (u64 byte length + bytes, no NUL)  9 ARRAY (u32 elem type, u64 count, elements)
//   10 UINT64  11 INT64  12 FLOAT64
// Arrays of arrays are allowed by the GGUF spec but rejected by ggml's reader; imp rejects
// them too (no model uses them and nothing could load such a file).
//
// Two JSON views:
//   to_json(v)        plain values: numbers, bools, strings, lists — ModelFile::metadata.
//   to_typed_json(v)  {"type": "UINT8", "value": 5} / {"type": "ARRAY", "elem_type":
//                     "STRING", "value": [...]} — lossless; from_typed_json() inverts it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace imp {

enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};
inline constexpr uint32_t kGgufTypeCount = 13;

std::string_view gguf_type_name(GgufType t);  // "UINT8", …, "ARRAY"
std::optional<GgufType> gguf_type_from_name(std::string_view name);
// Bytes of one element on disk; 0 for STRING and ARRAY (variable length).
uint32_t gguf_type_size(GgufType t);
bool gguf_type_is_integer(GgufType t);  // UINT*/INT*, not BOOL
bool gguf_type_is_signed(GgufType t);

struct GgufValue {
  GgufType type = GgufType::kUint8;
  GgufType elem_type = GgufType::kUint8;  // ARRAY only

  // Scalar payload, by type: u for UINT* and BOOL, i for INT*, f for FLOAT32 (exact in a
  // double) and FLOAT64, str for STRING.
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0.0;
  std::string str;

  // ARRAY payload: numeric/bool elements exactly as stored (little-endian, packed), or the
  // strings of a string array.
  std::vector<uint8_t> raw;
  std::vector<std::string> strings;

  static GgufValue of_uint(GgufType t, uint64_t v);  // range-checked against t
  static GgufValue of_int(GgufType t, int64_t v);
  static GgufValue of_float(GgufType t, double v);  // FLOAT32 values are rounded to float
  static GgufValue of_bool(bool v);
  static GgufValue of_string(std::string v);
  static GgufValue of_array(GgufType elem, std::vector<uint8_t> raw);  // numeric/bool elements
  static GgufValue of_strings(std::vector<std::string> v);

  uint64_t array_size() const;
  GgufValue element(uint64_t k) const;  // array element k as a scalar value (throws past the end)

  bool is_integer() const { return gguf_type_is_integer(type); }
  // The value as a (signed) integer if it is one of the integer types and fits.
  std::optional<int64_t> as_int() const;
  std::optional<double> as_float() const;  // FLOAT32/FLOAT64 only
  std::string type_string() const;         // "UINT32", "ARRAY[STRING]"

  bool operator==(const GgufValue& o) const;
};

nlohmann::json to_json(const GgufValue& v);
nlohmann::json to_typed_json(const GgufValue& v);
// Throws imp::Error naming the problem (unknown type, value out of range, nested array).
GgufValue from_typed_json(const nlohmann::json& j);

}  // namespace imp
