// CUDA GEMV and device dequantization against the CPU references.
//
// GPU tests skip (GTEST_SKIP) when no device is visible; the host-side tests (dispatch
// rules, input validation, the decode helpers run on the CPU) always run.
//
// Tolerance of the GEMV: ‖y − ref‖₂ / ‖ref‖₂ ≤ 1e-5, ref = FP64 dot of the CPU reference
// dequantization with x. The kernels decode every weight to exactly the reference fp32
// value (proven bitwise by the Dequant tests), so the only error is FP32 summation: each
// lane adds ≤ cols/32 block partials (≤ 136 here) and a 5-level shuffle tree, about
// √136 · 2^-24 · Σ|w·x| / |Σ w·x| ≈ 1e-6 for these data; 1e-5 leaves 10× margin while a
// single wrong weight nibble (≈ 1/√cols of a row's energy, > 1e-2) fails by orders of
// magnitude. The tensor-core kernels (GemvKernel::half_x, kMma layout) round x to f16
// first: they are held to the same 1e-5 against the FP64 dot with the f16-rounded x (their
// weights are exact too), and to 2e-3 against the exact-x reference — the f16 rounding
// bound 2^-11·Σ|w·x| / |Σ w·x| for these positive-mean data (named kHalfXTolerance).
// Weights and activations are drawn with a positive mean (U(−1,1) + 0.25) so
// that even a one-row result is not a near-cancellation that would make the ratio
// meaningless.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "backends/cuda/check.h"
#include "backends/cuda/decode_float.cuh"
#include "backends/cuda/decode_fp4.cuh"
#include "backends/cuda/decode_fp8.cuh"
#include "backends/cuda/decode_gguf.cuh"
#include "backends/cuda/decode_gguf_legacy.cuh"
#include "backends/cuda/decode_int4.cuh"
#include "backends/cuda/decode_kquant.cuh"
#include "backends/cuda/device.h"
#include "backends/cuda/forward_kernels.h"
#include "backends/cuda/gemv.h"
#include "backends/cuda/gemv_mma_layout.h"
#include "common/error.h"
#include "formats/bf16.h"
#include "formats/f16.h"
#include "formats/kquant_common.h"
#include "formats/quant_matrix.h"

namespace imp::cuda {
namespace {

constexpr FormatId kFormats[] = {
    FormatId::BF16,       FormatId::F16,        FormatId::Q4_0,
    FormatId::Q8_0,       FormatId::Q4_K,       FormatId::Q6_K,
    FormatId::NVFP4_CKPT, FormatId::FP8_E4M3_CHANNEL,
    // Added with the staged kernels and the split-plane tiers:
    FormatId::Q4_1,       FormatId::Q5_0,       FormatId::Q5_1,
    FormatId::IQ4_NL,     FormatId::MXFP4,      FormatId::NVFP4,
    FormatId::Q2_K,       FormatId::Q3_K,       FormatId::Q5_K,
    FormatId::IQ4_XS,     FormatId::MXFP4_CKPT, FormatId::FP8_E4M3_TENSOR,
    FormatId::FP8_E4M3_BLOCK128, FormatId::INT4_GROUP};

bool has_split(FormatId f) { return f == FormatId::Q4_0 || f == FormatId::Q8_0 || f == FormatId::Q6_K; }

// Row lengths per format: several block counts, awkward ones included (37 blocks of 32,
// 17 blocks of 256, 37 blocks of 16 for NVFP4 which no 32-wide kernel can take).
// The staged kernels (gemv_stage_kernel.cuh) need rows of a 16-byte multiple of bytes: the
// last case of each ggml block format is such a row whose block count is not a multiple of
// the stage (112 = 64 + 48 blocks of 32; 44 = 32 + 12 of 64; 40 = 32 + 8 of 256), so full
// stages and the partial last stage both run; 37-block rows (not 16-byte multiples) run the
// per-element kernel only.
std::vector<int64_t> col_cases(FormatId f) {
  switch (f) {
    case FormatId::Q4_K:
    case FormatId::Q6_K: return {256, 256 * 3, 256 * 17};
    case FormatId::Q2_K:
    case FormatId::Q3_K:
    case FormatId::Q5_K:
    case FormatId::IQ4_XS: return {256, 256 * 3, 256 * 17, 256 * 40};
    case FormatId::Q4_0:
    case FormatId::Q8_0: return {32, 32 * 37, 256 * 16};
    case FormatId::Q4_1:
    case FormatId::Q5_0:
    case FormatId::Q5_1:
    case FormatId::IQ4_NL:
    case FormatId::MXFP4: return {32, 32 * 37, 256 * 16, 32 * 112};
    case FormatId::NVFP4: return {64, 64 * 37, 256 * 16, 64 * 44};
    case FormatId::NVFP4_CKPT: return {16 * 37, 32 * 37, 256 * 16};
    case FormatId::MXFP4_CKPT: return {32, 32 * 37, 256 * 16};
    case FormatId::INT4_GROUP: return {32, 32 * 37, 256 * 16};  // group 32, 32, 128 (int4_group())
    case FormatId::FP8_E4M3_BLOCK128: return {17, 32 * 37, 256 * 16 + 48};  // partial last tile
    default: return {17, 32 * 37, 256 * 16};  // 17: only the per-element kernel fits
  }
}
// INT4_GROUP's group for a row length (0 for every other format).
int32_t int4_group(FormatId f, int64_t cols) {
  if (f != FormatId::INT4_GROUP) return 0;
  return cols % 128 == 0 ? 128 : 32;
}
constexpr int64_t kRowCases[] = {1, 17, 129, 4099};

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng) + 0.25f;
  return v;
}

// The CPU reference quantizer, or nullopt while the format's reference is still a stub.
std::optional<OwnedQuantMatrix> quantize_or_skip(FormatId f, const std::vector<float>& w, int64_t rows, int64_t cols) {
  try {
    return quantize(f, w, rows, cols, int4_group(f, cols));
  } catch (const Error& e) {
    if (std::string(e.what()).find("not implemented yet") != std::string::npos) return std::nullopt;
    throw;
  }
}

