// Integer-dot (dp4a) GEMV kernels and their GPU activation quantizers against the CPU
// references. GPU tests GTEST_SKIP without a device; the dispatch tests always run.
//
// (1) quantize_x_q8_0 / quantize_x_q8_k produce exactly the CPU reference bytes
//     (quantize_row_q8_0 / quantize_row_q8_k): codes, scales (Q8_0: the block's f16 d as
//     f32; Q8_K: the f32 d bit for bit), block sums.
// (2) y vs the CPU reference matvec — the format's vec_dot_ref on the reference-quantized
//     activation row (Q8_0 for Q4_0 and NVFP4_CKPT, Q8_K for Q4_K and Q6_K). Integer sums
//     are exact on both sides and the FP32 scale products are the same operations, so only
//     the FP32 summation order of the per-(sub)block terms differs: per row
//     |y − ref| ≤ 1e-5 · Σ_c |W[r,c]·x[c]| (FP32 reordering error is ~√blocks·2^-24 of that
//     sum, < 1e-6 here) and ‖y − ref‖₂/‖ref‖₂ ≤ 1e-5. One wrong nibble, scale or block sum
//     moves a row by ~1/√cols of its energy, orders of magnitude more.
// (3) y vs the FP64 dot of the dequantized W with the UNquantized x: ‖y − ref‖₂/‖ref‖₂ ≤ 2e-2.
//     That is the int8 activation rounding: |Δx| ≤ amax/254 per element, ≈ 0.3 % rms for
//     these data, which moves a row's dot by ~0.2–1 %; 2e-2 leaves margin yet catches a
//     kernel that, say, ignores the x scale or a sub-block's min.
// Data: weights and x ~ U(−1, 1) + 0.25 (positive mean, so no row is a pure cancellation),
// fresh per shape; y poisoned with NaN before every launch.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backends/cuda/check.h"
#include "backends/cuda/device.h"
#include "backends/cuda/gemv.h"
#include "common/error.h"
#include "formats/f16.h"
#include "formats/q8_0.h"
#include "formats/q8_k.h"
#include "formats/quant_matrix.h"

namespace imp::cuda {
namespace {

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng) + 0.25f;
  return v;
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
  template <class T>
  T* as() const {
    return static_cast<T*>(p);
  }
};

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// x with the cases the quantizers must get exactly right: in the first 256 elements an
// all-zero 32-block, a small block (its f16 d is subnormal), a huge one and a tiny one (its
// f16 d rounds to 0 while the codes, made with the fp32 d, do not); in the second
// 256-block the largest |x| twice with opposite signs (Q8_K takes the first, −2.5); the
// third 256-block all zero (Q8_K: d = 0, bsums = 0).
std::vector<float> awkward_x(int64_t cols, uint32_t seed) {
  auto x = random_floats(size_t(cols), seed);
  std::fill(x.begin() + 32, x.begin() + 64, 0.0f);
  for (int i = 128; i < 160; ++i) x[size_t(i)] *= 1e-4f;
  for (int i = 160; i < 192; ++i) x[size_t(i)] *= 1e3f;
  for (int i = 192; i < 224; ++i) x[size_t(i)] *= 1e-7f;
  if (cols >= 512) {
    x[256 + 3] = -2.5f;
    x[256 + 200] = 2.5f;
  }
  if (cols >= 768) std::fill(x.begin() + 512, x.begin() + 768, 0.0f);
  return x;
}

