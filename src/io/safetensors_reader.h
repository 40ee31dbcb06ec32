// SafeTensors reader: one file parsed from an in-memory span, and sharded folders through
// model.safetensors.index.json. Spec: ../shared/specs/formats.md §5 (huggingface/safetensors
// README and safetensors/src/tensor.rs).
//
//   bytes 0..7      N = u64 little-endian header length, N ≤ 100 000 000
//   bytes 8..8+N    UTF-8 JSON object: {"__metadata__": {str: str} (optional),
//                   "<name>": {"dtype": "<D>", "shape": [d0, …], "data_offsets": [b, e]}, …}
//   bytes 8+N..     data buffer; offsets are relative to its start
//
// Everything the Rust reader enforces is enforced here, before a byte of data is read:
// the header fits in the file, is strict JSON with valid UTF-8 and no duplicate keys, every
// entry has a known dtype, a shape of non-negative integers whose byte size (Π shape ·
// bits / 8, overflow-checked, whole bytes) equals end − begin, and the entries sorted by
// offset tile the data buffer exactly: no gap, no overlap, last end = buffer size.
// Every error names the file (display name) and, where there is one, the tensor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/mapped_file.h"

namespace imp {

enum class StDtype : uint8_t {
  BOOL, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ,
  I16, U16, F16, BF16, I32, U32, F32, I64, U64, F64, C64,
  F4, F6_E2M3, F6_E3M2,  // sub-byte: shape counts elements, the tensor must fill whole bytes
};

std::optional<StDtype> st_dtype_from_name(std::string_view name);
std::string_view st_dtype_name(StDtype d);
int st_dtype_bits(StDtype d);

struct StTensor {
  std::string name;
  StDtype dtype = StDtype::U8;
  std::vector<int64_t> shape;       // [] is a scalar
  uint64_t begin = 0, end = 0;      // offsets into the data buffer
  std::span<const uint8_t> data;    // the tensor's bytes inside the parsed span
  const std::string* file = nullptr;  // display name of the file holding it

  int64_t elements() const;
};

struct StFile {
  std::string name;                              // display name (path) used in errors
  uint64_t header_bytes = 0;                     // N
  std::map<std::string, std::string> metadata;   // "__metadata__"
  std::vector<StTensor> tensors;                 // sorted by data offset

  const StTensor* find(std::string_view tensor) const;
};

// Parses and validates a whole safetensors file held in `bytes`. The result's spans point
// into `bytes`; StTensor::file points at the returned StFile::name, so keep the StFile at
// a stable address (the folder reader holds them by unique_ptr).
std::unique_ptr<StFile> parse_safetensors(std::span<const uint8_t> bytes, const std::string& display_name);

// Strict JSON for every file imp reads from a Hugging Face folder: UTF-8 checked, duplicate
// object keys rejected (nlohmann alone keeps the last one silently).
nlohmann::json parse_json_strict(std::string_view text, const std::string& display_name);

// model.safetensors.index.json → tensor name → shard file name. Shard names must be plain
// file names inside the folder (no '/', no "..").
std::map<std::string, std::string> parse_safetensors_index(std::string_view text, const std::string& display_name);

// The tensors of a folder or a single file, all shards mapped and cross-checked: with an
// index, every shard it names must exist, every tensor of a shard must be listed for that
// shard, every listed tensor must be found there, and no name may occur in two shards.
struct StCollection {
  std::vector<std::unique_ptr<MappedFile>> mappings;
  std::vector<std::unique_ptr<StFile>> files;
  std::map<std::string, const StTensor*> by_name;
  std::string container;  // "safetensors", "safetensors (3 shards)"
};

// `path` is a .safetensors file or a folder holding model.safetensors.index.json, or one
// model.safetensors, or exactly one *.safetensors file.
StCollection open_safetensors(const std::string& path);

}  // namespace imp