struct DeviceBuffer {
  void* p = nullptr;
  size_t bytes = 0;
  explicit DeviceBuffer(size_t n) : bytes(n) {
    if (n) IMP_CUDA_CHECK(cudaMalloc(&p, n));
  }
  DeviceBuffer(const void* host, size_t n) : DeviceBuffer(n) {
    if (n) IMP_CUDA_CHECK(cudaMemcpy(p, host, n, cudaMemcpyHostToDevice));
  }
  ~DeviceBuffer() { cudaFree(p); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <class T>
  std::vector<T> download() const {
    std::vector<T> out(bytes / sizeof(T));
    IMP_CUDA_CHECK(cudaMemcpy(out.data(), p, bytes, cudaMemcpyDeviceToHost));
    return out;
  }
  void poison() { IMP_CUDA_CHECK(cudaMemset(p, 0xFF, bytes)); }  // all-ones = NaN as F32
};

// A quantized matrix on the device in one layout (kSplit made by the device repack).
struct DeviceWeights {
  DeviceBuffer data, scales, zeros;
  DeviceMatrix m;
  DeviceWeights(const OwnedQuantMatrix& q, WeightLayout layout)
      : data(size_t(device_data_bytes(q.format, layout, q.rows, q.cols))),
        scales(size_t(device_scale_bytes(q.format, layout, q.rows, q.cols, q.group))),
        zeros(q.zeros.data(), q.zeros.size()) {
    m = {q.format, q.rows, q.cols, data.p, scales.p, q.tensor_scale, layout, zeros.p, q.group};
    if (layout == WeightLayout::kMma) {
      DeviceBuffer native(q.data.data(), q.data.size());
      const bool d_plane = mma_has_own_scale_plane(q.format);
      if (!d_plane) IMP_CUDA_CHECK(cudaMemcpy(scales.p, q.scales.data(), q.scales.size(), cudaMemcpyHostToDevice));
      repack_mma(q.format, native.p, q.rows, q.cols, data.p, d_plane ? scales.p : nullptr, nullptr);
      IMP_CUDA_CHECK(cudaDeviceSynchronize());
    } else if (layout == WeightLayout::kNative) {
      IMP_CUDA_CHECK(cudaMemcpy(data.p, q.data.data(), q.data.size(), cudaMemcpyHostToDevice));
      if (!q.scales.empty()) IMP_CUDA_CHECK(cudaMemcpy(scales.p, q.scales.data(), q.scales.size(), cudaMemcpyHostToDevice));
    } else {
      DeviceBuffer native(q.data.data(), q.data.size());
      repack_split(q.format, native.p, q.rows, q.cols, data.p, scales.p, nullptr);
      IMP_CUDA_CHECK(cudaDeviceSynchronize());
    }
  }
};

// Every layout a matrix of this format and row length can be held in.
std::vector<WeightLayout> layouts(FormatId f, int64_t cols) {
  std::vector<WeightLayout> out = {WeightLayout::kNative};
  if (has_split(f)) out.push_back(WeightLayout::kSplit);
  if (has_mma_layout(f, cols)) out.push_back(WeightLayout::kMma);
  return out;
}

std::string label(FormatId f, WeightLayout l, int64_t rows, int64_t cols) {
  const char* name = l == WeightLayout::kSplit ? "split" : l == WeightLayout::kMma ? "mma" : "native";
  return fmt::format("{} {} {}×{}", format_name(f), name, rows, cols);
}

constexpr double kHalfXTolerance = 2e-3;

// x as the tensor-core kernels see it: clamped to ±65504, rounded to f16 (nearest even).
std::vector<float> half_rounded(const std::vector<float>& x) {
  std::vector<float> h(x.size());
  for (size_t i = 0; i < x.size(); ++i) h[i] = f16_to_f32(f32_to_f16(std::clamp(x[i], -65504.0f, 65504.0f)));
  return h;
}

// ---- GPU: GEMV, every applicable kernel, against the FP64 reference ---------------------
class CudaGemv : public ::testing::TestWithParam<FormatId> {};

TEST_P(CudaGemv, EveryKernelMatchesReferenceOnAwkwardShapes) {
  if (device_count() == 0) GTEST_SKIP() << "no CUDA device visible";
  const FormatId f = GetParam();
  int kernels_run = 0;
  for (int64_t rows : kRowCases) {
    for (int64_t cols : col_cases(f)) {
      if (rows * cols > (int64_t(1) << 23)) continue;  // keeps the CPU reference quick
      const uint32_t seed = uint32_t(rows * 7919 + cols * 31 + int(f));
      const auto w = random_floats(size_t(rows * cols), seed);
      const auto x = random_floats(size_t(cols), seed + 1);
      const auto q = quantize_or_skip(f, w, rows, cols);
      if (!q) GTEST_SKIP() << format_name(f) << ": CPU reference quantizer not implemented yet";
      const std::vector<float> deq = dequantize(q->view());
      const std::vector<float> xh = half_rounded(x);
      std::vector<double> ref(size_t(rows), 0.0), ref_h(size_t(rows), 0.0);
      double ref_norm = 0.0, ref_h_norm = 0.0;
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) {
          ref[size_t(r)] += double(deq[size_t(r * cols + c)]) * double(x[size_t(c)]);
          ref_h[size_t(r)] += double(deq[size_t(r * cols + c)]) * double(xh[size_t(c)]);
        }
        ref_norm += ref[size_t(r)] * ref[size_t(r)];
        ref_h_norm += ref_h[size_t(r)] * ref_h[size_t(r)];
      }
      ref_norm = std::sqrt(ref_norm);
      ref_h_norm = std::sqrt(ref_h_norm);
      ASSERT_GT(ref_norm, 0.0);
      DeviceBuffer dx(x.data(), x.size() * sizeof(float));
      DeviceBuffer dy(size_t(rows) * sizeof(float));
      for (WeightLayout layout : layouts(f, cols)) {
        DeviceWeights dw(*q, layout);
        for (const GemvKernel& k : gemv_kernels()) {
          // Integer-dot kernels quantize x: held to the CPU vec_dot instead (test_gemv_dp4a.cc).
          if (k.quantizes_x) continue;
          if (!can_implement(k, dw.m, static_cast<const float*>(dx.p), static_cast<float*>(dy.p)).ok) continue;
          dy.poison();
          k.launch(dw.m, static_cast<const float*>(dx.p), static_cast<float*>(dy.p), nullptr, GemvOut::kStore);
          IMP_CUDA_CHECK(cudaDeviceSynchronize());
          const auto y = dy.download<float>();
          double err = 0.0, err_h = 0.0;
          for (int64_t r = 0; r < rows; ++r) {
            ASSERT_TRUE(std::isfinite(y[size_t(r)])) << k.name << " " << label(f, layout, rows, cols) << " row " << r;
            err += (double(y[size_t(r)]) - ref[size_t(r)]) * (double(y[size_t(r)]) - ref[size_t(r)]);
            err_h += (double(y[size_t(r)]) - ref_h[size_t(r)]) * (double(y[size_t(r)]) - ref_h[size_t(r)]);
          }
          if (k.half_x) {
            EXPECT_LE(std::sqrt(err_h) / ref_h_norm, 1e-5) << k.name << " " << label(f, layout, rows, cols) << " (f16 x)";
            EXPECT_LE(std::sqrt(err) / ref_norm, kHalfXTolerance) << k.name << " " << label(f, layout, rows, cols);
          } else {
            EXPECT_LE(std::sqrt(err) / ref_norm, 1e-5) << k.name << " " << label(f, layout, rows, cols);
          }
          ++kernels_run;
        }
      }
    }
  }
  EXPECT_GT(kernels_run, 0);
}

