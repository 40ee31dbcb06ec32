// The AVX2 row kernels against the scalar references of formats/ (the oracle).
//
// For every weight format with an AVX2 kernel, row lengths of 1, 3, 17, 37 and 129 blocks
// (blocks of lcm(weight block, activation block) elements; plain scalar formats also get
// lengths that leave vector tails), fresh random data each run (the seed is printed on
// failure):
//   - dequantize: bit-identical to the reference (compared as bit patterns, so NaN and
//     −0 count), on rows the reference quantizer made from Gaussian data and on random
//     bytes (with finite scales where the brief asks for them);
//   - vec_dot: |fast − ref| ≤ kDotRelTol · Σ|w·a|, with w and a the reference
//     dequantizations. Both sides sum exact integers per block; they differ only in how
//     FP32 partial sums are associated (8 lanes + FMA vs one running sum), which costs a
//     few ulps of the largest partial sum — far below 1e-5 of Σ|w·a|.
//   - the Q8_0 / Q8_1 / Q8_K activation quantizers: byte-identical, including rows built
//     to hit exact rounding ties.
// Formats whose reference is still a stub (imp::Error "not implemented") are skipped.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/cpu_features.h"
#include "backends/cpu/row_kernels.h"
#include "backends/cpu/row_kernels_avx2.h"
#include "common/bits.h"
#include "common/error.h"
#include "formats/quant_matrix.h"
#include "formats/traits.h"

