// NF4 double quantization: decoding the 8-bit absmax codes back to F32 absmax
// (absmax[b] = nested_quant_map[q[b]] · nested_absmax[b / 256] + offset), and its checks.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "common/error.h"
#include "formats/nf4.h"

namespace imp {
namespace {

// A 256-entry code map on [−1, 1] whose entries have few significant bits, so that every
// decoded value below is exact in fp32 and in double alike.
std::vector<float> coarse_map() {
  std::vector<float> map(256);
  for (int i = 0; i < 256; ++i) map[size_t(i)] = float(i - 128) / 128.0f;
  return map;
}

class Nf4DoubleQuant : public ::testing::TestWithParam<int> {};

TEST_P(Nf4DoubleQuant, DecodesEveryCodeWithItsOwnNestedScale) {
  const int blocks = GetParam();
  const uint64_t seed = std::random_device{}();
  std::mt19937_64 rng(seed);
  const auto map = coarse_map();
  const int groups = (blocks + 255) / 256;
  std::vector<float> nested(static_cast<size_t>(groups));
  // Distinct power-of-two scales per group catch an off-by-one group index.
  for (int g = 0; g < groups; ++g) nested[size_t(g)] = std::ldexp(1.0f, int(rng() % 9) - 4) * float(1 + g % 3);
  std::vector<uint8_t> q(static_cast<size_t>(blocks));
  for (auto& c : q) c = uint8_t(rng());
  const float offset = 0.375f;
  std::vector<float> out(static_cast<size_t>(blocks));
  nf4_decode_double_quant_absmax(q, nested, map, offset, out);
  for (int b = 0; b < blocks; ++b) {
    const double want = (double(q[size_t(b)]) - 128.0) / 128.0 * double(nested[size_t(b / 256)]) + 0.375;
    ASSERT_EQ(double(out[size_t(b)]), want) << "block " << b << " seed " << seed;
  }
}

INSTANTIATE_TEST_SUITE_P(AwkwardCounts, Nf4DoubleQuant, ::testing::Values(1, 3, 255, 256, 257, 1025));

// Blockwise-quantize a real absmax vector the way bitsandbytes does (subtract the mean,
// nearest map entry of the value over its 256-block's max |·|), then decode: every absmax
// comes back within one map step (1/128) of the nested scale — half a step inside the map,
// a whole one at +1, which this map stops short of.
TEST(Nf4DoubleQuantRoundTrip, RecoversAbsmaxWithinAMapStep) {
  const uint64_t seed = std::random_device{}();
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(0.01f, 2.0f);
  const int blocks = 700;
  std::vector<float> absmax(blocks);
  double mean = 0;
  for (auto& a : absmax) mean += (a = u(rng));
  const float offset = float(mean / blocks);
  const auto map = coarse_map();
  std::vector<float> nested(3, 0.0f);
  for (int b = 0; b < blocks; ++b) {
    nested[size_t(b / 256)] = std::fmax(nested[size_t(b / 256)], std::fabs(absmax[size_t(b)] - offset));
  }
  std::vector<uint8_t> q(blocks);
  for (int b = 0; b < blocks; ++b) {
    const float v = (absmax[size_t(b)] - offset) / nested[size_t(b / 256)];
    int best = 0;
    for (int i = 1; i < 256; ++i) {
      if (std::fabs(map[size_t(i)] - v) < std::fabs(map[size_t(best)] - v)) best = i;
    }
    q[size_t(b)] = uint8_t(best);
  }
  std::vector<float> out(blocks);
  nf4_decode_double_quant_absmax(q, nested, map, offset, out);
  for (int b = 0; b < blocks; ++b) {
    const float tol = nested[size_t(b / 256)] * (1.0f / 128.0f) * 1.0001f;
    ASSERT_NEAR(out[size_t(b)], absmax[size_t(b)], tol) << "block " << b << " seed " << seed;
  }
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Nf4DoubleQuantErrors, WrongSizesAreErrors) {
  const auto map = coarse_map();
  std::vector<uint8_t> q(257);
  std::vector<float> nested(2), out(257);
  EXPECT_EQ(error_of([&] { nf4_decode_double_quant_absmax(q, nested, map, 0.0f, out); }), "");
  std::vector<float> one_nested(1);
  EXPECT_NE(error_of([&] { nf4_decode_double_quant_absmax(q, one_nested, map, 0.0f, out); })
                .find("nested_absmax holds 1 entries, 257 absmax codes in blocks of 256 need 2"),
            std::string::npos);
  std::vector<float> short_map(255);
  EXPECT_NE(error_of([&] { nf4_decode_double_quant_absmax(q, nested, short_map, 0.0f, out); })
                .find("nested_quant_map holds 255 entries"),
            std::string::npos);
  std::vector<float> short_out(256);
  EXPECT_NE(error_of([&] { nf4_decode_double_quant_absmax(q, nested, map, 0.0f, short_out); })
                .find("output holds 256 floats, there are 257 absmax codes"),
            std::string::npos);
  EXPECT_NE(error_of([&] { nf4_decode_double_quant_absmax(q, nested, map, 0.0f, out, 0); })
                .find("nested block size must be positive"),
            std::string::npos);
}

TEST(Nf4, CodeOfTableValuesAndThresholds) {
  for (int c = 0; c < 16; ++c) EXPECT_EQ(nf4_code(kNf4Values[c]), c);
  EXPECT_EQ(nf4_code(-2.0f), 0);
  EXPECT_EQ(nf4_code(2.0f), 15);
  EXPECT_EQ(nf4_code(NAN), 0);  // as bitsandbytes' decision tree: every comparison is false
}

}  // namespace
}  // namespace imp
