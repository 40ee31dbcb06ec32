// Scalar encodings against the anchors and edge cases of ../shared/specs/formats.md §1,
// plus exhaustive decode → encode round trips over every code.
#include <gtest/gtest.h>

#include <cmath>

#include "common/bits.h"
#include "formats/bf16.h"
#include "formats/e2m1.h"
#include "formats/e8m0.h"
#include "formats/f16.h"
#include "formats/fp8_e4m3.h"
#include "formats/fp8_e5m2.h"
#include "formats/ue4m3.h"

namespace imp {
namespace {

TEST(F16, AnchorsAndEdges) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3C00);
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);
  EXPECT_EQ(f32_to_f16(0x1p-25f), 0x0000);                     // tie to even
  EXPECT_EQ(f32_to_f16(std::nextafter(0x1p-25f, 1.0f)), 0x0001);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(f32_from_bits(0x7FA00001u)), 0x7E00);  // NaN payload dropped
  EXPECT_EQ(f32_to_f16(f32_from_bits(0xFF800001u)), 0xFE00);
  EXPECT_EQ(f16_to_f32(0x0001), 0x1p-24f);
  EXPECT_EQ(f16_to_f32(0x0400), 0x1p-14f);
  EXPECT_TRUE(std::isinf(f16_to_f32(0x7C00)));
}

TEST(F16, EveryCodeRoundTrips) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(uint16_t(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), h) << std::hex << h;
  }
}

TEST(F16, MidpointsRoundToEven) {
  // Between consecutive normal codes c and c+1 the midpoint goes to the even one.
  for (uint32_t h = 0x0400; h < 0x7BFF; h += 37) {
    const double lo = f16_to_f32(uint16_t(h)), hi = f16_to_f32(uint16_t(h + 1));
    const float mid = float((lo + hi) / 2);  // exact in fp32
    ASSERT_EQ(f32_to_f16(mid), (h % 2 == 0) ? h : h + 1) << std::hex << h;
  }
}

TEST(BF16, AnchorsAndNaN) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x7FA00001u)), 0x7FE0);
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0xFF800001u)), 0xFFC0);
  EXPECT_EQ(f32_to_bf16(3.4028235e38f), 0x7F80);  // FLT_MAX rounds to Inf
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3F808000u)), 0x3F80);  // tie to even (down)
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3F818000u)), 0x3F82);  // tie to even (up)
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x00000001u)), 0x0000);  // subnormals kept, RNE
  EXPECT_EQ(bf16_to_f32(0x3F80), 1.0f);
}

TEST(E4M3, DecodeTable) {
  EXPECT_EQ(e4m3_to_f32(0x38), 1.0f);
  EXPECT_EQ(e4m3_to_f32(0x7E), 448.0f);
  EXPECT_EQ(e4m3_to_f32(0x08), 0x1p-6f);
  EXPECT_EQ(e4m3_to_f32(0x01), 0x1p-9f);
  EXPECT_TRUE(std::isnan(e4m3_to_f32(0x7F)));
  EXPECT_TRUE(std::isnan(e4m3_to_f32(0xFF)));
  EXPECT_TRUE(std::signbit(e4m3_to_f32(0x80)));
}

TEST(E4M3, TorchCastSemantics) {
  EXPECT_EQ(f32_to_e4m3(464.0f), 0x7E);  // midpoint 448/480 → even 448
  EXPECT_EQ(f32_to_e4m3(465.0f), 0x7F);  // non-saturating: NaN
  EXPECT_EQ(f32_to_e4m3(-500.0f), 0xFF);
  EXPECT_EQ(f32_to_e4m3(INFINITY), 0x7F);
  EXPECT_EQ(f32_to_e4m3(NAN), 0x7F);
  EXPECT_EQ(f32_to_e4m3(0x1p-10f), 0x00);
  EXPECT_EQ(f32_to_e4m3(1.5f * 0x1p-10f), 0x01);
  EXPECT_EQ(f32_to_e4m3(1.0625f), 0x38);  // RNE tie → even mantissa
  EXPECT_EQ(f32_to_e4m3_saturate(1e6f), 0x7E);
  EXPECT_EQ(f32_to_e4m3_saturate(-1e6f), 0xFE);
  for (int c = 0; c < 256; ++c) {
    const float f = e4m3_to_f32(uint8_t(c));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_e4m3(f), c) << c;
  }
}

