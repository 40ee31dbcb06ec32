// Activation-quantization emulation (backends/cpu/act_emulation.h): the emulated matmul is
// exactly the plain matmul over the fake-quantized activations, on both op paths; the NVFP4
// fake quantization is exactly the checkpoint quantizer's round trip with the tensor's G;
// static scales, saturation, exclusions and bad input behave as documented. The element
// values against an independent numpy + ml_dtypes transcription: tests/ref/test_act_emulation.py.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backends/cpu/act_emulation.h"
#include "backends/cpu/cpu_backend.h"
#include "common/error.h"
#include "common/random_data.h"
#include "formats/e2m1.h"
#include "formats/nvfp4_ckpt.h"

namespace imp {
namespace {

using test::randn;
using test::rng;

// Activations with a few outliers per row (|x| ~ 20σ), the shape that makes 4-bit
// activations hard and their block scales differ a lot.
std::vector<float> outlier_activations(int64_t n_tok, int64_t cols) {
  std::vector<float> x = randn(n_tok * cols);
  std::uniform_int_distribution<int64_t> pick(0, n_tok * cols - 1);
  for (int i = 0; i < 3; ++i) x[size_t(pick(rng()))] *= 20.0f;
  return x;
}

bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(ActEmulation, MatmulEqualsPlainMatmulOverFakeQuantizedActivations) {
  for (const ActEmulation mode : {ActEmulation::kNvfp4, ActEmulation::kMxfp4, ActEmulation::kFp8}) {
    for (const FormatId wf : {FormatId::F32, FormatId::Q4_0, FormatId::Q8_0, FormatId::NVFP4_CKPT}) {
      for (const int64_t blocks : {1, 3, 17}) {
        for (const int64_t n_tok : {1, 3, 5}) {
          const int64_t cols = 32 * blocks, rows = 37;
          const OwnedQuantMatrix w = quantize(wf, randn(rows * cols), rows, cols);
          const std::vector<float> x = outlier_activations(n_tok, cols);
          std::vector<float> xq(x.size());
          fake_quantize_activations(mode, x.data(), n_tok, cols, std::nullopt, xq.data());
          ASSERT_FALSE(bit_equal(x, xq)) << "the fake quantization must change something";

          std::vector<float> want(size_t(n_tok * rows)), got(want.size());
          matmul_ref(w.view(), xq.data(), n_tok, want.data());
          CpuBackend ref(CpuOpsPath::kReference, 1, ActQuant::kNone, mode);
          ref.matmul(w.view(), x.data(), n_tok, got.data());
          EXPECT_TRUE(bit_equal(got, want)) << act_emulation_name(mode) << " " << format_name(wf) << " reference path";

          ThreadPool pool(2);
          matmul(pool, w.view(), xq.data(), n_tok, want.data());
          CpuBackend fast(CpuOpsPath::kFast, 2, ActQuant::kNone, mode);
          fast.matmul(w.view(), x.data(), n_tok, got.data());
          EXPECT_TRUE(bit_equal(got, want)) << act_emulation_name(mode) << " " << format_name(wf) << " fast path";
        }
      }
    }
  }
}

TEST(ActEmulation, Nvfp4IsTheCheckpointQuantizerRoundTripWithTheTensorsGlobalScale) {
  for (const int64_t blocks : {1, 3, 17, 37}) {
    for (const int64_t n_tok : {1, 3}) {
      const int64_t cols = 16 * blocks;
      const std::vector<float> x = outlier_activations(n_tok, cols);
      std::vector<float> got(x.size());
      const float g = fake_quantize_activations(ActEmulation::kNvfp4, x.data(), n_tok, cols, std::nullopt, got.data());
      float amax = 0.0f;
      for (const float v : x) amax = std::fmax(amax, std::fabs(v));
      ASSERT_EQ(g, amax / (6.0f * 448.0f));

      const OwnedQuantMatrix q = quantize(FormatId::NVFP4_CKPT, x, n_tok, cols);  // G from the same amax
      ASSERT_EQ(q.tensor_scale, g);
      EXPECT_TRUE(bit_equal(got, dequantize(q.view())));
      // Every element is an E2M1 value times its block's scale: at most 8 distinct
      // magnitudes per block.
      for (int64_t b = 0; b < n_tok * blocks; ++b) {
        std::vector<float> mags;
        for (int j = 0; j < 16; ++j) {
          const float m = std::fabs(got[size_t(b * 16 + j)]);
          if (std::find(mags.begin(), mags.end(), m) == mags.end()) mags.push_back(m);
        }
        EXPECT_LE(mags.size(), 8u);
      }
    }
  }
}

TEST(ActEmulation, StaticNvfp4ScaleIsUsedAndSaturatesLikeTheHardware) {
  const int64_t cols = 16 * 3;
  std::vector<float> x = randn(cols);
  // A calibrated G far below this row's amax: block scales overflow E4M3's 448.
  const float g = 1e-3f;
  x[5] = 6.0f * 448.0f * g * 4.0f;
  std::vector<float> got(x.size());
  EXPECT_EQ(fake_quantize_activations(ActEmulation::kNvfp4, x.data(), 1, cols, g, got.data()), g);
  for (int64_t i = 0; i < 16; ++i) {
    ASSERT_FALSE(std::isnan(got[size_t(i)]));
    EXPECT_LE(std::fabs(got[size_t(i)]), 6.0f * (448.0f * g));  // saturated: E2M1 6 × (E4M3 448 × G)
  }
  EXPECT_EQ(got[5], 6.0f * (448.0f * g));
  // A G the row fits in gives the checkpoint round trip with that G.
  const float g_fit = 0.01f;
  fake_quantize_activations(ActEmulation::kNvfp4, x.data(), 1, cols, g_fit, got.data());
  std::vector<uint8_t> codes(static_cast<size_t>(cols / 2)), scales(static_cast<size_t>(cols / 16));
  RowPlanes p{codes.data(), scales.data(), nullptr, g_fit, 0};
  quantize_row_nvfp4_ckpt(x.data(), p, cols);
  std::vector<float> want(static_cast<size_t>(cols));
  dequantize_row_nvfp4_ckpt(p, want.data(), cols);
  EXPECT_TRUE(bit_equal(got, want));
  EXPECT_THROW(fake_quantize_activations(ActEmulation::kNvfp4, x.data(), 1, cols, 0.0f, got.data()), Error);
  EXPECT_THROW(fake_quantize_activations(ActEmulation::kFp8, x.data(), 1, cols, NAN, got.data()), Error);
}

TEST(ActEmulation, BackendUsesRegisteredScalesAndSkipsExcludedWeights) {
  const int64_t rows = 17, cols = 64, n_tok = 3;
  const OwnedQuantMatrix wa = quantize(FormatId::Q8_0, randn(rows * cols), rows, cols);
  const OwnedQuantMatrix wb = quantize(FormatId::Q8_0, randn(rows * cols), rows, cols);
  const OwnedQuantMatrix head = quantize(FormatId::Q8_0, randn(rows * cols), rows, cols);
  const std::vector<float> x = outlier_activations(n_tok, cols);
  CpuBackend be(CpuOpsPath::kReference, 1, ActQuant::kNone, ActEmulation::kFp8);
  const float s = 0.05f;
  be.act_emulator().set_input_scale(wa.view(), s);
  be.act_emulator().exclude(head.view());

  std::vector<float> xq(x.size()), want(size_t(n_tok * rows)), got(want.size());
  fake_quantize_activations(ActEmulation::kFp8, x.data(), n_tok, cols, s, xq.data());
  matmul_ref(wa.view(), xq.data(), n_tok, want.data());
  be.matmul(wa.view(), x.data(), n_tok, got.data());
  EXPECT_TRUE(bit_equal(got, want)) << "static scale";

  fake_quantize_activations(ActEmulation::kFp8, x.data(), n_tok, cols, std::nullopt, xq.data());
  matmul_ref(wb.view(), xq.data(), n_tok, want.data());
  be.matmul(wb.view(), x.data(), n_tok, got.data());
  EXPECT_TRUE(bit_equal(got, want)) << "dynamic scale";

  matmul_ref(head.view(), x.data(), n_tok, want.data());
  be.matmul(head.view(), x.data(), n_tok, got.data());
  EXPECT_TRUE(bit_equal(got, want)) << "excluded weight sees the activations as they are";

  const std::string sum = be.act_emulator().summary();
  EXPECT_NE(sum.find("checkpoint input_scale for 1 linears"), std::string::npos) << sum;
  EXPECT_NE(sum.find("dynamic per-tensor amax for 1 linears"), std::string::npos) << sum;
  EXPECT_NE(sum.find("1 not emulated"), std::string::npos) << sum;
}

TEST(ActEmulation, BadInputIsAnError) {
  EXPECT_EQ(parse_act_emulation("nvfp4"), ActEmulation::kNvfp4);
  EXPECT_EQ(parse_act_emulation("none"), ActEmulation::kNone);
  EXPECT_THROW(parse_act_emulation("nvfp8"), Error);
  const std::vector<float> x = randn(48);
  std::vector<float> out(x.size());
  EXPECT_THROW(fake_quant_row(ActEmulation::kMxfp4, x.data(), 48, 1.0f, out.data()), Error);  // 48 % 32
  EXPECT_THROW(fake_quant_row(ActEmulation::kNvfp4, x.data(), 40, 1.0f, out.data()), Error);  // 40 % 16
  // Emulation sets the activations' numerics, so a q8 choice (e.g. the planner's) yields to it.
  EXPECT_EQ(CpuBackend(CpuOpsPath::kFast, 1, ActQuant::kQ8, ActEmulation::kNvfp4).act_quant(), ActQuant::kNone);
  EXPECT_EQ(CpuBackend(CpuOpsPath::kFast, 1, ActQuant::kQ8).act_quant(), ActQuant::kQ8);
}

}  // namespace
}  // namespace imp