// The dispatcher's choice runs too, and the fast kernel is the one chosen where it fits.
TEST_P(CudaGemv, DispatcherPicksVectorKernelForAlignedShapes) {
  if (device_count() == 0) GTEST_SKIP() << "no CUDA device visible";
  const FormatId f = GetParam();
  const int64_t rows = 33, cols = 2048;  // 8 Q3_K blocks = 880 B: a 16-byte multiple
  const auto w = random_floats(size_t(rows * cols), 7);
  const auto x = random_floats(size_t(cols), 8);
  const auto q = quantize_or_skip(f, w, rows, cols);
  if (!q) GTEST_SKIP() << format_name(f) << ": CPU reference quantizer not implemented yet";
  const WeightLayout fast = has_split(f) ? WeightLayout::kSplit : WeightLayout::kNative;
  DeviceWeights dw(*q, fast);
  DeviceBuffer dx(x.data(), x.size() * sizeof(float));
  DeviceBuffer dy(size_t(rows) * sizeof(float));
  dy.poison();
  const std::string_view name = gemv(dw.m, static_cast<const float*>(dx.p), static_cast<float*>(dy.p), nullptr);
  IMP_CUDA_CHECK(cudaDeviceSynchronize());
  // FP8 per tensor / per channel read their native layout on the tensor cores (Fp8Mma).
  const bool fp8_mma = f == FormatId::FP8_E4M3_TENSOR || f == FormatId::FP8_E4M3_CHANNEL;
  if (fp8_mma) {
    EXPECT_NE(name.find("_mma_bulk"), std::string_view::npos) << name;
  } else {
    EXPECT_TRUE(name.find("vec16") != std::string_view::npos || name.find("dp4a") != std::string_view::npos) << name;
  }
  const auto y = dy.download<float>();
  for (float v : y) EXPECT_TRUE(std::isfinite(v)) << name;
}