TEST(CudaDp4a, XQuantizersMatchCpuReferenceBytes) {
  if (device_count() == 0) GTEST_SKIP() << "no CUDA device visible";
  int checked = 0;
  for (int64_t cols : {int64_t(256), int64_t(256 * 3), int64_t(256 * 17), int64_t(32 * 37)}) {
    const auto x = awkward_x(cols, uint32_t(cols));
    DeviceBuffer dx(x.data(), x.size() * 4);
    {  // Q8_0
      const int64_t nb = cols / 32;
      std::vector<uint8_t> cpu(size_t(nb) * sizeof(BlockQ8_0));
      quantize_row_q8_0(x.data(), RowPlanes{cpu.data()}, cols);
      DeviceBuffer qs{size_t(cols)}, d{size_t(nb) * 4}, sums{size_t(nb) * 4};
      qs.poison();
      d.poison();
      sums.poison();
      quantize_x_q8_0(dx.as<float>(), cols, qs.as<int8_t>(), d.as<float>(), sums.as<int32_t>(), nullptr);
      IMP_CUDA_CHECK(cudaDeviceSynchronize());
      const auto gq = qs.download<int8_t>();
      const auto gd = d.download<float>();
      const auto gs = sums.download<int32_t>();
      for (int64_t b = 0; b < nb; ++b) {
        BlockQ8_0 blk;
        std::memcpy(&blk, cpu.data() + b * sizeof blk, sizeof blk);
        int sum = 0;
        for (int j = 0; j < 32; ++j) {
          ASSERT_EQ(gq[size_t(32 * b + j)], blk.qs[j]) << "Q8_0 cols " << cols << " block " << b << " elem " << j;
          sum += blk.qs[j];
        }
        ASSERT_EQ(bits(gd[size_t(b)]), bits(f16_to_f32(blk.d))) << "Q8_0 d, cols " << cols << " block " << b;
        ASSERT_EQ(gs[size_t(b)], sum) << "Q8_0 sum, cols " << cols << " block " << b;
      }
      ++checked;
    }
    if (cols % 256 == 0) {  // Q8_K
      const int64_t nb = cols / 256;
      std::vector<uint8_t> cpu(size_t(nb) * sizeof(BlockQ8_K));
      quantize_row_q8_k(x.data(), RowPlanes{cpu.data()}, cols);
      DeviceBuffer qs{size_t(cols)}, d{size_t(nb) * 4}, bsums{size_t(cols / 16) * 2};
      qs.poison();
      d.poison();
      bsums.poison();
      quantize_x_q8_k(dx.as<float>(), cols, qs.as<int8_t>(), d.as<float>(), bsums.as<int16_t>(), nullptr);
      IMP_CUDA_CHECK(cudaDeviceSynchronize());
      const auto gq = qs.download<int8_t>();
      const auto gd = d.download<float>();
      const auto gb = bsums.download<int16_t>();
      for (int64_t b = 0; b < nb; ++b) {
        BlockQ8_K blk;
        std::memcpy(&blk, cpu.data() + b * sizeof blk, sizeof blk);
        ASSERT_EQ(bits(gd[size_t(b)]), bits(blk.d)) << "Q8_K d, cols " << cols << " block " << b;
        for (int j = 0; j < 256; ++j) {
          ASSERT_EQ(gq[size_t(256 * b + j)], blk.qs[j]) << "Q8_K cols " << cols << " block " << b << " elem " << j;
        }
        for (int k = 0; k < 16; ++k) ASSERT_EQ(gb[size_t(16 * b + k)], blk.bsums[k]) << "Q8_K bsum " << b << "/" << k;
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 7);
}

// ---- GEMV ------------------------------------------------------------------------------
struct Case {
  FormatId format;
  WeightLayout layout;
  const char* kernel;
  std::vector<int64_t> cols;
};
const Case kCases[] = {
    {FormatId::Q4_0, WeightLayout::kSplit, "q4_0_split_dp4a", {32 * 37, 256 * 3, 256 * 17}},
    {FormatId::Q4_K, WeightLayout::kNative, "q4_k_dp4a", {256, 256 * 3, 256 * 17}},
    {FormatId::Q6_K, WeightLayout::kSplit, "q6_k_split_dp4a", {256, 256 * 3, 256 * 17}},
    {FormatId::NVFP4_CKPT, WeightLayout::kNative, "nvfp4_ckpt_dp4a", {32 * 37, 256 * 3, 256 * 17}},
};
constexpr int64_t kRowCases[] = {1, 17, 129, 4099};

const GemvKernel& kernel_named(std::string_view name) {
  for (const GemvKernel& k : gemv_kernels()) {
    if (k.name == name) return k;
  }
  fail("no kernel named {}", name);
}

// The CPU activation row the format's vec_dot_ref pairs with.
std::vector<uint8_t> cpu_activation(FormatId weight, const std::vector<float>& x) {
  const int64_t cols = int64_t(x.size());
  if (weight == FormatId::Q4_K || weight == FormatId::Q6_K) {
    std::vector<uint8_t> act(size_t(cols / 256) * sizeof(BlockQ8_K));
    quantize_row_q8_k(x.data(), RowPlanes{act.data()}, cols);
    return act;
  }
  std::vector<uint8_t> act(size_t(cols / 32) * sizeof(BlockQ8_0));
  quantize_row_q8_0(x.data(), RowPlanes{act.data()}, cols);
  return act;
}

class CudaDp4aGemv : public ::testing::TestWithParam<Case> {};

TEST_P(CudaDp4aGemv, MatchesCpuVecDotAndFp64Dot) {
  if (device_count() == 0) GTEST_SKIP() << "no CUDA device visible";
  const Case& c = GetParam();
  const GemvKernel& k = kernel_named(c.kernel);
  ASSERT_TRUE(k.quantizes_x);
  ASSERT_EQ(format_traits(c.format).dot_activation,
            c.format == FormatId::Q4_K || c.format == FormatId::Q6_K ? FormatId::Q8_K : FormatId::Q8_0);
  int shapes = 0;
  for (int64_t rows : kRowCases) {
    for (int64_t cols : c.cols) {
      if (rows * cols > (int64_t(1) << 23)) continue;  // keeps the CPU reference quick
      const std::string where = fmt::format("{} {}×{}", k.name, rows, cols);
      const uint32_t seed = uint32_t(rows * 7919 + cols * 31 + int(c.format));
      const auto w = random_floats(size_t(rows * cols), seed);
      const auto x = random_floats(size_t(cols), seed + 1);
      const OwnedQuantMatrix q = quantize(c.format, w, rows, cols);
      const QuantMatrix view = q.view();
      const std::vector<float> deq = dequantize(view);
      const std::vector<uint8_t> act = cpu_activation(c.format, x);

      // Weights on the device in the kernel's layout (kSplit by the device repack).
      DeviceBuffer data(size_t(device_data_bytes(c.format, c.layout, rows, cols)));
      DeviceBuffer scales(size_t(device_scale_bytes(c.format, c.layout, rows, cols)));
      if (c.layout == WeightLayout::kNative) {
        IMP_CUDA_CHECK(cudaMemcpy(data.p, q.data.data(), q.data.size(), cudaMemcpyHostToDevice));
        if (!q.scales.empty()) {
          IMP_CUDA_CHECK(cudaMemcpy(scales.p, q.scales.data(), q.scales.size(), cudaMemcpyHostToDevice));
        }
      } else {
        DeviceBuffer native(q.data.data(), q.data.size());
        repack_split(c.format, native.p, rows, cols, data.p, scales.p, nullptr);
        IMP_CUDA_CHECK(cudaDeviceSynchronize());
      }
      const DeviceMatrix m{c.format, rows, cols, data.p, scales.p, q.tensor_scale, c.layout};
      DeviceBuffer dx(x.data(), x.size() * 4);
      DeviceBuffer dy(size_t(rows) * 4);
      const KernelCheck ok = can_implement(k, m, dx.as<float>(), dy.as<float>());
      ASSERT_TRUE(ok.ok) << where << ": " << ok.reason;

      // References per row: CPU vec_dot on the CPU-quantized x, FP64 dot with the
      // unquantized x, and Σ|W·x| (the scale of FP32 reordering error).
      std::vector<double> cpu(size_t(rows), 0.0), ref64(size_t(rows), 0.0), mag(size_t(rows), 0.0);
      for (int64_t r = 0; r < rows; ++r) {
        cpu[size_t(r)] = double(format_traits(c.format).vec_dot_ref(row_planes(view, r), act.data(), cols));
        for (int64_t i = 0; i < cols; ++i) {
          const double t = double(deq[size_t(r * cols + i)]) * double(x[size_t(i)]);
          ref64[size_t(r)] += t;
          mag[size_t(r)] += std::fabs(t);
        }
      }
      // Both the kernel itself and the dispatcher's choice (which must be this kernel).
      for (int via_dispatch = 0; via_dispatch < 2; ++via_dispatch) {
        dy.poison();
        if (via_dispatch) {
          ASSERT_EQ(gemv(m, dx.as<float>(), dy.as<float>(), nullptr), k.name) << where;
        } else {
          k.launch(m, dx.as<float>(), dy.as<float>(), nullptr, GemvOut::kStore);
        }
        IMP_CUDA_CHECK(cudaDeviceSynchronize());
        const auto y = dy.download<float>();
        double e_cpu = 0, n_cpu = 0, e_64 = 0, n_64 = 0;
        for (size_t r = 0; r < size_t(rows); ++r) {
          const double yr = double(y[r]);
          ASSERT_TRUE(std::isfinite(yr)) << where << " row " << r;
          ASSERT_LE(std::fabs(yr - cpu[r]), 1e-5 * mag[r]) << where << " row " << r << ": gpu " << yr << " cpu " << cpu[r];
          e_cpu += (yr - cpu[r]) * (yr - cpu[r]);
          n_cpu += cpu[r] * cpu[r];
          e_64 += (yr - ref64[r]) * (yr - ref64[r]);
          n_64 += ref64[r] * ref64[r];
        }
        ASSERT_GT(n_cpu, 0.0);
        EXPECT_LE(std::sqrt(e_cpu / n_cpu), 1e-5) << where << " vs CPU vec_dot";
        EXPECT_LE(std::sqrt(e_64 / n_64), 2e-2) << where << " vs FP64 dot with unquantized x";
      }
      ++shapes;
    }
  }
  EXPECT_GE(shapes, 9);
}

INSTANTIATE_TEST_SUITE_P(Formats, CudaDp4aGemv, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.kernel); });