namespace imp {
namespace {

constexpr double kDotRelTol = 1e-5;
constexpr int kRows = 3;  // rows per matrix: row r > 0 exercises the planes' row offsets

using F = FormatId;

// The weight formats the AVX2 backend must cover.
const std::vector<FormatId> kFastFormats = {
    F::Q4_0,   F::Q4_1,         F::Q5_0,           F::Q5_1,           F::Q8_0,  F::Q2_K,    F::Q3_K,
    F::Q4_K,   F::Q5_K,         F::Q6_K,           F::IQ4_NL,         F::IQ4_XS, F::MXFP4,  F::NVFP4,
    F::NVFP4_CKPT, F::MXFP4_CKPT, F::F8_E4M3,      F::F8_E5M2,        F::FP8_E4M3_TENSOR,
    F::FP8_E4M3_CHANNEL, F::FP8_E4M3_BLOCK128, F::F16, F::BF16, F::F32};

const std::vector<FormatId> kActivationFormats = {F::Q8_0, F::Q8_1, F::Q8_K};

bool cpu_has_avx2() {
  const auto& f = cpu_features();
  return f.avx2 && f.fma && f.f16c;
}

uint32_t fresh_seed() { return std::random_device{}(); }

const FormatTraits& traits(FormatId f) { return format_traits(f); }

std::vector<int64_t> row_lengths(FormatId f) {
  const int64_t unit = std::lcm<int64_t>(traits(f).block_elems, traits(traits(f).dot_activation).block_elems);
  if (unit == 1) return {1, 3, 17, 37, 129, 1037, 4099};
  return {unit, 3 * unit, 17 * unit, 37 * unit, 129 * unit};
}

std::vector<float> gaussian(std::mt19937& rng, int64_t n, float sigma) {
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = normal(rng);
  return x;
}

// The reason to skip a format whose reference (or its activation's) is not written yet.
std::optional<std::string> reference_missing(FormatId f) {
  try {
    std::mt19937 rng(1);
    const int64_t n = row_lengths(f).front();
    const OwnedQuantMatrix m = quantize(f, gaussian(rng, n, 1.0f), 1, n);
    std::vector<float> y(static_cast<size_t>(n));
    traits(f).dequantize_ref(row_planes(m.view(), 0), y.data(), n);
    const FormatId af = traits(f).dot_activation;
    std::vector<uint8_t> act(size_t(row_data_bytes(af, n)));
    RowPlanes ap;
    ap.data = act.data();
    traits(af).quantize_ref(y.data(), ap, n);
    traits(af).dequantize_ref(ap, y.data(), n);
    traits(f).vec_dot_ref(row_planes(m.view(), 0), act.data(), n);
  } catch (const Error& e) {
    return std::string("scalar reference not available yet: ") + e.what();
  }
  return std::nullopt;
}

// --- random bytes -----------------------------------------------------------------------

// How wild the random bit patterns may be.
enum class Bits {
  kAny,     // every pattern (scalar formats: NaN, Inf, subnormals); GGUF scales finite
  kModest,  // finite values of moderate range, so that a dot product cannot overflow
};

uint16_t random_f16(std::mt19937& rng, Bits bits) {
  for (;;) {
    const auto h = uint16_t(rng());
    const int e = (h >> 10) & 0x1F;
    if (e == 31) continue;                             // GGUF scales: finite
    if (bits == Bits::kModest && (e < 5 || e > 24)) continue;  // 2^-10 .. 2^9
    return h;
  }
}

uint8_t random_byte_except(std::mt19937& rng, bool (*bad)(uint8_t)) {
  for (;;) {
    const auto b = uint8_t(rng());
    if (!bad(b)) return b;
  }
}

bool e4m3_nan(uint8_t b) { return (b & 0x7F) == 0x7F; }
bool e5m2_special(uint8_t b) { return ((b >> 2) & 0x1F) == 0x1F; }
bool e8m0_wide(uint8_t b) { return b < 127 - 30 || b > 127 + 30; }

// Offsets of the f16 scale fields inside one block of a GGUF type.
std::vector<int> gguf_f16_fields(FormatId f) {
  switch (f) {
    case F::Q4_0: case F::Q5_0: case F::Q8_0: case F::IQ4_NL: case F::IQ4_XS: return {0};
    case F::Q4_1: case F::Q5_1: case F::Q4_K: case F::Q5_K: return {0, 2};
    case F::Q2_K: return {80, 82};
    case F::Q3_K: return {108};
    case F::Q6_K: return {208};
    default: return {};  // MXFP4 (E8M0), NVFP4 (UE4M3): ggml reads every scale byte as finite
  }
}

OwnedQuantMatrix random_matrix(FormatId f, int64_t rows, int64_t cols, std::mt19937& rng, Bits bits) {
  OwnedQuantMatrix m;
  m.format = f;
  m.rows = rows;
  m.cols = cols;
  m.data.resize(size_t(rows * row_data_bytes(f, cols)));
  for (auto& b : m.data) b = uint8_t(rng());
  m.scales.resize(size_t(scale_plane_bytes(f, rows, cols, 0)));
  std::uniform_real_distribution<float> scale_dist(0.01f, 4.0f);
  m.tensor_scale = scale_dist(rng);
  const bool modest = bits == Bits::kModest;
  switch (f) {
    case F::F16:
      if (modest) for (size_t i = 0; i < m.data.size(); i += 2) store_u16(&m.data[i], random_f16(rng, bits));
      break;
    case F::F32:  // modest: exponents 2^-20 .. 2^20
      if (modest) {
        for (size_t i = 0; i < m.data.size(); i += 4) {
          const uint32_t e = 107 + rng() % 41;
          store_u32(&m.data[i], (rng() & 0x807FFFFFu) | (e << 23));
        }
      }
      break;
    case F::BF16:  // modest: exponents 2^-20 .. 2^20
      if (modest) {
        for (size_t i = 0; i < m.data.size(); i += 2) {
          const uint16_t e = uint16_t(107 + rng() % 41);
          store_u16(&m.data[i], uint16_t((rng() & 0x807F) | (e << 7)));
        }
      }
      break;
    case F::F8_E4M3: case F::FP8_E4M3_TENSOR: case F::FP8_E4M3_CHANNEL: case F::FP8_E4M3_BLOCK128:
      if (modest) for (auto& b : m.data) b = random_byte_except(rng, e4m3_nan);
      for (size_t i = 0; i < m.scales.size(); i += 4) store_f32(&m.scales[i], scale_dist(rng));
      break;
    case F::F8_E5M2:
      if (modest) for (auto& b : m.data) b = random_byte_except(rng, e5m2_special);
      break;
    case F::NVFP4_CKPT:
      for (auto& b : m.scales) b = modest ? random_byte_except(rng, e4m3_nan) : uint8_t(rng());
      break;
    case F::MXFP4_CKPT:
      for (auto& b : m.scales) b = modest ? random_byte_except(rng, e8m0_wide) : uint8_t(rng());
      break;
    case F::MXFP4:  // byte 0 of each 17-byte block is the E8M0 exponent
      if (modest) for (size_t b = 0; b < m.data.size(); b += 17) m.data[b] = random_byte_except(rng, e8m0_wide);
      break;
    default: {
      const int64_t block = traits(f).block_bytes;
      for (const int off : gguf_f16_fields(f)) {
        for (size_t b = 0; b < m.data.size(); b += size_t(block)) store_u16(&m.data[b + size_t(off)], random_f16(rng, bits));
      }
    }
  }
  return m;
}

// --- comparisons ------------------------------------------------------------------------

// Index of the first element whose bits differ, or −1.
int64_t first_bit_mismatch(const std::vector<float>& a, const std::vector<float>& b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (f32_bits(a[size_t(i)]) != f32_bits(b[size_t(i)])) return i;
  }
  return -1;
}

void expect_dequant_identical(FormatId f, const QuantMatrix& m, const CpuRowKernels& fast) {
  const int64_t n = m.cols;
  constexpr float kGuard = 12345.0f;  // the fast kernel must not write past n
  for (int64_t r = 0; r < m.rows; ++r) {
    std::vector<float> want(static_cast<size_t>(n)), got(size_t(n) + 8, kGuard);
    traits(f).dequantize_ref(row_planes(m, r), want.data(), n);
    fast.dequantize(row_planes(m, r), got.data(), n);
    const int64_t i = first_bit_mismatch(want, got, n);
    ASSERT_EQ(i, -1) << format_name(f) << " n=" << n << " row " << r << " element " << i << ": ref "
                     << want[size_t(std::max<int64_t>(i, 0))] << " fast " << got[size_t(std::max<int64_t>(i, 0))];
    for (int k = 0; k < 8; ++k) ASSERT_EQ(got[size_t(n + k)], kGuard) << format_name(f) << " wrote past the row";
  }
}

void expect_dot_close(FormatId f, const QuantMatrix& m, const CpuRowKernels& fast, std::mt19937& rng) {
  const int64_t n = m.cols;
  const FormatId af = traits(f).dot_activation;
  const std::vector<float> x = gaussian(rng, n, 1.0f);
  std::vector<uint8_t> act(size_t(row_data_bytes(af, n)));
  RowPlanes ap;
  ap.data = act.data();
  traits(af).quantize_ref(x.data(), ap, n);
  std::vector<float> a(static_cast<size_t>(n)), w(static_cast<size_t>(n));
  traits(af).dequantize_ref(ap, a.data(), n);
  for (int64_t r = 0; r < m.rows; ++r) {
    traits(f).dequantize_ref(row_planes(m, r), w.data(), n);
    double abs_sum = 0;
    for (int64_t i = 0; i < n; ++i) abs_sum += std::fabs(double(w[size_t(i)]) * double(a[size_t(i)]));
    const float want = traits(f).vec_dot_ref(row_planes(m, r), act.data(), n);
    const float got = fast.vec_dot(row_planes(m, r), act.data(), n);
    ASSERT_TRUE(std::isfinite(want)) << format_name(f) << ": test data overflowed the reference";
    EXPECT_LE(std::fabs(double(got) - double(want)), kDotRelTol * abs_sum)
        << format_name(f) << " n=" << n << " row " << r << ": ref " << want << " fast " << got
        << " (Σ|w·a| = " << abs_sum << ")";
  }
}

// --- weight formats ---------------------------------------------------------------------

class FastWeightKernels : public ::testing::TestWithParam<FormatId> {
 protected:
  void SetUp() override {
    if (!cpu_has_avx2()) GTEST_SKIP() << "CPU lacks AVX2+FMA+F16C";
    if (auto reason = reference_missing(GetParam())) GTEST_SKIP() << *reason;
    seed_ = fresh_seed();
    rng_.seed(seed_);
  }
  CpuRowKernels fast() const { return cpu_row_kernels(GetParam(), CpuIsa::kAvx2); }