// ---- GPU: device dequantization is bit-identical to the CPU reference -------------------
TEST_P(CudaGemv, DeviceDequantizeIsBitIdentical) {
  if (device_count() == 0) GTEST_SKIP() << "no CUDA device visible";
  const FormatId f = GetParam();
  for (int64_t rows : {int64_t(1), int64_t(17), int64_t(129)}) {
   for (int64_t cols : {col_cases(f)[1], int64_t(256 * 16)}) {
    const auto w = random_floats(size_t(rows * cols), uint32_t(rows + 100 * int(f)));
    const auto q = quantize_or_skip(f, w, rows, cols);
    if (!q) GTEST_SKIP() << format_name(f) << ": CPU reference quantizer not implemented yet";
    const std::vector<float> ref = dequantize(q->view());
    for (WeightLayout layout : layouts(f, cols)) {
      DeviceWeights dw(*q, layout);
      DeviceBuffer out(ref.size() * sizeof(float));
      out.poison();
      dequantize(dw.m, static_cast<float*>(out.p), nullptr);
      IMP_CUDA_CHECK(cudaDeviceSynchronize());
      const auto got = out.download<uint32_t>();
      std::vector<uint32_t> want(ref.size());
      std::memcpy(want.data(), ref.data(), ref.size() * sizeof(float));
      size_t bad = 0;
      for (size_t i = 0; i < want.size(); ++i) bad += got[i] != want[i];
      EXPECT_EQ(bad, 0u) << label(f, layout, rows, cols) << ": elements differing bitwise";
      // The kMma layout also decodes straight to BF16: the reference rounded to nearest even.
      DeviceBuffer out16(ref.size() * sizeof(uint16_t));
      if (dequantize_bf16(dw.m, static_cast<uint16_t*>(out16.p), nullptr)) {
        EXPECT_EQ(layout, WeightLayout::kMma);
        IMP_CUDA_CHECK(cudaDeviceSynchronize());
        const auto got16 = out16.download<uint16_t>();
        size_t bad16 = 0;
        for (size_t i = 0; i < ref.size(); ++i) bad16 += got16[i] != ::imp::f32_to_bf16(ref[i]);
        EXPECT_EQ(bad16, 0u) << label(f, layout, rows, cols) << ": BF16 elements differing";
      } else {
        EXPECT_NE(layout, WeightLayout::kMma) << label(f, layout, rows, cols);
      }
    }
   }
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, CudaGemv, ::testing::ValuesIn(kFormats),
                         [](const auto& info) { return std::string(format_name(info.param)); });

// Random 16-bit codes, NaN and Inf included: the device decoders keep payloads like the CPU.
TEST(CudaDequant, HalfFormatsBitIdenticalOnAllCodes) {
  if (device_count() == 0) GTEST_SKIP() << "no CUDA device visible";
  const int64_t rows = 1, cols = 65536;
  std::vector<uint8_t> bytes(size_t(cols) * 2);
  for (int64_t i = 0; i < cols; ++i) std::memcpy(&bytes[size_t(2 * i)], &i, 2);  // every code once
  for (FormatId f : {FormatId::BF16, FormatId::F16}) {
    OwnedQuantMatrix q;
    q.format = f;
    q.rows = rows;
    q.cols = cols;
    q.data = bytes;
    const std::vector<float> ref = dequantize(q.view());
    DeviceWeights dw(q, WeightLayout::kNative);
    DeviceBuffer out(ref.size() * sizeof(float));
    out.poison();
    dequantize(dw.m, static_cast<float*>(out.p), nullptr);
    IMP_CUDA_CHECK(cudaDeviceSynchronize());
    const auto got = out.download<uint32_t>();
    EXPECT_EQ(std::memcmp(got.data(), ref.data(), ref.size() * sizeof(float)), 0) << format_name(f);
  }
}

// ---- host: the decode helpers themselves, run on the CPU, against the references ---------
// (Runs without a GPU; a format whose CPU reference is still a stub is skipped.)
TEST(CudaDecodeHelpersOnHost, MatchCpuReferenceBitwise) {
  int checked = 0;
  for (FormatId f : kFormats) {
    const int64_t rows = 3, cols = col_cases(f)[1];
    const auto w = random_floats(size_t(rows * cols), 99 + uint32_t(f));
    const auto q = quantize_or_skip(f, w, rows, cols);
    if (!q) continue;
    const std::vector<float> ref = dequantize(q->view());
    const QuantMatrix v = q->view();
    for (int64_t r = 0; r < rows; ++r) {
      const ConstRowPlanes p = row_planes(v, r);
      const auto* d = static_cast<const uint8_t*>(p.data);
      const auto* s = static_cast<const uint8_t*>(p.scales);
      for (int64_t e = 0; e < cols; ++e) {
        float got = 0.0f;
        switch (f) {
          case FormatId::BF16: got = decode_bf16(d, e); break;
          case FormatId::F16: got = decode_f16(d, e); break;
          case FormatId::Q4_0: got = decode_q4_0(d, e); break;
          case FormatId::Q8_0: got = decode_q8_0(d, e); break;
          case FormatId::Q4_K: got = decode_q4_k(d, e); break;
          case FormatId::Q6_K: got = decode_q6_k(d, e); break;
          case FormatId::NVFP4_CKPT: got = decode_nvfp4_ckpt(d, s, p.tensor_scale, e); break;
          case FormatId::FP8_E4M3_CHANNEL: got = decode_fp8_e4m3_channel(d, load_le_f32(s), e); break;
          case FormatId::Q4_1: got = decode_q4_1(d, e); break;
          case FormatId::Q5_0: got = decode_q5_0(d, e); break;
          case FormatId::Q5_1: got = decode_q5_1(d, e); break;
          case FormatId::IQ4_NL: got = decode_iq4_nl(d, e); break;
          case FormatId::MXFP4: got = decode_mxfp4(d, e); break;
          case FormatId::NVFP4: got = decode_nvfp4(d, e); break;
          case FormatId::Q2_K: got = decode_q2_k(d, e); break;
          case FormatId::Q3_K: got = decode_q3_k(d, e); break;
          case FormatId::Q5_K: got = decode_q5_k(d, e); break;
          case FormatId::IQ4_XS: got = decode_iq4_xs(d, e); break;
          case FormatId::MXFP4_CKPT: got = decode_mxfp4_ckpt(d, s, e); break;
          case FormatId::FP8_E4M3_TENSOR: got = decode_fp8_e4m3_tensor(d, p.tensor_scale, e); break;
          case FormatId::FP8_E4M3_BLOCK128: got = decode_fp8_e4m3_block128(d, s, e); break;
          case FormatId::INT4_GROUP:
            got = decode_int4_group(d, s, static_cast<const uint8_t*>(p.zeros), p.group, e);
            break;
          default: FAIL();
        }
        const float want = ref[size_t(r * cols + e)];
        ASSERT_EQ(f32_to_bits(got), f32_to_bits(want)) << format_name(f) << " row " << r << " element " << e;
      }
    }
    ++checked;
  }
  EXPECT_EQ(checked, int(std::size(kFormats)));  // every format has its CPU reference now
}

// ---- host: dispatch rules and input validation (no device memory is touched) ------------
DeviceMatrix fake_matrix(FormatId f, WeightLayout l, int64_t rows, int64_t cols) {
  // 256-byte aligned dummy addresses: select_gemv_kernel only inspects them.
  return {f, rows, cols, reinterpret_cast<const void*>(uintptr_t(0x100000)),
          reinterpret_cast<const void*>(uintptr_t(0x200000)), 1.0f, l,
          reinterpret_cast<const void*>(uintptr_t(0x500000)), int4_group(f, cols)};
}
const float* kFakeX = reinterpret_cast<const float*>(uintptr_t(0x300000));
float* const kFakeY = reinterpret_cast<float*>(uintptr_t(0x400000));

struct EnvGuard {
  explicit EnvGuard(const char* value) { setenv("IMP_CUDA_DISABLE_KERNELS", value, 1); }
  ~EnvGuard() { unsetenv("IMP_CUDA_DISABLE_KERNELS"); }
};

TEST(CudaGemvDispatch, EveryFormatHasAFastAndAGenericKernel) {
  for (FormatId f : kFormats) {
    const WeightLayout fast = has_split(f) ? WeightLayout::kSplit : WeightLayout::kNative;
    const auto& k = select_gemv_kernel(fake_matrix(f, fast, 64, 4096), kFakeX, kFakeY);
    // (FP8 per tensor / per channel: the tensor-core kernel reads their native layout.)
    EXPECT_TRUE(k.name.find("vec16") != std::string_view::npos || k.name.find("dp4a") != std::string_view::npos ||
                k.name.find("_mma") != std::string_view::npos)
        << format_name(f) << " chose " << k.name;
    // The native layout always has a kernel, at any alignment of x.
    const auto& g = select_gemv_kernel(fake_matrix(f, WeightLayout::kNative, 3, 4096), kFakeX + 1, kFakeY);
    // (the integer-dot kernels read x only through their quantizer, so they take it too).
    EXPECT_TRUE(g.name.find("elem") != std::string_view::npos || g.name.find("dp4a") != std::string_view::npos)
        << format_name(f) << " chose " << g.name;
  }
}

TEST(CudaGemvDispatch, EnvVarDisablesKernelsByName) {
  const DeviceMatrix m = fake_matrix(FormatId::BF16, WeightLayout::kNative, 8, 256);
  EXPECT_EQ(select_gemv_kernel(m, kFakeX, kFakeY).name, "bf16_vec16");
  {
    EnvGuard env("q4_0_elem, bf16_vec16");
    EXPECT_EQ(select_gemv_kernel(m, kFakeX, kFakeY).name, "bf16_elem");
  }
  EnvGuard env("bf16_vec16,bf16_elem");
  try {
    select_gemv_kernel(m, kFakeX, kFakeY);
    FAIL() << "expected an error when every kernel is disabled";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bf16_vec16: disabled by IMP_CUDA_DISABLE_KERNELS"), std::string::npos) << msg;
    EXPECT_NE(msg.find("bf16_elem: disabled by IMP_CUDA_DISABLE_KERNELS"), std::string::npos) << msg;
  }
}

TEST(CudaGemvDispatch, ReasonsNameShapeAndAlignment) {
  // cols 17: the vector kernel refuses (not a multiple of 8); with x misaligned to 2 bytes
  // the per-element kernel refuses too, and the error lists both reasons.
  const DeviceMatrix m = fake_matrix(FormatId::F16, WeightLayout::kNative, 4, 17);
  const float* bad_x = reinterpret_cast<const float*>(uintptr_t(0x300002));
  try {
    select_gemv_kernel(m, bad_x, kFakeY);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("f16_vec16: cols 17 is not a multiple of 8"), std::string::npos) << msg;
    EXPECT_NE(msg.find("f16_elem: x pointer is not 4-byte aligned"), std::string::npos) << msg;
  }
}

TEST(CudaGemvDispatch, RejectsBadInput) {
  EXPECT_THROW(select_gemv_kernel(fake_matrix(FormatId::NF4, WeightLayout::kNative, 4, 256), kFakeX, kFakeY), Error);
  DeviceMatrix no_group = fake_matrix(FormatId::INT4_GROUP, WeightLayout::kNative, 4, 256);
  no_group.group = 0;
  EXPECT_THROW(select_gemv_kernel(no_group, kFakeX, kFakeY), Error);
  DeviceMatrix no_zeros = fake_matrix(FormatId::INT4_GROUP, WeightLayout::kNative, 4, 256);
  no_zeros.zeros = nullptr;
  EXPECT_THROW(select_gemv_kernel(no_zeros, kFakeX, kFakeY), Error);
  // A staged kernel refuses rows that are not 16-byte multiples (37 Q4_1 blocks = 740 B).
  EXPECT_EQ(select_gemv_kernel(fake_matrix(FormatId::Q4_1, WeightLayout::kNative, 4, 32 * 37), kFakeX, kFakeY).name,
            "q4_1_elem");
  EXPECT_THROW(select_gemv_kernel(fake_matrix(FormatId::Q4_0, WeightLayout::kNative, 4, 48), kFakeX, kFakeY), Error);
  EXPECT_THROW(select_gemv_kernel(fake_matrix(FormatId::Q4_0, WeightLayout::kNative, 0, 64), kFakeX, kFakeY), Error);
  EXPECT_THROW(select_gemv_kernel(fake_matrix(FormatId::Q4_K, WeightLayout::kSplit, 4, 256), kFakeX, kFakeY), Error);
  DeviceMatrix no_scales = fake_matrix(FormatId::NVFP4_CKPT, WeightLayout::kNative, 4, 64);
  no_scales.scales = nullptr;
  EXPECT_THROW(select_gemv_kernel(no_scales, kFakeX, kFakeY), Error);
  EXPECT_THROW(repack_split(FormatId::BF16, kFakeX, 4, 64, kFakeY, kFakeY, nullptr), Error);
}