// The launcher allocates its x workspace stream-ordered (cudaMallocAsync): it must work on
// a non-default stream and inside CUDA graph capture (as the benchmark and a decode loop
// use it), and give the same bits each way (the kernels are deterministic).
TEST(CudaDp4a, StreamsAndGraphCaptureGiveIdenticalResults) {
  if (device_count() == 0) GTEST_SKIP() << "no CUDA device visible";
  for (const Case& c : kCases) {
    const int64_t rows = 129, cols = 768;
    const auto w = random_floats(size_t(rows * cols), 11 + uint32_t(c.format));
    const auto x = random_floats(size_t(cols), 12);
    const OwnedQuantMatrix q = quantize(c.format, w, rows, cols);
    DeviceBuffer data(size_t(device_data_bytes(c.format, c.layout, rows, cols)));
    DeviceBuffer scales(size_t(device_scale_bytes(c.format, c.layout, rows, cols)));
    if (c.layout == WeightLayout::kNative) {
      IMP_CUDA_CHECK(cudaMemcpy(data.p, q.data.data(), q.data.size(), cudaMemcpyHostToDevice));
      if (!q.scales.empty()) IMP_CUDA_CHECK(cudaMemcpy(scales.p, q.scales.data(), q.scales.size(), cudaMemcpyHostToDevice));
    } else {
      DeviceBuffer native(q.data.data(), q.data.size());
      repack_split(c.format, native.p, rows, cols, data.p, scales.p, nullptr);
      IMP_CUDA_CHECK(cudaDeviceSynchronize());
    }
    const DeviceMatrix m{c.format, rows, cols, data.p, scales.p, q.tensor_scale, c.layout};
    DeviceBuffer dx(x.data(), x.size() * 4);
    DeviceBuffer y0(size_t(rows) * 4), y1(size_t(rows) * 4), y2(size_t(rows) * 4);
    y0.poison();
    y1.poison();
    y2.poison();
    ASSERT_EQ(gemv(m, dx.as<float>(), y0.as<float>(), nullptr), c.kernel);
    IMP_CUDA_CHECK(cudaDeviceSynchronize());
    cudaStream_t stream;
    IMP_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    (void)gemv(m, dx.as<float>(), y1.as<float>(), stream);
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    IMP_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    (void)gemv(m, dx.as<float>(), y2.as<float>(), stream);
    IMP_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    IMP_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    for (int i = 0; i < 2; ++i) IMP_CUDA_CHECK(cudaGraphLaunch(exec, stream));
    IMP_CUDA_CHECK(cudaStreamSynchronize(stream));
    IMP_CUDA_CHECK(cudaGraphExecDestroy(exec));
    IMP_CUDA_CHECK(cudaGraphDestroy(graph));
    IMP_CUDA_CHECK(cudaStreamDestroy(stream));
    const auto a = y0.download<uint32_t>(), b = y1.download<uint32_t>(), g = y2.download<uint32_t>();
    for (size_t r = 0; r < size_t(rows); ++r) {
      ASSERT_EQ(a[r], b[r]) << c.kernel << " row " << r << ": default vs non-blocking stream";
      ASSERT_EQ(a[r], g[r]) << c.kernel << " row " << r << ": eager vs graph";
    }
    float y_first;
    std::memcpy(&y_first, &a[0], 4);
    EXPECT_TRUE(std::isfinite(y_first)) << c.kernel;
  }
}