  uint32_t seed_ = 0;
  std::mt19937 rng_;
};

TEST_P(FastWeightKernels, DequantizeIsBitIdenticalOnQuantizedGaussianRows) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  const FormatId f = GetParam();
  for (const int64_t n : row_lengths(f)) {
    for (const float sigma : {1.0f, 1e-3f, 40.0f}) {
      const OwnedQuantMatrix m = quantize(f, gaussian(rng_, kRows * n, sigma), kRows, n);
      expect_dequant_identical(f, m.view(), fast());
    }
  }
}

TEST_P(FastWeightKernels, DequantizeIsBitIdenticalOnRandomBytes) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  const FormatId f = GetParam();
  for (const int64_t n : row_lengths(f)) {
    for (const Bits bits : {Bits::kAny, Bits::kModest}) {
      expect_dequant_identical(f, random_matrix(f, kRows, n, rng_, bits).view(), fast());
    }
  }
}

TEST_P(FastWeightKernels, VecDotMatchesReferenceOnQuantizedGaussianRows) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  const FormatId f = GetParam();
  for (const int64_t n : row_lengths(f)) {
    const OwnedQuantMatrix m = quantize(f, gaussian(rng_, kRows * n, 1.0f), kRows, n);
    expect_dot_close(f, m.view(), fast(), rng_);
  }
}

