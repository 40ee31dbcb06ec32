// SafetensorsWriter: what it writes parses back through the strict reader (8-byte aligned
// data start, tiled buffer, metadata), and misuse is an imp::Error.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "common/error.h"
#include "common/random_data.h"
#include "io/mapped_file.h"
#include "io/safetensors_writer.h"

namespace imp {
namespace {

namespace fs = std::filesystem;

TEST(SafetensorsWriter, RoundTripsThroughTheReader) {
  const fs::path p = fs::temp_directory_path() / ("imp-st-writer-" + std::to_string(::getpid()) + ".safetensors");
  // Awkward sizes: 3 × 17 floats, one byte, 37 BF16 values, a scalar.
  const auto a = test::randn(3 * 17);
  std::vector<uint8_t> ab(a.size() * 4);
  std::memcpy(ab.data(), a.data(), ab.size());
  std::vector<uint8_t> one = {42}, bf(74), scalar(4);
  for (auto& b : bf) b = uint8_t(test::rng()());
  const float s = 0.25f;
  std::memcpy(scalar.data(), &s, 4);
  SafetensorsWriter::write_file(p.string(),
                                {{"a.weight", StDtype::F32, {3, 17}, ab},
                                 {"b", StDtype::U8, {1}, one},
                                 {"c", StDtype::BF16, {37}, bf},
                                 {"d.weight_scale_2", StDtype::F32, {}, scalar}},
                                {{"format", "pt"}});
  const MappedFile f(p.string());
  const auto st = parse_safetensors(f.bytes(), p.string());
  EXPECT_EQ((8 + st->header_bytes) % 8, 0u);
  EXPECT_EQ(st->metadata.at("format"), "pt");
  ASSERT_EQ(st->tensors.size(), 4u);
  const StTensor* t = st->find("a.weight");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{3, 17}));
  EXPECT_TRUE(std::equal(t->data.begin(), t->data.end(), ab.begin()));
  EXPECT_TRUE(std::equal(st->find("c")->data.begin(), st->find("c")->data.end(), bf.begin()));
  EXPECT_TRUE(st->find("d.weight_scale_2")->shape.empty());
  EXPECT_EQ(st->find("b")->data[0], 42);
  fs::remove(p);
}

TEST(SafetensorsWriter, MisuseIsAnError) {
  const fs::path p = fs::temp_directory_path() / ("imp-st-writer-bad-" + std::to_string(::getpid()) + ".safetensors");
  SafetensorsWriter w;
  w.add("x", StDtype::F32, {2});
  w.add("y", StDtype::U8, {3});
  EXPECT_THROW(w.add("x", StDtype::F32, {1}), Error);   // duplicate
  EXPECT_THROW(w.add("z", StDtype::F32, {-1}), Error);  // negative dim
  EXPECT_THROW(w.add("w", StDtype::F4, {3}), Error);    // 1.5 bytes
  w.begin(p.string());
  const std::vector<uint8_t> eight(8), three(3);
  EXPECT_THROW(w.write("y", three), Error);  // out of order
  EXPECT_THROW(w.write("x", three), Error);  // wrong size
  w.write("x", eight);
  EXPECT_THROW(w.finish(), Error);  // y missing
  w.write("y", three);
  w.finish();
  const MappedFile f(p.string());
  EXPECT_EQ(parse_safetensors(f.bytes(), p.string())->tensors.size(), 2u);
  fs::remove(p);
}

}  // namespace
}  // namespace imp