// ---- the kMma layout -------------------------------------------------------------------
// unit_column and code_position are inverse bijections between (thread, word, position)
// and the unit's columns, and thread c's codes are columns 4c … 4c+3 of each 16-column
// chunk (its share of x is one float4 per chunk).
TEST(CudaMmaLayout, MapsAreInverseBijections) {
  for (FormatId f : {FormatId::Q4_0, FormatId::Q4_K, FormatId::Q5_K, FormatId::Q6_K, FormatId::Q8_0,
                     FormatId::NVFP4_CKPT, FormatId::MXFP4_CKPT}) {
    const int U = mma_layout::unit_cols(f), per_word = mma_layout::codes_per_word(f);
    ASSERT_EQ(U, 4 * 4 * per_word) << format_name(f);
    std::vector<int> seen(size_t(U), 0);
    for (int c = 0; c < 4; ++c) {
      for (int w = 0; w < 4; ++w) {
        for (int p = 0; p < per_word; ++p) {
          const int e = mma_layout::unit_column(f, c, w, p);
          ASSERT_GE(e, 0);
          ASSERT_LT(e, U);
          ++seen[size_t(e)];
          EXPECT_EQ((e % 16) / 4, c) << format_name(f) << " column " << e;
          int c2 = -1, w2 = -1;
          EXPECT_EQ(mma_layout::code_position(f, e, c2, w2), p) << format_name(f) << " column " << e;
          EXPECT_EQ(c2, c);
          EXPECT_EQ(w2, w);
        }
      }
    }
    for (int e = 0; e < U; ++e) EXPECT_EQ(seen[size_t(e)], 1) << format_name(f) << " column " << e;
  }
  EXPECT_EQ(mma_layout::unit_cols(FormatId::Q3_K), 0);
}