TEST_P(FastWeightKernels, VecDotMatchesReferenceOnRandomBytes) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  const FormatId f = GetParam();
  for (const int64_t n : row_lengths(f)) {
    expect_dot_close(f, random_matrix(f, kRows, n, rng_, Bits::kModest).view(), fast(), rng_);
  }
}

TEST_P(FastWeightKernels, EveryEntryIsTheAvx2Kernel) {
  const auto k = fast();
  const FormatId f = GetParam();
  if (f != F::F32) EXPECT_EQ(k.dequantize_isa, CpuIsa::kAvx2) << format_name(f);
  EXPECT_EQ(k.vec_dot_isa, CpuIsa::kAvx2) << format_name(f);
  const bool float_activation = traits(f).dot_activation == F::F32;  // a copy needs no kernel
  EXPECT_EQ(k.quantize_isa, float_activation ? CpuIsa::kScalar : CpuIsa::kAvx2) << format_name(f);
}

std::string format_param_name(const ::testing::TestParamInfo<FormatId>& info) {
  return std::string(format_name(info.param));
}

INSTANTIATE_TEST_SUITE_P(Formats, FastWeightKernels, ::testing::ValuesIn(kFastFormats), format_param_name);

// --- activation quantizers --------------------------------------------------------------

class FastActivationQuantizer : public ::testing::TestWithParam<FormatId> {};

// Rows that stress the rounding rules: ties at .5 (roundf goes away from zero, nearest_int
// to even), the largest |x| appearing twice with both signs (the first one sets the sign
// of Q8_K's scale), all-zero blocks, tiny and huge magnitudes.
std::vector<std::vector<float>> activation_rows(FormatId af, int64_t n, std::mt19937& rng) {
  const int64_t qk = traits(af).block_elems;
  std::vector<std::vector<float>> rows;
  for (const float sigma : {1.0f, 1e-6f, 3e4f}) rows.push_back(gaussian(rng, n, sigma));
  std::uniform_int_distribution<int> code(-126, 126);
  std::vector<float> ties(static_cast<size_t>(n)), twin_max(static_cast<size_t>(n)), zeros = gaussian(rng, n, 1.0f);
  for (int64_t b = 0; b < n / qk; ++b) {
    float* t = &ties[size_t(b * qk)];
    // amax = 127 makes d = 1 and the scaled values exactly x, so every x = k + 0.5 is a tie.
    for (int64_t j = 0; j < qk; ++j) t[j] = float(code(rng)) + ((rng() & 1) ? 0.5f : -0.5f);
    t[rng() % qk] = (rng() & 1) ? 127.0f : -127.0f;
    float* w = &twin_max[size_t(b * qk)];
    const std::vector<float> g = gaussian(rng, qk, 1.0f);
    std::copy(g.begin(), g.end(), w);
    const int64_t i = int64_t(rng() % (qk - 1)), j = i + 1 + int64_t(rng() % (qk - 1 - i));
    w[i] = (rng() & 1) ? -9.0f : 9.0f;
    w[j] = -w[i];
    if (b % 3 == 1) std::fill(&zeros[size_t(b * qk)], &zeros[size_t(b * qk + qk)], 0.0f);
  }
  rows.push_back(ties);
  rows.push_back(twin_max);
  rows.push_back(zeros);
  return rows;
}

