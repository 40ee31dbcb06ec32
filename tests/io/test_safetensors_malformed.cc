// Malformed safetensors files and HF folders, generated here: every one must raise an
// imp::Error whose message names the file and the problem, never crash or read out of
// bounds (the fuzz targets in tests/fuzz/ cover the space between these cases).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "io/model_file.h"
#include "io/safetensors_reader.h"

namespace imp {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> file_bytes(const std::string& header, size_t data_bytes, uint64_t header_len_override = 0,
                                bool override_len = false) {
  std::vector<uint8_t> out(8);
  const uint64_t n = override_len ? header_len_override : header.size();
  for (int i = 0; i < 8; ++i) out[size_t(i)] = uint8_t(n >> (8 * i));
  out.insert(out.end(), header.begin(), header.end());
  for (size_t i = 0; i < data_bytes; ++i) out.push_back(uint8_t(i * 37 + 11));
  return out;
}

// Expects parse_safetensors to throw an imp::Error mentioning the display name and `needle`.
void expect_error(const std::vector<uint8_t>& bytes, const std::string& needle) {
  const std::string name = "corpus/bad.safetensors";
  try {
    parse_safetensors(bytes, name);
    FAIL() << "no error; expected one mentioning '" << needle << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(name), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  }
}

const std::string kGood =
    R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
    R"("b":{"dtype":"BF16","shape":[5],"data_offsets":[24,34]}})";

TEST(SafetensorsMalformed, GoodFileParses) {
  const auto f = parse_safetensors(file_bytes(kGood, 34), "good");
  ASSERT_EQ(f->tensors.size(), 2u);
  EXPECT_EQ(f->tensors[0].name, "a");
  EXPECT_EQ(f->tensors[1].data.size(), 10u);
  EXPECT_EQ(f->metadata.at("format"), "pt");
}

TEST(SafetensorsMalformed, EveryDtypeSizes) {
  // Sub-byte types must fill whole bytes; F4 [4] is 2 bytes, F6 [4] is 3 bytes.
  for (const auto& [dtype, bytes] : std::vector<std::pair<std::string, int>>{
           {"BOOL", 4}, {"U8", 4}, {"I8", 4}, {"F8_E4M3", 4}, {"F8_E5M2", 4}, {"F8_E8M0", 4}, {"I16", 8},
           {"U16", 8}, {"F16", 8}, {"BF16", 8}, {"I32", 16}, {"U32", 16}, {"F32", 16}, {"I64", 32}, {"U64", 32},
           {"F64", 32}, {"C64", 32}, {"F4", 2}, {"F6_E2M3", 3}}) {
    const std::string h = R"({"t":{"dtype":")" + dtype + R"(","shape":[4],"data_offsets":[0,)" + std::to_string(bytes) + "]}}";
    const auto f = parse_safetensors(file_bytes(h, size_t(bytes)), dtype);
    EXPECT_EQ(st_dtype_name(f->tensors[0].dtype), dtype);
  }
  expect_error(file_bytes(R"({"t":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}})", 2), "do not fill whole bytes");
}

TEST(SafetensorsMalformed, ZeroSizedAndScalar) {
  const std::string h = R"({"e":{"dtype":"F32","shape":[0,7],"data_offsets":[0,0]},"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})";
  const auto f = parse_safetensors(file_bytes(h, 4), "z");
  EXPECT_EQ(f->tensors.size(), 2u);
}

TEST(SafetensorsMalformed, TruncatedHeaderLength) {
  expect_error({1, 2, 3}, "the header length alone needs 8");
  expect_error({}, "the header length alone needs 8");
}

TEST(SafetensorsMalformed, HeaderLengthPastEnd) {
  auto b = file_bytes(kGood, 34);
  expect_error(file_bytes(kGood, 34, b.size(), true), "runs past the end of the file");
}

TEST(SafetensorsMalformed, HugeHeaderLength) {
  expect_error(file_bytes(kGood, 34, ~uint64_t(0), true), "exceeds the limit");
  expect_error(file_bytes(kGood, 34, 100'000'001, true), "exceeds the limit");
}

TEST(SafetensorsMalformed, TruncatedData) {
  expect_error(file_bytes(kGood, 30), "past the data buffer");
  auto b = file_bytes(kGood, 34);
  b.resize(b.size() - 1);
  expect_error(b, "past the data buffer");
}

