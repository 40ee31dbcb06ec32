// GGUF reader — parses a GGUF v2/v3 file held in memory (a MappedFile, or any byte span:
// the fuzzer feeds it buffers) into its metadata and tensor table, without touching the
// tensor data. Layout: ../shared/specs/formats.md §4.1–4.3.
//
//   magic "GGUF" | version u32 | tensor_count u64 | kv_count u64
//   kv[kv_count]            key (u64 len + bytes), value_type u32, value (gguf_value.h)
//   tensor_info[count]      name, n_dims u32 (≤ 4), ne[n_dims] u64 (ne[0] innermost),
//                           ggml type u32, offset u64 (relative to the data section)
//   zero padding to general.alignment (default 32) | data
//
// v2 and v3 have the same layout (v3 only allowed big-endian files, which are rejected
// here: every integer would be byte-swapped). Everything is validated before it is used:
// every read is bounds-checked; counts are checked against the bytes left before any
// allocation; keys and tensor names are non-empty and unique; general.alignment is a power
// of two; each tensor's size (type × shape, ne[0] a multiple of the block) is computed with
// overflow checks and its bytes lie inside the file, aligned, overlapping no other tensor.
// Errors are imp::Error "<name>: <what>" on one line.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "formats/traits.h"
#include "io/gguf_value.h"

namespace imp {

inline constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as u32 LE
inline constexpr uint32_t kGgufDefaultAlignment = 32;
inline constexpr uint32_t kGgufMaxDims = 4;

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> ne;  // ggml order: ne[0] innermost; n_dims entries (0..4)
  uint32_t ggml_type = 0;
  FormatId format = FormatId::F32;
  uint64_t offset = 0;  // relative to the data section
  uint64_t size = 0;    // bytes

  std::vector<int64_t> shape() const;  // PyTorch order: reversed ne
  uint64_t elements() const;
};

// Where each section starts (absolute file offsets), for diagnostics and tests.
struct GgufLayout {
  std::vector<uint64_t> kv_offsets;           // start of each KV pair (its key length)
  std::vector<uint64_t> tensor_info_offsets;  // start of each tensor info (its name length)
  uint64_t tensor_infos_end = 0;              // first byte after the last tensor info
  uint64_t data_offset = 0;                   // start of the data section
};

struct GgufFile {
  std::string name;  // the path (or display name) used in messages
  uint32_t version = 3;
  uint32_t alignment = kGgufDefaultAlignment;
  std::vector<std::pair<std::string, GgufValue>> kv;  // in file order
  std::vector<GgufTensorInfo> tensors;                 // in file order
  GgufLayout layout;
  std::span<const uint8_t> bytes;  // the whole file (not owned)

  const GgufValue* find(std::string_view key) const;
  const GgufTensorInfo* find_tensor(std::string_view tensor_name) const;
  std::span<const uint8_t> tensor_data(const GgufTensorInfo& t) const;

  std::unordered_map<std::string, size_t> kv_index;      // key -> index into kv
  std::unordered_map<std::string, size_t> tensor_index;  // name -> index into tensors
};

GgufFile parse_gguf(std::span<const uint8_t> bytes, const std::string& name);

// Bytes of a tensor of `format` with dims ne (ggml order), overflow-checked; throws
// imp::Error (without a file name) when ne[0] is not a multiple of the block or the size
// does not fit in 63 bits.
uint64_t gguf_tensor_bytes(FormatId format, std::span<const uint64_t> ne);

// Every KV pair as plain JSON ({key: value}) — ModelFile::metadata.
nlohmann::json gguf_metadata_json(const GgufFile& f);

}  // namespace imp