// The high-bit formats' two planes (host, runs in CI): CPU-quantized Q5_K and Q6_K rows packed
// with the functions the repack uses; every code the kernels' bit expressions (hi_f16_biased)
// produce from a lo word and its shifted hi word is the code of that column in the native
// block — read here the way ggml's dequantize_row_q5_K / _q6_K walk it — and with the unit's
// scales (Q5_K: the block header, Q6_K: the slot) gives the CPU dequantizer's value bit for
// bit. Every bit of the hi plane belongs to exactly one code.
template <int kHiBits>
void check_hi_planes(FormatId f) {
  SCOPED_TRACE(format_name(f));
  const int64_t rows = 3, cols = 256 * 5;
  const int block = f == FormatId::Q6_K ? 210 : 176;
  const OwnedQuantMatrix q = quantize(f, random_floats(size_t(rows * cols), 606 + uint32_t(f)), rows, cols);
  const std::vector<float> ref = dequantize(q.view());
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = q.data.data() + r * (cols / 256) * block;
    std::vector<int> code(static_cast<size_t>(cols));  // the unsigned code of column e, in ggml's loop order
    for (int64_t b = 0; b < cols / 256; ++b) {
      if (f == FormatId::Q6_K) {
        const uint8_t *ql = row + block * b, *qh = ql + 128;
        for (int n = 0; n < 256; n += 128, ql += 64, qh += 32) {
          for (int l = 0; l < 32; ++l) {
            const int64_t y = 256 * b + n + l;
            code[size_t(y)] = (ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4;
            code[size_t(y + 32)] = (ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4;
            code[size_t(y + 64)] = (ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4;
            code[size_t(y + 96)] = (ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4;
          }
        }
      } else {  // Q5_K: d dmin scales[12] qh[32] qs[128]
        const uint8_t *qh = row + block * b + 16, *ql = qh + 32;
        for (int j = 0, bit = 0; j < 256; j += 64, ql += 32, bit += 2) {
          for (int l = 0; l < 32; ++l) {
            code[size_t(256 * b + j + l)] = (ql[l] & 0xF) | ((qh[l] >> bit) & 1) << 4;
            code[size_t(256 * b + j + 32 + l)] = (ql[l] >> 4) | ((qh[l] >> (bit + 1)) & 1) << 4;
          }
        }
      }
    }
    for (int u = 0; u < int(cols / 128); ++u) {
      const uint8_t* blk = row + block * (u / 2);
      uint8_t slot[16];
      mma_layout::q6_scale_slot(blk, u, slot);
      const auto unit_code = [&](int e) { return code[size_t(u * 128 + e)]; };
      // The reference value of a code at chunk j of the unit.
      const auto value = [&](int j, int qv) {
        if (f == FormatId::Q6_K) return f16_to_f32(uint16_t(slot[8] | slot[9] << 8)) * float(int8_t(slot[j])) * float(qv - 32);
        uint8_t sc = 0, m = 0;
        get_scale_min_k4(4 * (u & 1) + j / 2, blk + 4, &sc, &m);
        const float d = f16_to_f32(uint16_t(blk[0] | blk[1] << 8)), dmin = f16_to_f32(uint16_t(blk[2] | blk[3] << 8));
        return d * float(sc) * float(qv) - dmin * float(m);
      };
      for (int c = 0; c < 4; ++c) {
        const uint32_t hi[2] = {mma_layout::pack_hi_word(f, c, 0, unit_code),
                                kHiBits == 2 ? mma_layout::pack_hi_word(f, c, 1, unit_code) : 0u};
        for (int w = 0; w < 4; ++w) {
          const uint32_t v = mma_layout::pack_word(f, c, w, unit_code);
          const uint32_t hh = hi[mma_layout::hi_word_offset(f, 0, w) / 4] >> mma_layout::hi_word_shift(f, w);
          for (int k = 0; k < 4; ++k) {
            const uint32_t pair = mma_layout::hi_f16_biased<kHiBits>(v, hh, k);
            for (int half = 0; half < 2; ++half) {
              const float fv = f16_to_f32(uint16_t(pair >> (16 * half)));
              const int got = k < 2 ? int(fv) - 1024 : (int(fv) - 1024) / 16;
              const int chunk = 2 * w + k / 2, t = 2 * (k % 2) + half, e = 16 * chunk + 4 * c + t;
              ASSERT_EQ(fv, k < 2 ? 1024.0f + float(got) : 1024.0f + 16.0f * float(got)) << "not an exact pair";
              ASSERT_EQ(got, unit_code(e)) << "row " << r << " unit " << u << " column " << e;
              EXPECT_EQ(value(chunk, got), ref[size_t(r * cols + u * 128 + e)]) << "column " << u * 128 + e;
            }
          }
        }
      }
      // Every hi bit of each thread is some code's (the largest code everywhere sets them all).
      const auto all = [](int) { return kHiBits == 2 ? 63 : 31; };
      for (int c = 0; c < 4; ++c) {
        for (int i = 0; i < kHiBits; ++i) EXPECT_EQ(mma_layout::pack_hi_word(f, c, i, all), 0xFFFFFFFFu);
      }
    }
  }
}
TEST(CudaMmaLayout, HighBitPlanesDecodeToTheNativeCodes) {
  check_hi_planes<2>(FormatId::Q6_K);
  check_hi_planes<1>(FormatId::Q5_K);
}

// Tall matrices take the two-tile CTA (≥ 8192 rows), and an activation beyond the f16 range
// is clamped to ±65504 rather than becoming Inf: y stays finite and equals the FP64 dot with
// the clamped, f16-rounded x.
TEST(CudaGemvMma, TallMatricesAndOutlierActivations) {
  if (device_count() == 0) GTEST_SKIP() << "no CUDA device visible";
  for (FormatId f : {FormatId::Q4_0, FormatId::Q4_K, FormatId::Q5_K, FormatId::Q6_K, FormatId::Q8_0, FormatId::NVFP4_CKPT,
                     FormatId::MXFP4_CKPT}) {
    const int64_t rows = 16400, cols = 512;
    const auto w = random_floats(size_t(rows * cols), 11 + uint32_t(f));
    auto x = random_floats(size_t(cols), 12);
    x[5] = 1e6f;
    x[200] = -3e5f;
    const auto q = quantize(f, w, rows, cols);
    const std::vector<float> deq = dequantize(q.view());
    const std::vector<float> xh = half_rounded(x);
    DeviceWeights dw(q, WeightLayout::kMma);
    DeviceBuffer dx(x.data(), x.size() * sizeof(float));
    DeviceBuffer dy(size_t(rows) * sizeof(float));
    dy.poison();
    const std::string_view name = gemv(dw.m, static_cast<const float*>(dx.p), static_cast<float*>(dy.p), nullptr);
    IMP_CUDA_CHECK(cudaDeviceSynchronize());
    EXPECT_NE(name.find("_mma"), std::string_view::npos) << name;
    const auto y = dy.download<float>();
    double err = 0.0, norm = 0.0;
    for (int64_t r = 0; r < rows; ++r) {
      double ref = 0.0;
      for (int64_t c = 0; c < cols; ++c) ref += double(deq[size_t(r * cols + c)]) * double(xh[size_t(c)]);
      ASSERT_TRUE(std::isfinite(y[size_t(r)])) << format_name(f) << " row " << r;
      err += (double(y[size_t(r)]) - ref) * (double(y[size_t(r)]) - ref);
      norm += ref * ref;
    }
    EXPECT_LE(std::sqrt(err / norm), 1e-5) << format_name(f);
  }
}

TEST(CudaGemvDispatch, MmaLayoutNeedsWholeUnits) {
  EXPECT_TRUE(has_mma_layout(FormatId::Q8_0, 64));
  EXPECT_FALSE(has_mma_layout(FormatId::Q4_0, 64));
  EXPECT_FALSE(has_mma_layout(FormatId::Q3_K, 4096));
  EXPECT_FALSE(has_mma_layout(FormatId::Q6_K, 64));
  EXPECT_THROW(device_data_bytes(FormatId::Q4_0, WeightLayout::kMma, 4, 96), Error);
  EXPECT_THROW(repack_mma(FormatId::Q3_K, kFakeX, 4, 256, kFakeY, kFakeY, nullptr), Error);
  EXPECT_EQ(device_data_bytes(FormatId::Q5_K, WeightLayout::kMma, 3, 512), 3 * 320);  // 64 + 16 bytes per unit
  EXPECT_EQ(device_scale_bytes(FormatId::Q5_K, WeightLayout::kMma, 3, 512), 3 * 2 * 16);  // Q4_K's headers
  // Q6_K: 96 payload bytes (64 of nibbles, 32 of high bits) and one 16-byte slot per 128 columns.
  EXPECT_EQ(device_data_bytes(FormatId::Q6_K, WeightLayout::kMma, 3, 512), 3 * 384);
  EXPECT_EQ(device_scale_bytes(FormatId::Q6_K, WeightLayout::kMma, 3, 512), 3 * 4 * 16);
  EXPECT_EQ(select_gemv_kernel(fake_matrix(FormatId::Q6_K, WeightLayout::kMma, 64, 4096), kFakeX, kFakeY).name,
            "q6_k_mma_bulk");
  EXPECT_EQ(device_scale_bytes(FormatId::Q4_K, WeightLayout::kMma, 3, 512), 3 * 2 * 16);
  EXPECT_EQ(device_data_bytes(FormatId::NVFP4_CKPT, WeightLayout::kMma, 3, 256), 3 * 128);
  EXPECT_EQ(device_scale_bytes(FormatId::Q4_0, WeightLayout::kMma, 3, 256), 3 * 8 * 2);
  EXPECT_EQ(select_gemv_kernel(fake_matrix(FormatId::Q4_0, WeightLayout::kMma, 64, 4096), kFakeX, kFakeY).name,
            "q4_0_mma_bulk");
  // The bulk form's tensor maps need 16-byte row strides: 4352 MXFP4 columns have 136 scale
  // bytes per row (the shared-x form serves them); 4352 Q4_0 columns have 272.
  EXPECT_EQ(select_gemv_kernel(fake_matrix(FormatId::MXFP4_CKPT, WeightLayout::kMma, 64, 34 * 128), kFakeX, kFakeY).name,
            "mxfp4_ckpt_mma_sx");
  EXPECT_EQ(select_gemv_kernel(fake_matrix(FormatId::Q4_0, WeightLayout::kMma, 64, 34 * 128), kFakeX, kFakeY).name,
            "q4_0_mma_bulk");
  EXPECT_EQ(select_gemv_kernel(fake_matrix(FormatId::FP8_E4M3_CHANNEL, WeightLayout::kNative, 64, 34 * 64), kFakeX,
                               kFakeY).name,
            "fp8_e4m3_channel_mma_bulk");
  // Rows longer than the shared x buffer take the register-x form.
  EXPECT_EQ(select_gemv_kernel(fake_matrix(FormatId::Q4_0, WeightLayout::kMma, 64, 32768 + 128), kFakeX, kFakeY).name,
            "q4_0_mma");
}

// The tensor-core kernels of a format, lower case, comma-separated (for EnvGuard), from the
// given forms ("_mma_bulk", "_mma_sx", "_mma").
std::string tensor_core_names(FormatId f, std::initializer_list<const char*> forms = {"_mma_bulk", "_mma_sx", "_mma"}) {
  std::string base;
  for (char ch : std::string(format_name(f))) base += char(std::tolower(static_cast<unsigned char>(ch)));
  std::string out;
  for (const char* form : forms) out += (out.empty() ? "" : ",") + base + form;
  return out;
}

// GemvFusion: the RMSNorm inside the tensor-core GEMV gives what rmsnorm() then a GEMV
// gives (the sum of squares is only reduced in another order: within f16 rounding of x),
// and kAdd adds exactly the value kStore would write.
TEST(CudaGemvMma, NormPrologueAndAddEpilogue) {
  if (device_count() == 0) GTEST_SKIP() << "no CUDA device visible";
  for (FormatId f : {FormatId::Q4_0, FormatId::Q4_K, FormatId::Q5_K, FormatId::Q6_K, FormatId::Q8_0, FormatId::NVFP4_CKPT,
                     FormatId::FP8_E4M3_CHANNEL}) {
    const WeightLayout layout = f == FormatId::FP8_E4M3_CHANNEL ? WeightLayout::kNative : WeightLayout::kMma;
    const int64_t cols = 2304, rows = 400;
    const float eps = 1e-5f;
    const OwnedQuantMatrix q = quantize(f, random_floats(size_t(rows * cols), 400 + uint32_t(f)), rows, cols);
    const OwnedQuantMatrix up = quantize(f, random_floats(size_t(rows * cols), 410 + uint32_t(f)), rows, cols);
    auto x = random_floats(size_t(cols), 401);
    for (auto& v : x) v *= 7.0f;  // not already unit RMS
    const auto gain = random_floats(size_t(cols), 402);
    double ss = 0.0;
    for (float v : x) ss += double(v) * v;
    // Host rmsnorm in FP32 as rmsnorm_kernel computes it (sum in double here: order differs).
    const float scale = 1.0f / std::sqrt(float(ss / double(cols)) + eps);
    std::vector<float> xn(static_cast<size_t>(cols));
    for (int64_t c = 0; c < cols; ++c) xn[size_t(c)] = x[size_t(c)] * scale * gain[size_t(c)];
    DeviceWeights dw(q, layout), dup(up, layout);
    DeviceBuffer dx(x.data(), x.size() * 4), dxn(xn.data(), xn.size() * 4), dg(gain.data(), gain.size() * 4);
    DeviceBuffer y_ref(size_t(rows) * 4), y_norm(size_t(rows) * 4), s_ref(size_t(rows) * 4), s_norm(size_t(rows) * 4);
    const float* xp = static_cast<const float*>(dx.p);
    gemv(dw.m, static_cast<const float*>(dxn.p), static_cast<float*>(y_ref.p), nullptr);
    GemvFusion norm;
    norm.norm_gain = static_cast<const float*>(dg.p);
    norm.norm_eps = eps;
    const DeviceMatrix w[1] = {dw.m};
    float* const y[1] = {static_cast<float*>(y_norm.p)};
    ASSERT_TRUE(gemv_mma_fused(w, 1, xp, y, nullptr, norm)) << format_name(f);
    ASSERT_TRUE(gemv_mma_swiglu(dw.m, dup.m, static_cast<const float*>(dxn.p), static_cast<float*>(s_ref.p), nullptr));
    ASSERT_TRUE(gemv_mma_swiglu(dw.m, dup.m, xp, static_cast<float*>(s_norm.p), nullptr, norm));
    IMP_CUDA_CHECK(cudaDeviceSynchronize());
    auto rel = [](const std::vector<float>& a, const std::vector<float>& b) {
      double e = 0.0, n = 0.0;
      for (size_t i = 0; i < a.size(); ++i) e += (double(a[i]) - b[i]) * (double(a[i]) - b[i]), n += double(b[i]) * b[i];
      return std::sqrt(e / n);
    };
    EXPECT_LE(rel(y_norm.download<float>(), y_ref.download<float>()), 1e-4) << format_name(f) << " norm";
    EXPECT_LE(rel(s_norm.download<float>(), s_ref.download<float>()), 1e-4) << format_name(f) << " norm swiglu";

    // kAdd: y0 + W·x, bit for bit the host sum of y0 and the kStore result.
    const auto y0 = random_floats(size_t(rows), 403);
    DeviceBuffer y_add(y0.data(), y0.size() * 4), y_store(size_t(rows) * 4);
    gemv(dw.m, xp, static_cast<float*>(y_store.p), nullptr);
    GemvFusion add;
    add.out = GemvOut::kAdd;
    float* const ya[1] = {static_cast<float*>(y_add.p)};
    ASSERT_TRUE(gemv_mma_fused(w, 1, xp, ya, nullptr, add)) << format_name(f);
    // A non-tensor-core kernel adds the same way (GemvOut on every kernel).
    DeviceBuffer y_add_elem(y0.data(), y0.size() * 4);
    {
      EnvGuard env(tensor_core_names(f).c_str());
      gemv(dw.m, xp, static_cast<float*>(y_add_elem.p), nullptr, GemvOut::kAdd);
    }
    DeviceBuffer y_store_elem(size_t(rows) * 4);
    {
      EnvGuard env(tensor_core_names(f).c_str());
      gemv(dw.m, xp, static_cast<float*>(y_store_elem.p), nullptr);
    }
    IMP_CUDA_CHECK(cudaDeviceSynchronize());
    const auto st = y_store.download<float>(), ad = y_add.download<float>();
    const auto st_e = y_store_elem.download<float>(), ad_e = y_add_elem.download<float>();
    for (int64_t r = 0; r < rows; ++r) {
      ASSERT_EQ(ad[size_t(r)], y0[size_t(r)] + st[size_t(r)]) << format_name(f) << " row " << r;
      ASSERT_EQ(ad_e[size_t(r)], y0[size_t(r)] + st_e[size_t(r)]) << format_name(f) << " elem row " << r;
    }
  }
}

// The three tensor-core forms — bulk-copy (persistent CTAs, 16 warps), shared-x and
// register-x (8 warps) — compute each row from the same f16 x and exact weights, and
// differ only in FP32 summation order; the fused launch of one matrix is bit-identical to
// gemv(). 4352 columns: a partial last stage in the bulk form (34 units of the 4-bit
// formats, 68 of Q8_0 and FP8; MXFP4's 136-byte scale rows cannot be tensor-mapped, so the
// shared-x form serves it); 4608: whole stages; past 32768 columns only the register form
// runs. The tall case puts ~8 tiles on each CTA of the bulk form, so its ring wraps many
// times, and its last tile is ragged (zero-filled rows past the end).
TEST(CudaGemvMma, BulkSharedXAndRegisterXFormsAgree) {
  if (device_count() == 0) GTEST_SKIP() << "no CUDA device visible";
  for (FormatId f : {FormatId::Q4_0, FormatId::Q4_K, FormatId::Q5_K, FormatId::Q6_K, FormatId::Q8_0, FormatId::NVFP4_CKPT,
                     FormatId::MXFP4_CKPT, FormatId::FP8_E4M3_TENSOR, FormatId::FP8_E4M3_CHANNEL}) {
    const bool fp8 = f == FormatId::FP8_E4M3_TENSOR || f == FormatId::FP8_E4M3_CHANNEL;
    for (const int64_t cols : {int64_t(4352), int64_t(4608), int64_t(32768 + 512)}) {
      const int64_t rows = cols > 32768 ? 40 : 16400 + 24;  // ragged last tile
      const OwnedQuantMatrix q = quantize(f, random_floats(size_t(rows * cols), 300 + uint32_t(f)), rows, cols);
      const auto x = random_floats(size_t(cols), 301);
      DeviceWeights dw(q, fp8 ? WeightLayout::kNative : WeightLayout::kMma);
      DeviceBuffer dx(x.data(), x.size() * sizeof(float));
      const float* xp = static_cast<const float*>(dx.p);
      // The first kernel, then with the faster forms disabled one by one.
      const std::string disable[3] = {"", tensor_core_names(f, {"_mma_bulk"}), tensor_core_names(f, {"_mma_bulk", "_mma_sx"})};
      std::vector<std::vector<float>> ys;
      std::vector<std::string> names;
      for (const std::string& d : disable) {
        DeviceBuffer y(size_t(rows) * 4);
        y.poison();
        std::string name;
        if (d.empty()) {
          name = gemv(dw.m, xp, static_cast<float*>(y.p), nullptr);
        } else {
          EnvGuard env(d.c_str());
          name = gemv(dw.m, xp, static_cast<float*>(y.p), nullptr);
        }
        IMP_CUDA_CHECK(cudaDeviceSynchronize());
        ys.push_back(y.download<float>());
        names.push_back(name);
      }
      const bool bulk = cols <= 32768 && !(f == FormatId::MXFP4_CKPT && cols == 4352);
      const std::string base = names[2].substr(0, names[2].find("_mma"));
      EXPECT_EQ(names[0], base + (bulk ? "_mma_bulk" : cols <= 32768 ? "_mma_sx" : "_mma")) << cols;
      EXPECT_EQ(names[1], base + (cols <= 32768 ? "_mma_sx" : "_mma")) << cols;
      EXPECT_EQ(names[2], base + "_mma") << cols;
      for (int i = 0; i < 2; ++i) {
        double err = 0.0, norm = 0.0;
        for (int64_t r = 0; r < rows; ++r) {
          const double a = ys[size_t(i)][size_t(r)], b = ys[2][size_t(r)];
          ASSERT_TRUE(std::isfinite(a) && std::isfinite(b)) << names[size_t(i)] << " row " << r;
          err += (a - b) * (a - b), norm += b * b;
        }
        EXPECT_LE(std::sqrt(err / norm), 1e-6) << names[size_t(i)] << " vs " << names[2] << " " << rows << "x" << cols;
      }
      DeviceBuffer y_fused(size_t(rows) * 4);
      const DeviceMatrix w[1] = {dw.m};
      float* const y[1] = {static_cast<float*>(y_fused.p)};
      y_fused.poison();
      ASSERT_TRUE(gemv_mma_fused(w, 1, xp, y, nullptr)) << format_name(f) << " " << cols;
      IMP_CUDA_CHECK(cudaDeviceSynchronize());
      EXPECT_EQ(y_fused.download<float>(), ys[0]) << names[0] << " fused " << cols;
    }
  }
}

// The fused decode forms give exactly what separate launches give: each row is the same
// per-warp walk over the same units, and silu(g)·u is the swiglu() formula.
TEST(CudaGemvMma, FusedQkvAndSwigluMatchSeparateLaunches) {
  if (device_count() == 0) GTEST_SKIP() << "no CUDA device visible";
  for (FormatId f : {FormatId::Q4_0, FormatId::Q4_K, FormatId::Q5_K, FormatId::Q6_K, FormatId::NVFP4_CKPT}) {
    const int64_t cols = 512;
    const int64_t rows[3] = {1024, 256, 264};
    std::vector<OwnedQuantMatrix> q;
    for (int i = 0; i < 3; ++i) q.push_back(quantize(f, random_floats(size_t(rows[i] * cols), 70 + uint32_t(i)), rows[i], cols));
    const auto x = random_floats(size_t(cols), 80);
    DeviceBuffer dx(x.data(), x.size() * sizeof(float));
    std::vector<std::unique_ptr<DeviceWeights>> dw;
    for (int i = 0; i < 3; ++i) dw.push_back(std::make_unique<DeviceWeights>(q[size_t(i)], WeightLayout::kMma));
    DeviceBuffer y_sep(size_t(1544) * 4), y_fused(size_t(1544) * 4);
    float* sep = static_cast<float*>(y_sep.p);
    float* fused = static_cast<float*>(y_fused.p);
    const float* xp = static_cast<const float*>(dx.p);
    gemv(dw[0]->m, xp, sep, nullptr);
    gemv(dw[1]->m, xp, sep + 1024, nullptr);
    gemv(dw[2]->m, xp, sep + 1280, nullptr);
    const DeviceMatrix w[3] = {dw[0]->m, dw[1]->m, dw[2]->m};
    float* const y[3] = {fused, fused + 1024, fused + 1280};
    ASSERT_TRUE(gemv_mma_fused(w, 3, xp, y, nullptr)) << format_name(f);
    IMP_CUDA_CHECK(cudaDeviceSynchronize());
    EXPECT_EQ(y_sep.download<uint32_t>(), y_fused.download<uint32_t>()) << format_name(f) << " qkv";

    // gate = matrix 1 (256 rows), up = the first 256 rows of a second 256-row matrix.
    OwnedQuantMatrix up = quantize(f, random_floats(size_t(256 * cols), 90), 256, cols);
    DeviceWeights dup(up, WeightLayout::kMma);
    DeviceBuffer g(256 * 4), u(256 * 4), out_sep(256 * 4), out_fused(256 * 4);
    gemv(dw[1]->m, xp, static_cast<float*>(g.p), nullptr);
    gemv(dup.m, xp, static_cast<float*>(u.p), nullptr);
    swiglu(static_cast<const float*>(g.p), static_cast<const float*>(u.p), 256, static_cast<float*>(out_sep.p), nullptr);
    ASSERT_TRUE(gemv_mma_swiglu(dw[1]->m, dup.m, xp, static_cast<float*>(out_fused.p), nullptr));
    IMP_CUDA_CHECK(cudaDeviceSynchronize());
    EXPECT_EQ(out_sep.download<uint32_t>(), out_fused.download<uint32_t>()) << format_name(f) << " swiglu";
    // Mixed formats or row lengths are not fused.
    const DeviceMatrix mixed[2] = {dw[0]->m, fake_matrix(FormatId::Q8_0, WeightLayout::kMma, 4, 512)};
    float* const y2[2] = {fused, fused};
    EXPECT_FALSE(gemv_mma_fused(mixed, 2, xp, y2, nullptr));
  }
}

}  // namespace
}  // namespace imp::cuda
