// The fused-dequantization prefill GEMM (gemm_dequant.h) against the CPU reference: every
// kMma format, ragged row and token tiles, store and accumulate; the activation column
// shuffle exactly; and the backend's prefill GEMMs with the kernel on and off.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/ops.h"
#include "backends/cuda/check.h"
#include "backends/cuda/cuda_backend.h"
#include "backends/cuda/device.h"
#include "backends/cuda/gemm_dequant.h"
#include "backends/cuda/gemv.h"
#include "common/error.h"
#include "formats/bf16.h"
#include "formats/f16.h"
#include "formats/quant_matrix.h"
#include "formats/traits.h"
#include "forward_test_util.h"

namespace imp::cuda::test {
namespace {

// |got − want| ≤ kTolerance · Σ_k |w_k·x_k| per output: both sides multiply the same f16
// weights (the exact values rounded once) and activations (BF16, exact in f16); only the FP32 accumulation order differs (≤ K·2^-24 relative to
// the absolute sum, K ≤ 4096 here → 2.4e-4 in the worst case; a decode or k-slot mistake
// is of the order of the terms themselves).
constexpr double kTolerance = 3e-4;
// Q4_K's weights are q·f16(d·sc) − f16(dmin·m) in one f16 FMA (three roundings, not one):
// each weight within ~2^-10 of |q·d·sc| + |dmin·m|, random in sign across k.
constexpr double kQ4KTolerance = 1e-3;

template <class T>
struct Buf {
  T* p = nullptr;
  size_t n = 0;
  explicit Buf(size_t count) : n(count) { IMP_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(1, n) * sizeof(T))); }
  Buf(const T* host, size_t count) : Buf(count) {
    IMP_CUDA_CHECK(cudaMemcpy(p, host, n * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~Buf() { cudaFree(p); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  std::vector<T> get() const {
    std::vector<T> h(n);
    IMP_CUDA_CHECK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
};

// A quantized matrix in the kMma layout on the device (the backend's load-time repack).
struct MmaWeights {
  Buf<uint8_t> data, scales;
  DeviceMatrix m;
  explicit MmaWeights(const OwnedQuantMatrix& q)
      : data(size_t(device_data_bytes(q.format, WeightLayout::kMma, q.rows, q.cols))),
        scales(size_t(device_scale_bytes(q.format, WeightLayout::kMma, q.rows, q.cols))) {
    m = {q.format, q.rows, q.cols, data.p, scales.p, q.tensor_scale, WeightLayout::kMma, nullptr, 0};
    Buf<uint8_t> native(q.data.data(), q.data.size());
    const bool d_plane = q.format == FormatId::Q4_0 || q.format == FormatId::Q8_0 || q.format == FormatId::Q4_K;
    if (!d_plane) IMP_CUDA_CHECK(cudaMemcpy(scales.p, q.scales.data(), q.scales.size(), cudaMemcpyHostToDevice));
    repack_mma(q.format, native.p, q.rows, q.cols, data.p, d_plane ? scales.p : nullptr, nullptr);
    IMP_CUDA_CHECK(cudaDeviceSynchronize());
  }
};

std::vector<uint16_t> to_bf16(const std::vector<float>& x) {
  std::vector<uint16_t> h(x.size());
  for (size_t i = 0; i < x.size(); ++i) h[i] = ::imp::f32_to_bf16(x[i]);
  return h;
}

// Runs gemm_dequant on (W, x) with n_tok tokens and checks it against the FP64 product of
// the reference weights rounded to f16 and the BF16 activations. accumulate: y starts at y0.
void check_gemm(FormatId f, int64_t rows, int64_t cols, int64_t n_tok, bool accumulate) {
  SCOPED_TRACE(std::string(format_name(f)) + " " + std::to_string(rows) + "×" + std::to_string(cols) + ", " +
               std::to_string(n_tok) + " tokens" + (accumulate ? ", accumulate" : ""));
  const auto wf = random_floats(size_t(rows * cols), uint64_t(rows * 131 + cols + int(f)), 0.05f);
  const OwnedQuantMatrix q = quantize(f, wf, rows, cols);
  const std::vector<float> w = dequantize(q.view());
  const auto x = random_floats(size_t(n_tok * cols), uint64_t(n_tok + 7 * cols));
  const std::vector<uint16_t> xb = to_bf16(x);
  const auto y0 = random_floats(size_t(n_tok * rows), 99);

  MmaWeights dw(q);
  ASSERT_TRUE(gemm_dequant_supported(dw.m));
  Buf<uint16_t> dx(xb.data(), xb.size()), dxm(xb.size());
  Buf<float> dy(y0.data(), y0.size());
  f16_mma_columns(dx.p, n_tok, cols, dxm.p, nullptr);
  gemm_dequant(dw.m, dxm.p, n_tok, dy.p, rows, accumulate, nullptr);
  IMP_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> got = dy.get();

  const double tol = f == FormatId::Q4_K ? kQ4KTolerance : kTolerance;
  size_t bad = 0;
  double worst = 0.0;
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int64_t r = 0; r < rows; ++r) {
      double sum = 0.0, mag = 0.0;
      for (int64_t k = 0; k < cols; ++k) {
        const double term = double(f16_to_f32(f32_to_f16(w[size_t(r * cols + k)]))) *
                            double(::imp::bf16_to_f32(xb[size_t(t * cols + k)]));
        sum += term;
        mag += std::fabs(term);
      }
      if (accumulate) sum += y0[size_t(t * rows + r)], mag += std::fabs(y0[size_t(t * rows + r)]);
      const double err = std::fabs(double(got[size_t(t * rows + r)]) - sum) / std::max(mag, 1e-30);
      worst = std::max(worst, err);
      bad += !(err <= tol);
    }
  }
  EXPECT_EQ(bad, 0u) << "outputs off by more than " << tol << " of their absolute sum (worst " << worst << ")";
}

TEST(CudaGemmDequant, ColumnShuffleIsTheKmmaSlotOrder) {
  IMP_SKIP_WITHOUT_GPU();
  const int64_t n_tok = 3, cols = 48;
  std::vector<uint16_t> x(size_t(n_tok * cols));
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 100.0f);
  for (uint16_t& v : x) v = ::imp::f32_to_bf16(nd(rng));
  x[7] = ::imp::f32_to_bf16(1e6f), x[8] = ::imp::f32_to_bf16(-1e6f);  // beyond f16: saturate
  Buf<uint16_t> dx(x.data(), x.size()), out(x.size());
  f16_mma_columns(dx.p, n_tok, cols, out.p, nullptr);
  IMP_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<uint16_t> got = out.get();
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int64_t e = 0; e < cols; ++e) {
      const int64_t s = e % 16, col = e - s + 4 * ((s % 8) / 2) + 2 * (s / 8) + s % 2;
      const float want = std::clamp(::imp::bf16_to_f32(x[size_t(t * cols + col)]), -65504.0f, 65504.0f);
      ASSERT_EQ(got[size_t(t * cols + e)], f32_to_f16(want)) << "token " << t << " position " << e;
    }
  }
}