TEST(SafetensorsMalformed, TruncatedHeader) {
  const auto full = file_bytes(kGood, 34);
  std::vector<uint8_t> cut(full.begin(), full.begin() + 8 + long(kGood.size() / 2));
  expect_error(cut, "runs past the end");
  // Header length shortened so the JSON itself is cut.
  expect_error(file_bytes(kGood.substr(0, kGood.size() - 3), 0), "invalid JSON");
}

TEST(SafetensorsMalformed, BadJson) {
  expect_error(file_bytes(R"({"a":{"dtype":"F32",}})", 0), "invalid JSON");
  expect_error(file_bytes(R"(["a"])", 0), "does not start with '{'");
  expect_error(file_bytes(R"({"a":1})", 0), "header entry is not a JSON object");
  expect_error(file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}} trailing)", 4), "invalid JSON");
  expect_error(file_bytes(R"({"__metadata__":{"k":1}})", 0), "__metadata__ value of 'k' is not a string");
}

TEST(SafetensorsMalformed, BadUtf8) {
  std::string h = R"({"a\xff":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  h[3] = char(0xC3);  // a lone lead byte followed by '\'
  expect_error(file_bytes(h, 4), "invalid JSON");
  std::string h2 = "{\"x\xed\xa0\x80\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";  // UTF-16 surrogate
  expect_error(file_bytes(h2, 4), "invalid JSON");
}

TEST(SafetensorsMalformed, DuplicateNames) {
  expect_error(file_bytes(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", 2),
               "duplicate JSON key 'a'");
}

TEST(SafetensorsMalformed, OffsetsOverlapGapPastEnd) {
  expect_error(file_bytes(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})", 6),
               "overlaps tensor 'a'");
  expect_error(file_bytes(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[5,9]}})", 9),
               "gap in the data buffer");
  expect_error(file_bytes(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[1,5]}})", 5), "gap in the data buffer");
  expect_error(file_bytes(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", 7), "trailing bytes");
  expect_error(file_bytes(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", 3), "past the data buffer");
  expect_error(file_bytes(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})", 4), "begin 4 is after end 0");
  expect_error(file_bytes(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[-1,3]}})", 4), "not non-negative integers");
  expect_error(file_bytes(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0]}})", 4), "must be an array [begin, end]");
}

TEST(SafetensorsMalformed, SizeMismatchAndOverflow) {
  expect_error(file_bytes(R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", 12),
               "data_offsets span 12 bytes but F32 [2,2] needs 16");
  expect_error(file_bytes(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", 0), "overflows");
  expect_error(file_bytes(R"({"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})", 0), "overflows");
  expect_error(file_bytes(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", 0), "not a non-negative integer");
  expect_error(file_bytes(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,0]}})", 0), "not a non-negative integer");
  expect_error(file_bytes(R"({"a":{"dtype":"F32","shape":"[1]","data_offsets":[0,4]}})", 4), "non-array \"shape\"");
}

TEST(SafetensorsMalformed, UnknownDtype) {
  expect_error(file_bytes(R"({"a":{"dtype":"F12","shape":[1],"data_offsets":[0,1]}})", 1), "unknown dtype 'F12'");
  expect_error(file_bytes(R"({"a":{"shape":[1],"data_offsets":[0,1]}})", 1), "missing or non-string \"dtype\"");
}

TEST(SafetensorsMalformed, RandomCorruptionNeverCrashes) {
  // Flip bytes of a good file at random: each result parses or raises imp::Error.
  std::mt19937 gen(std::random_device{}());
  const auto good = file_bytes(kGood, 34);
  int errors = 0;
  for (int round = 0; round < 2000; ++round) {
    auto b = good;
    const int flips = 1 + int(gen() % 4);
    for (int i = 0; i < flips; ++i) b[gen() % b.size()] = uint8_t(gen());
    if (gen() % 4 == 0) b.resize(gen() % b.size());
    try {
      parse_safetensors(b, "fuzzed");
    } catch (const Error& e) {
      ++errors;
      EXPECT_NE(std::string(e.what()).find("fuzzed"), std::string::npos) << e.what();
    }
  }
  EXPECT_GT(errors, 0);
}

// --- folders -------------------------------------------------------------------------------

class HfFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("imp_hf_" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
    write("config.json",
          R"({"model_type":"llama","hidden_size":64,"intermediate_size":128,"num_hidden_layers":1,)"
          R"("num_attention_heads":4,"vocab_size":32})");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }
  void write_bytes(const std::string& name, const std::vector<uint8_t>& b) {
    std::ofstream(dir_ / name, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), long(b.size()));
  }
  void expect_error(const std::string& needle) {
    try {
      open_hf_model(dir_.string());
      FAIL() << "no error; expected one mentioning '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
  static std::string u8(const std::string& name, int n, int at) {
    return "\"" + name + R"(":{"dtype":"U8","shape":[)" + std::to_string(n) + R"(],"data_offsets":[)" +
           std::to_string(at) + "," + std::to_string(at + n) + "]}";
  }
  fs::path dir_;
};

TEST_F(HfFolder, ShardMissingFromIndex) {
  write_bytes("model-00001-of-00002.safetensors", file_bytes("{" + u8("a", 4, 0) + "}", 4));
  write("model.safetensors.index.json",
        R"({"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}})");
  expect_error("shard 'model-00002-of-00002.safetensors' (listed for tensor 'b') does not exist");
}

TEST_F(HfFolder, TensorMissingFromIndex) {
  write_bytes("model-00001-of-00001.safetensors", file_bytes("{" + u8("a", 4, 0) + "," + u8("c", 2, 4) + "}", 6));
  write("model.safetensors.index.json", R"({"weight_map":{"a":"model-00001-of-00001.safetensors"}})");
  expect_error("tensor 'c' in shard 'model-00001-of-00001.safetensors' is missing from the index");
}

TEST_F(HfFolder, TensorInTwoShards) {
  write_bytes("s1.safetensors", file_bytes("{" + u8("a", 4, 0) + "}", 4));
  write_bytes("s2.safetensors", file_bytes("{" + u8("a", 4, 0) + "," + u8("b", 1, 4) + "}", 5));
  write("model.safetensors.index.json", R"({"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}})");
  expect_error("tensor 'a' occurs in two shards");
}

