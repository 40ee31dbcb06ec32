// Malformed GGUF corpus, generated from a valid file: every case must end in an imp::Error
// whose one-line message starts with the file name and names the problem — never a crash,
// never an out-of-bounds read (run under ASan by scripts/fuzz.sh's build as well).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include "common/error.h"
#include "io/gguf_reader.h"
#include "io/gguf_test_util.h"
#include "io/model_file.h"

namespace imp {
namespace {

constexpr const char* kName = "bad.gguf";

struct Example {
  std::vector<test::ExampleTensor> tensors;
  std::vector<uint8_t> bytes;
  GgufFile file;  // parsed from `bytes` (a copy owned here)

  explicit Example(uint32_t alignment = 32) {
    bytes = test::example_gguf(std::random_device{}(), alignment, &tensors);
    file = parse_gguf(bytes, kName);
  }
  uint64_t kv_at(const std::string& key) const {
    for (size_t k = 0; k < file.kv.size(); ++k) {
      if (file.kv[k].first == key) return file.layout.kv_offsets[k];
    }
    ADD_FAILURE() << "no key " << key;
    return 0;
  }
  // Offset of key's value type field (its value follows 4 bytes later).
  uint64_t value_type_at(const std::string& key) const { return kv_at(key) + 8 + key.size(); }
  uint64_t tensor_at(size_t i) const { return file.layout.tensor_info_offsets[i]; }
  uint64_t n_dims_at(size_t i) const { return tensor_at(i) + 8 + file.tensors[i].name.size(); }
  uint64_t ne_at(size_t i, size_t d) const { return n_dims_at(i) + 4 + 8 * d; }
  uint64_t type_at(size_t i) const { return ne_at(i, file.tensors[i].ne.size()); }
  uint64_t offset_at(size_t i) const { return type_at(i) + 4; }
  size_t tensor_index(FormatId f) const {
    for (size_t k = 0; k < file.tensors.size(); ++k) {
      if (file.tensors[k].format == f) return k;
    }
    ADD_FAILURE() << "no tensor of format " << format_name(f);
    return 0;
  }
};

// Parses b and returns the error message; fails the test if parsing succeeds.
std::string parse_error(const std::vector<uint8_t>& b) {
  try {
    parse_gguf(b, kName);
  } catch (const Error& e) {
    return e.what();
  }
  return "(parsed without error)";
}

void expect_error(const std::vector<uint8_t>& b, std::string_view what) {
  const std::string msg = parse_error(b);
  EXPECT_EQ(msg.rfind(std::string(kName) + ": ", 0), 0u) << msg;
  EXPECT_NE(msg.find(what), std::string::npos) << "expected '" << what << "' in: " << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

bool is_truncation_message(const std::string& msg) {
  for (const char* s : {"truncated", "past the end", "cannot fit", "too short"}) {
    if (msg.find(s) != std::string::npos) return true;
  }
  return false;
}

void expect_truncation_error(const std::vector<uint8_t>& full, uint64_t size) {
  const std::vector<uint8_t> b(full.begin(), full.begin() + int64_t(size));
  const std::string msg = parse_error(b);
  EXPECT_EQ(msg.rfind(std::string(kName) + ": ", 0), 0u) << "cut at " << size << ": " << msg;
  EXPECT_TRUE(is_truncation_message(msg)) << "cut at " << size << ": " << msg;
}

// End of the last tensor's bytes: cutting anywhere before it must fail (after it, only
// padding is lost, which the reader does not need).
uint64_t data_end(const GgufFile& f) {
  uint64_t end = f.layout.data_offset;
  for (const auto& t : f.tensors) end = std::max(end, f.layout.data_offset + t.offset + t.size);
  return end;
}

TEST(GgufMalformed, TruncatedAtEverySectionBoundary) {
  const Example ex;
  std::vector<uint64_t> cuts = {0, 3, 4, 7, 8, 16, 23, 24};
  for (uint64_t at : ex.file.layout.kv_offsets) cuts.insert(cuts.end(), {at, at + 4, at + 8, at + 9});
  for (uint64_t at : ex.file.layout.tensor_info_offsets) cuts.insert(cuts.end(), {at, at + 8, at + 9});
  for (size_t i = 0; i < ex.file.tensors.size(); ++i) {
    cuts.insert(cuts.end(), {ex.n_dims_at(i), ex.ne_at(i, 0), ex.type_at(i), ex.offset_at(i)});
    const uint64_t start = ex.file.layout.data_offset + ex.file.tensors[i].offset;
    cuts.insert(cuts.end(), {start, start + 1, start + ex.file.tensors[i].size - 1});
  }
  cuts.insert(cuts.end(), {ex.file.layout.tensor_infos_end, ex.file.layout.data_offset, data_end(ex.file) - 1});
  for (uint64_t cut : cuts) expect_truncation_error(ex.bytes, cut);
}

TEST(GgufMalformed, TruncatedAtRandomOffsets) {
  const Example ex;
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_int_distribution<uint64_t> pick(0, data_end(ex.file) - 1);
  for (int k = 0; k < 300; ++k) expect_truncation_error(ex.bytes, pick(rng));
}

TEST(GgufMalformed, HeaderFields) {
  const Example ex;
  auto b = ex.bytes;
  b[0] = 'X';
  expect_error(b, "bad magic");
  for (uint32_t v : {0u, 1u, 4u, 0xFFFFu}) {
    b = ex.bytes;
    test::patch<uint32_t>(b, 4, v);
    expect_error(b, fmt::format("GGUF version {} is not supported", v));
  }
  b = ex.bytes;
  test::patch<uint32_t>(b, 4, 0x03000000u);  // version 3 written big-endian
  expect_error(b, "big-endian");
  b = ex.bytes;
  test::patch<uint64_t>(b, 8, uint64_t(1) << 60);
  expect_error(b, "tensor count 1152921504606846976 cannot fit");
  b = ex.bytes;
  test::patch<uint64_t>(b, 16, ~uint64_t(0));
  expect_error(b, "kv count 18446744073709551615 cannot fit");
  expect_error({}, "too short");
}

TEST(GgufMalformed, StringLengthsPastTheEnd) {
  const Example ex;
  auto b = ex.bytes;
  test::patch<uint64_t>(b, ex.file.layout.kv_offsets[1], uint64_t(1) << 40);
  expect_error(b, "key at offset");
  b = ex.bytes;
  test::patch<uint64_t>(b, ex.value_type_at("t.str") + 4, b.size());
  expect_error(b, "past the end of the file");
  b = ex.bytes;
  // The first string of the string array: type, elem type, count, then its length.
  test::patch<uint64_t>(b, ex.value_type_at("t.arr_str") + 16, ~uint64_t(0));
  expect_error(b, "array string at offset");
  b = ex.bytes;
  test::patch<uint64_t>(b, ex.value_type_at("t.arr_str") + 8, uint64_t(1) << 58);
  expect_error(b, "key 't.arr_str': array of 288230376151711744 strings");
  b = ex.bytes;
  test::patch<uint64_t>(b, ex.value_type_at("t.arr_u64") + 8, uint64_t(1) << 61);
  expect_error(b, "key 't.arr_u64': array of 2305843009213693952 UINT64");
  b = ex.bytes;
  test::patch<uint64_t>(b, ex.tensor_at(2), uint64_t(1) << 33);
  expect_error(b, "tensor name at offset");
}

TEST(GgufMalformed, ValueTypes) {
  const Example ex;
  auto b = ex.bytes;
  test::patch<uint32_t>(b, ex.value_type_at("t.u8"), 13);
  expect_error(b, "key 't.u8': unknown value type 13");
  b = ex.bytes;
  test::patch<uint32_t>(b, ex.value_type_at("t.arr_u8") + 4, uint32_t(GgufType::kArray));
  expect_error(b, "key 't.arr_u8': nested arrays are not supported");
  b = ex.bytes;
  b[ex.value_type_at("t.bool") + 4] = 2;
  expect_error(b, "BOOL value 2");
  b = ex.bytes;
  test::patch<uint64_t>(b, ex.kv_at("t.arr_str"), 0);  // key length 0: an empty key
  expect_error(b, "is empty");
}

TEST(GgufMalformed, DuplicateKeysAndTensorNames) {
  const Example ex;
  auto b = ex.bytes;
  b[ex.kv_at("t.i8") + 8 + 2] = 'u';  // "t.i8" -> "t.u8"
  expect_error(b, "duplicate key 't.u8'");
  // Rename the Q8_0 tensor "blk.0.attn_k.weight" to the Q4_0 one's name.
  const size_t k = ex.tensor_index(FormatId::Q8_0);
  b = ex.bytes;
  b[ex.tensor_at(k) + 8 + 11] = 'q';
  expect_error(b, "duplicate tensor name 'blk.0.attn_q.weight'");
}

TEST(GgufMalformed, TensorPlacement) {
  const Example ex;
  const size_t last = ex.file.tensors.size() - 1;
  auto b = ex.bytes;
  test::patch<uint64_t>(b, ex.offset_at(last), uint64_t(1) << 40);
  expect_error(b, "runs past the end of the file");
  b = ex.bytes;
  test::patch<uint64_t>(b, ex.offset_at(last), ~uint64_t(31));  // aligned, and offset + size wraps
  expect_error(b, "runs past the end of the file");
  b = ex.bytes;
  test::patch<uint64_t>(b, ex.offset_at(1), ex.file.tensors[1].offset + 4);
  expect_error(b, "is not a multiple of the alignment 32");
  b = ex.bytes;
  test::patch<uint64_t>(b, ex.offset_at(1), ex.file.tensors[0].offset);
  expect_error(b, "overlap");
  // Grow the last tensor so that its bytes run past the end.
  b = ex.bytes;
  test::patch<uint64_t>(b, ex.ne_at(last, 1), ex.file.tensors[last].ne[1] + 100);
  expect_error(b, "runs past the end of the file");
}

TEST(GgufMalformed, TensorTypesAndShapes) {
  const Example ex;
  const size_t q4 = ex.tensor_index(FormatId::Q4_0);
  for (uint32_t id : {16u, 31u, 43u, 1000u, 0xFFFFFFFFu}) {
    auto b = ex.bytes;
    test::patch<uint32_t>(b, ex.type_at(q4), id);
    expect_error(b, fmt::format("unknown or unsupported GGUF tensor type id {}", id));
  }
  auto b = ex.bytes;
  test::patch<uint32_t>(b, ex.n_dims_at(q4), 5);
  expect_error(b, "has 5 dimensions");
  b = ex.bytes;
  test::patch<uint32_t>(b, ex.n_dims_at(q4), 0xFFFFFFFFu);
  expect_error(b, "has 4294967295 dimensions");
  b = ex.bytes;
  test::patch<uint64_t>(b, ex.ne_at(q4, 0), uint64_t(1) << 32);
  test::patch<uint64_t>(b, ex.ne_at(q4, 1), uint64_t(1) << 32);
  expect_error(b, "overflows");
  b = ex.bytes;
  test::patch<uint64_t>(b, ex.ne_at(q4, 0), ~uint64_t(0));
  expect_error(b, "out of range");
  b = ex.bytes;
  test::patch<uint64_t>(b, ex.ne_at(q4, 0), 33);
  expect_error(b, "not a multiple of the block size 32");
}

TEST(GgufMalformed, Alignment) {
  const Example ex(64);
  for (uint32_t a : {0u, 48u, 3u}) {
    auto b = ex.bytes;
    test::patch<uint32_t>(b, ex.value_type_at("general.alignment") + 4, a);
    expect_error(b, fmt::format("general.alignment {} is not a power of two", a));
  }
  auto b = ex.bytes;
  test::patch<uint32_t>(b, ex.value_type_at("general.alignment"), uint32_t(GgufType::kInt32));
  expect_error(b, "general.alignment must be an unsigned integer");
}

TEST(GgufMalformed, FileErrorsNameThePath) {
  const Example ex;
  auto b = ex.bytes;
  test::patch<uint32_t>(b, ex.type_at(0), 1000);
  const auto path = std::filesystem::temp_directory_path() / fmt::format("imp_bad_{}.gguf", ::getpid());
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
  }
  try {
    open_model_file(path.string());
    ADD_FAILURE() << "opened a file with an unknown tensor type";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path.string() + ": tensor 'token_embd.weight'", 0), 0u) << msg;
    EXPECT_NE(msg.find("type id 1000"), std::string::npos) << msg;
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace imp