TEST(E5M2, TorchCastSemantics) {
  EXPECT_EQ(f32_to_e5m2(1.0f), 0x3C);
  EXPECT_EQ(e5m2_to_f32(0x7B), 57344.0f);
  EXPECT_EQ(f32_to_e5m2(61439.0f), 0x7B);
  EXPECT_EQ(f32_to_e5m2(61440.0f), 0x7C);
  EXPECT_EQ(f32_to_e5m2(0x1p-17f), 0x00);
  EXPECT_EQ(f32_to_e5m2(1.5f * 0x1p-17f), 0x01);
  EXPECT_TRUE(std::isinf(e5m2_to_f32(0x7C)));
  EXPECT_TRUE(std::isnan(e5m2_to_f32(0x7D)));
  for (int c = 0; c < 256; ++c) {
    const float f = e5m2_to_f32(uint8_t(c));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_e5m2(f), c) << c;
  }
}

TEST(E2M1, RneWithSaturationAndTies) {
  const std::pair<float, uint8_t> cases[] = {
      {0.25f, 0}, {0.26f, 1}, {0.75f, 2}, {1.25f, 2}, {1.75f, 4}, {2.5f, 4}, {3.5f, 6},
      {5.0f, 6},  {5.1f, 7},  {100.0f, 7}, {-0.1f, 8}, {-6.0f, 15}, {-0.75f, 10}};
  for (auto [v, code] : cases) EXPECT_EQ(f32_to_e2m1_rne(v), code) << v;
  for (int c = 0; c < 16; ++c) EXPECT_EQ(float(kE2M1TimesTwo[c]), 2.0f * kE2M1Values[c]);
}

TEST(E8M0, SpecAndGgmlReadings) {
  EXPECT_EQ(e8m0_to_f32(127), 1.0f);
  EXPECT_EQ(e8m0_to_f32(0), 0x1p-127f);
  EXPECT_EQ(e8m0_to_f32(254), 0x1p127f);
  EXPECT_TRUE(std::isnan(e8m0_to_f32(255)));
  EXPECT_EQ(f32_bits(e8m0_to_f32_ggml(0)), 0x00400000u);
  EXPECT_TRUE(std::isinf(e8m0_to_f32_ggml(255)));
  EXPECT_EQ(e8m0_to_f32_half_ggml(0), 0x1p-128f);
  EXPECT_EQ(e8m0_to_f32_half_ggml(1), 0x1p-127f);
  EXPECT_EQ(e8m0_to_f32_half_ggml(128), 1.0f);
  EXPECT_EQ(e8m0_to_f32_half_ggml(255), 0x1p127f);
}

TEST(UE4M3, GgmlQuirks) {
  EXPECT_EQ(f32_to_ue4m3_ggml(1.0625f), 0x39);  // half up, where torch's RNE gives 0x38
  EXPECT_EQ(f32_to_ue4m3_ggml(1.1875f), 0x3A);
  EXPECT_EQ(f32_to_ue4m3_ggml(448.0f), 0x7E);
  EXPECT_EQ(f32_to_ue4m3_ggml(500.0f), 0x7E);
  EXPECT_EQ(f32_to_ue4m3_ggml(0x1p-10f), 0x01);
  EXPECT_EQ(f32_to_ue4m3_ggml(0.015f), 0x07);
  EXPECT_EQ(f32_to_ue4m3_ggml(-1.0f), 0x00);
  EXPECT_EQ(ue4m3_to_f32_half_ggml(0x80), 0.0f);
  EXPECT_EQ(ue4m3_to_f32_half_ggml(0x81), 0x1p-10f);
  EXPECT_EQ(ue4m3_to_f32_half_ggml(0xB8), 0.5f);
  EXPECT_EQ(ue4m3_to_f32_half_ggml(0xFF), 240.0f);
  EXPECT_EQ(ue4m3_to_f32_half_ggml(0x7F), 0.0f);
  EXPECT_EQ(f32_to_ue4m3(1.0625f), 0x38);
}

}  // namespace
}  // namespace imp