TEST(CudaGemmDequant, MatchesReferenceOnRaggedTiles) {
  IMP_SKIP_WITHOUT_GPU();
  if (!gemm_dequant_supported({FormatId::Q4_0, 16, 128, reinterpret_cast<void*>(256), reinterpret_cast<void*>(256),
                               1.0f, WeightLayout::kMma})) {
    GTEST_SKIP() << "gemm_dequant needs a compute capability 9.0 GPU";
  }
  const int saved = fused_gemm_tile_tokens();
  for (int tile : {128, 256}) {
    SCOPED_TRACE(tile);
    set_fused_gemm_tile_tokens(tile);
    for (FormatId f : {FormatId::Q4_0, FormatId::Q8_0, FormatId::Q4_K, FormatId::NVFP4_CKPT, FormatId::MXFP4_CKPT}) {
      const int64_t unit = f == FormatId::Q4_K ? 256 : f == FormatId::Q8_0 ? 64 : 128;
      check_gemm(f, 200, unit * 3, 300, false);  // two row tiles (the second ragged), ragged token tiles
      check_gemm(f, 37, unit, 5, true);          // one unit, one ragged tile each way, y +=
    }
    check_gemm(FormatId::Q4_0, 256, 4096, 257, false);  // long K: the ring wraps many times
  }
  set_fused_gemm_tile_tokens(saved);
}

