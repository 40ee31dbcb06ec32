// Bad input to the checked format API: a clear imp::Error, never a read past the end.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/error.h"
#include "formats/quant_matrix.h"
#include "formats/traits.h"

namespace imp {
namespace {

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(QuantMatrix, BufferNotWholeBlocksIsAnError) {
  const std::vector<uint8_t> bytes(18 * 3 + 5);
  EXPECT_NE(error_of([&] { dequantize_row(FormatId::Q4_0, bytes); }).find("not a whole number of 18-byte blocks"),
            std::string::npos);
}

TEST(QuantMatrix, RowLengthNotMultipleOfBlockIsAnError) {
  EXPECT_NE(error_of([] { row_data_bytes(FormatId::Q4_0, 33); }).find("not a multiple of the block size 32"),
            std::string::npos);
  EXPECT_NE(error_of([] { row_data_bytes(FormatId::Q4_K, 300); }).find("block size 256"), std::string::npos);
  const std::vector<float> x(33);
  EXPECT_FALSE(error_of([&] { quantize(FormatId::Q8_0, x, 1, 33); }).empty());
}

TEST(QuantMatrix, UnknownGgufTypeIsAnError) {
  EXPECT_FALSE(format_from_gguf_type(4).has_value());  // removed Q4_2
  EXPECT_FALSE(format_from_gguf_type(1000).has_value());
  EXPECT_NE(error_of([] { checked_format_from_gguf_type(77); }).find("unknown or unsupported GGUF tensor type id 77"),
            std::string::npos);
  EXPECT_EQ(checked_format_from_gguf_type(12), FormatId::Q4_K);
}

TEST(QuantMatrix, PlaneSizeMismatchIsAnError) {
  std::vector<uint8_t> data(18 * 2);
  QuantMatrix m;
  m.format = FormatId::Q4_0;
  m.rows = 2;
  m.cols = 64;  // needs 2 rows × 36 bytes = 72
  m.data = data;
  EXPECT_NE(error_of([&] { dequantize(m); }).find("q4_0 data plane holds 36 bytes, the shape needs 72"),
            std::string::npos);
}

TEST(QuantMatrix, HugeShapeOverflowIsAnError) {
  QuantMatrix m;
  m.format = FormatId::F32;
  m.rows = int64_t(1) << 62;
  m.cols = int64_t(1) << 40;
  EXPECT_NE(error_of([&] { validate(m); }).find("overflows"), std::string::npos);
}

TEST(Traits, TableIsConsistent) {
  for (int i = 0; i < kFormatCount; ++i) {
    const auto& t = format_traits(FormatId(i));
    EXPECT_EQ(int(t.id), i);
    EXPECT_GT(t.block_elems, 0) << t.name;
    EXPECT_GT(t.block_bytes, 0) << t.name;
    EXPECT_EQ(format_from_name(t.name), t.id) << t.name;
    if (t.gguf_type >= 0) EXPECT_EQ(format_from_gguf_type(uint32_t(t.gguf_type)), t.id) << t.name;
    if (t.scale_layout == ScaleLayout::kInBlock || t.scale_layout == ScaleLayout::kNone) {
      EXPECT_FLOAT_EQ(t.bits_per_weight, 8.0f * float(t.block_bytes) / float(t.block_elems)) << t.name;
    }
    EXPECT_NE(t.quantize_ref, nullptr) << t.name;
    EXPECT_NE(t.dequantize_ref, nullptr) << t.name;
  }
}

}  // namespace
}  // namespace imp

namespace imp {
namespace {

// Row-parallel quantize / dequantize (load-time conversions) give the serial bytes and
// values, with per-tensor (NVFP4) and per-tile (FP8 block-128) scales computed first; on an
// awkward row count that does not split evenly, and more threads than rows.
TEST(QuantMatrix, ThreadedConversionsMatchSerial) {
  for (FormatId f : {FormatId::NVFP4_CKPT, FormatId::FP8_E4M3_BLOCK128, FormatId::Q4_K, FormatId::Q8_0}) {
    for (int64_t rows : {1, 3, 131}) {
      const int64_t cols = 256;
      std::vector<float> x(size_t(rows * cols));
      for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * float(i)) * (1.0f + float(i % 97));
      const OwnedQuantMatrix a = quantize(f, x, rows, cols);
      const OwnedQuantMatrix b = quantize(f, x, rows, cols, 0, 7);
      EXPECT_EQ(a.data, b.data) << format_name(f) << " rows " << rows;
      EXPECT_EQ(a.scales, b.scales) << format_name(f) << " rows " << rows;
      EXPECT_EQ(a.tensor_scale, b.tensor_scale);
      EXPECT_EQ(dequantize(a.view()), dequantize(a.view(), 5)) << format_name(f) << " rows " << rows;
    }
  }
}

}  // namespace
}  // namespace imp