TEST_P(FastActivationQuantizer, WritesTheReferenceBytes) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "CPU lacks AVX2+FMA+F16C";
  const FormatId af = GetParam();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const QuantizeRowFn fast = avx2_row_kernels(af == F::Q8_1 ? F::Q4_1 : af == F::Q8_K ? F::Q4_K : F::Q4_0)
                                 .quantize_activation;
  ASSERT_NE(fast, nullptr);
  for (const int64_t blocks : {1, 3, 17, 37, 129}) {
    const int64_t n = blocks * traits(af).block_elems;
    for (const auto& x : activation_rows(af, n, rng)) {
      std::vector<uint8_t> want(size_t(row_data_bytes(af, n)), 0xA5), got(want.size() + 16, 0x5A);
      RowPlanes wp, gp;
      wp.data = want.data();
      gp.data = got.data();
      try {
        traits(af).quantize_ref(x.data(), wp, n);
      } catch (const Error& e) {
        GTEST_SKIP() << "scalar reference not available yet: " << e.what();
      }
      fast(x.data(), gp, n);
      for (size_t i = 0; i < want.size(); ++i) {
        ASSERT_EQ(want[i], got[i]) << format_name(af) << " n=" << n << " byte " << i << " (block "
                                   << i / size_t(traits(af).block_bytes) << ")";
      }
      for (size_t i = want.size(); i < got.size(); ++i) ASSERT_EQ(got[i], 0x5A) << "wrote past the row";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, FastActivationQuantizer, ::testing::ValuesIn(kActivationFormats),
                         format_param_name);

// --- dispatch ---------------------------------------------------------------------------

TEST(CpuRowKernels, ScalarIsaReturnsTheReferences) {
  for (int i = 0; i < kFormatCount; ++i) {
    const FormatId f = FormatId(i);
    const auto& t = traits(f);
    const CpuRowKernels k = cpu_row_kernels(f, CpuIsa::kScalar);
    EXPECT_EQ(k.dequantize, t.dequantize_ref) << t.name;
    EXPECT_EQ(k.vec_dot, t.vec_dot_ref) << t.name;
    EXPECT_EQ(k.quantize_activation, traits(t.dot_activation).quantize_ref) << t.name;
    EXPECT_EQ(k.dequantize_isa, CpuIsa::kScalar) << t.name;
    EXPECT_EQ(k.quantize_isa, CpuIsa::kScalar) << t.name;
    EXPECT_EQ(k.vec_dot_isa, CpuIsa::kScalar) << t.name;
  }
}

TEST(CpuRowKernels, FormatsWithoutFastKernelsFallBackToTheReferences) {
  for (const FormatId f : {F::INT8_CHANNEL, F::INT4_GROUP, F::NF4, F::E2M1}) {
    const CpuRowKernels k = cpu_row_kernels(f, CpuIsa::kAvx2);
    EXPECT_EQ(k.dequantize, traits(f).dequantize_ref) << format_name(f);
    EXPECT_EQ(k.vec_dot, traits(f).vec_dot_ref) << format_name(f);
  }
}

}  // namespace
}  // namespace imp