TEST(CudaGemmDequant, RefusesWhatItCannotRun) {
  const DeviceMatrix q6{FormatId::Q6_K, 16, 256, reinterpret_cast<void*>(256), reinterpret_cast<void*>(256), 1.0f,
                        WeightLayout::kMma};
  std::string why;
  EXPECT_FALSE(gemm_dequant_supported(q6, &why));
  EXPECT_NE(why.find("kMma"), std::string::npos) << why;
  const DeviceMatrix native{FormatId::Q4_0, 16, 128, reinterpret_cast<void*>(256), reinterpret_cast<void*>(256), 1.0f,
                            WeightLayout::kNative};
  EXPECT_FALSE(gemm_dequant_supported(native));
  const DeviceMatrix odd{FormatId::Q4_0, 16, 96, reinterpret_cast<void*>(256), reinterpret_cast<void*>(256), 1.0f,
                         WeightLayout::kMma};
  EXPECT_FALSE(gemm_dequant_supported(odd, &why));
  EXPECT_NE(why.find("units"), std::string::npos) << why;
  EXPECT_THROW(gemm_dequant(q6, nullptr, 4, nullptr, 16, false, nullptr), Error);
}

// The backend's prefill GEMM (matmul, n_tok > 1, BF16 mode) of kMma weights with the fused
// kernel and with dequantize + cuBLAS: both match the FP32 reference as the BF16 GEMM must.
TEST(CudaGemmDequant, BackendPrefillGemmTakesItWhenOn) {
  IMP_SKIP_WITHOUT_GPU();
  const bool saved = fused_dequant_gemm();
  for (bool on : {false, true}) {
    set_fused_dequant_gemm(on);
    CudaBackend b;
    for (FormatId f : {FormatId::Q4_0, FormatId::Q8_0}) {
      const int64_t rows = 300, cols = 512, n_tok = 33;
      const auto wf = random_floats(size_t(rows * cols), 41 + int(f), 0.05f);
      const OwnedQuantMatrix w = quantize(f, wf, rows, cols);
      const MatrixHandle h = b.add_matrix(w.view(), "w");
      const auto x = random_floats(size_t(n_tok * cols), 52);
      std::vector<float> ref(size_t(n_tok * rows));
      matmul_ref(w.view(), x.data(), n_tok, ref.data());
      float* dx = upload(b, x);
      float* dy = b.alloc(n_tok * rows);
      b.matmul(h, dx, n_tok, dy);
      EXPECT_LT(rel_error(download(b, dy, ref.size()), ref), 1e-2) << format_name(f) << (on ? " fused" : " cuBLAS");
      b.release(dx);
      b.release(dy);
    }
    const bool ran = b.stats().find("fused-dequantization prefill GEMMs: 0 ") == std::string::npos;
    EXPECT_EQ(ran, on && gemm_dequant_supported({FormatId::Q4_0, 16, 128, reinterpret_cast<void*>(256),
                                                 reinterpret_cast<void*>(256), 1.0f, WeightLayout::kMma}))
        << b.stats();
  }
  set_fused_dequant_gemm(saved);
}

}  // namespace
}  // namespace imp::cuda::test
