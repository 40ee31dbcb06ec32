// The FP8 producers' E4M3 encoder (fp8_act.cuh: the hardware pair conversion with a NaN
// patch) gives formats/fp8_e4m3.h f32_to_e4m3_saturate's code for every class of input:
// zeros, subnormal and normal codes with their rounding ties, the saturation edge (448,
// 464, 480, beyond), infinities, NaNs of both signs, and random bit patterns. Host-side
// (cuda_fp8.hpp's emulation of the instruction), so it runs in CI; the GPU tests
// (CudaGemmFp8.ActivationQuantizationIsBitExact, …) check the device instruction.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "backends/cuda/fp8_encode.h"
#include "formats/fp8_e4m3.h"

namespace imp::cuda::test {
namespace {

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(CudaFp8Encode, HardwarePairConversionMatchesTheReference) {
  std::vector<float> v = {0.0f, -0.0f, 448.0f, -448.0f, 449.0f, 464.0f, 465.0f, 480.0f, 1e6f, -1e30f,
                          std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(),
                          from_bits(0x7FA00001u), from_bits(0xFFC12345u), std::ldexp(1.0f, -9), std::ldexp(1.0f, -10),
                          std::ldexp(3.0f, -11), std::ldexp(1.0f, -6), std::ldexp(1.5f, -10), 1e-30f, -1e-30f};
  // Every E4M3 value and the midpoints between neighbours (the ties), both signs.
  for (int c = 0; c < 0x7F; ++c) {
    const float a = e4m3_to_f32(uint8_t(c)), b = e4m3_to_f32(uint8_t(c + 1));
    for (float x : {a, b, 0.5f * (a + b), std::nextafter(0.5f * (a + b), 0.0f), std::nextafter(0.5f * (a + b), 1e9f)}) {
      v.push_back(x);
      v.push_back(-x);
    }
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 200000; ++i) v.push_back(from_bits(rng()));
  std::uniform_real_distribution<float> near(-500.0f, 500.0f);
  for (int i = 0; i < 200000; ++i) v.push_back(near(rng));
  for (size_t i = 0; i + 1 < v.size(); i += 2) {
    const uint32_t got = fp8act::e4m3x2_saturate(v[i], v[i + 1]);
    ASSERT_EQ(got & 0xFFu, f32_to_e4m3_saturate(v[i])) << "x = " << v[i] << " (bits " << std::hex << got << ")";
    ASSERT_EQ(got >> 8, f32_to_e4m3_saturate(v[i + 1])) << "x = " << v[i + 1];
  }
}

}  // namespace
}  // namespace imp::cuda::test