// ---- host: dispatch and validation (no device memory is touched) ------------------------
DeviceMatrix fake(FormatId f, WeightLayout l, int64_t rows, int64_t cols) {
  return {f, rows, cols, reinterpret_cast<const void*>(uintptr_t(0x100000)),
          reinterpret_cast<const void*>(uintptr_t(0x200000)), 1.0f, l};
}
const float* kX = reinterpret_cast<const float*>(uintptr_t(0x300000));
float* const kY = reinterpret_cast<float*>(uintptr_t(0x400000));

struct EnvGuard {
  explicit EnvGuard(const char* value) { setenv("IMP_CUDA_DISABLE_KERNELS", value, 1); }
  ~EnvGuard() { unsetenv("IMP_CUDA_DISABLE_KERNELS"); }
};

TEST(CudaDp4aDispatch, IntegerDotKernelsComeFirstAndFallBack) {
  for (const Case& c : kCases) {
    const DeviceMatrix m = fake(c.format, c.layout, 64, 4096);
    EXPECT_EQ(select_gemv_kernel(m, kX, kY).name, c.kernel);
    EXPECT_TRUE(select_gemv_kernel(m, kX, kY).quantizes_x);
    // x needs no 16-byte alignment (only the quantizer reads it).
    EXPECT_EQ(select_gemv_kernel(m, kX + 1, kY).name, c.kernel);
    EnvGuard env(c.kernel);
    const GemvKernel& fallback = select_gemv_kernel(m, kX, kY);
    EXPECT_NE(fallback.name.find("vec16"), std::string_view::npos) << fallback.name;
    EXPECT_FALSE(fallback.quantizes_x);
  }
}