TEST_F(HfFolder, ShardPathEscapingTheFolder) {
  write("model.safetensors.index.json", R"({"weight_map":{"a":"../x.safetensors"}})");
  expect_error("not a plain file name");
}

TEST_F(HfFolder, BadShardNamesItsFile) {
  write_bytes("model.safetensors", file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4));
  expect_error("model.safetensors: tensor 'a': data_offsets span 4 bytes but F32 [2] needs 8");
}

TEST_F(HfFolder, WrongDtypeForSchemeScale) {
  // ModelOpt NVFP4 block scale must be F8_E4M3; here it is F32.
  write("hf_quant_config.json", R"({"producer":{"name":"modelopt"},"quantization":{"quant_algo":"NVFP4","group_size":16}})");
  const std::string h = "{" + u8("l.weight", 8, 0) + R"(,"l.weight_scale":{"dtype":"F32","shape":[1,1],"data_offsets":[8,12]},)" +
                        R"("l.weight_scale_2":{"dtype":"F32","shape":[],"data_offsets":[12,16]}})";
  write_bytes("model.safetensors", file_bytes(h, 16));
  expect_error("tensor 'l.weight_scale': NVFP4 block scale has dtype F32, modelopt nvfp4 needs F8_E4M3");
}

TEST_F(HfFolder, WrongShapeForSchemeScale) {
  write("hf_quant_config.json", R"({"producer":{"name":"modelopt"},"quantization":{"quant_algo":"NVFP4"}})");
  const std::string h = R"({"l.weight":{"dtype":"U8","shape":[2,8],"data_offsets":[0,16]},)"
                        R"("l.weight_scale":{"dtype":"F8_E4M3","shape":[2,2],"data_offsets":[16,20]},)"
                        R"("l.weight_scale_2":{"dtype":"F32","shape":[],"data_offsets":[20,24]}})";
  write_bytes("model.safetensors", file_bytes(h, 24));
  expect_error("NVFP4 block scale has shape [2, 2], expected [2, 1]");
}

TEST_F(HfFolder, PackedWeightWithoutScales) {
  write(
      "config.json",
      R"({"model_type":"llama","hidden_size":64,"intermediate_size":128,"num_hidden_layers":1,"num_attention_heads":4,)"
      R"("vocab_size":32,"quantization_config":{"quant_method":"gptq","bits":4,"group_size":32}})");
  write_bytes("model.safetensors", file_bytes("{" + u8("l.weight", 8, 0) + "}", 8));
  expect_error("U8 weight without the scale tensors of gptq v1 4-bit g32");
}

TEST_F(HfFolder, MissingConfig) {
  fs::remove(dir_ / "config.json");
  write_bytes("model.safetensors", file_bytes("{" + u8("a", 4, 0) + "}", 4));
  expect_error("no config.json");
}

}  // namespace
}  // namespace imp