TEST(CudaDp4aDispatch, RejectionReasonsAreReported) {
  // NVFP4 rows of 16·37 cannot be quantized in Q8_0 blocks of 32.
  try {
    EnvGuard env("nvfp4_ckpt_elem");
    (void)select_gemv_kernel(fake(FormatId::NVFP4_CKPT, WeightLayout::kNative, 4, 16 * 37), kX, kY);
    FAIL() << "expected imp::Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("nvfp4_ckpt_dp4a: cols 592 is not a multiple of 32"), std::string::npos) << msg;
  }
  // Misaligned payload plane.
  DeviceMatrix m = fake(FormatId::Q4_0, WeightLayout::kSplit, 4, 256);
  m.data = reinterpret_cast<const void*>(uintptr_t(0x100008));
  const KernelCheck c = can_implement(kernel_named("q4_0_split_dp4a"), m, kX, kY);
  EXPECT_FALSE(c.ok);
  EXPECT_NE(c.reason.find("payload plane pointer is not 16-byte aligned"), std::string::npos) << c.reason;
}

TEST(CudaDp4aDispatch, QuantizerRejectsBadShapes) {
  auto* p = reinterpret_cast<int8_t*>(uintptr_t(0x500000));
  auto* d = reinterpret_cast<float*>(uintptr_t(0x600000));
  EXPECT_THROW(quantize_x_q8_0(kX, 33, p, d, reinterpret_cast<int32_t*>(d), nullptr), Error);
  EXPECT_THROW(quantize_x_q8_0(kX, 0, p, d, reinterpret_cast<int32_t*>(d), nullptr), Error);
  EXPECT_THROW(quantize_x_q8_k(kX, 32 * 3, p, d, reinterpret_cast<int16_t*>(d), nullptr), Error);
  EXPECT_THROW(quantize_x_q8_k(nullptr, 256, p, d, reinterpret_cast<int16_t*>(d), nullptr), Error);
}

}  // namespace
}  // namespace imp::cuda
