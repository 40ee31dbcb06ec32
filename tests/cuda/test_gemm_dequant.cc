// The fused-dequantization prefill GEMM (gemm_dequant.h) against the CPU reference: every
// kMma format, ragged row and token tiles, store and accumulate; the activation column
// shuffle exactly; and the backend's prefill GEMMs with the kernel on and off.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <utility>
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
// weights (the exact values rounded once; NVFP4's E2M1 · E4M3 unrounded, its per-tensor
// scale applied to the sums) and activations (BF16, exact in f16); only the FP32 accumulation order differs (≤ K·2^-24 relative to
// the absolute sum, K ≤ 4096 here → 2.4e-4 in the worst case; a decode or k-slot mistake
// is of the order of the terms themselves).
constexpr double kTolerance = 3e-4;
// Q4_K's weights are q·f16(d·sc) − f16(dmin·m) in one f16 FMA (three roundings, not one):
// each weight within ~2^-10 of |q·d·sc| + |dmin·m|, random in sign across k; Q5_K's likewise.
// Q6_K's are (q − 32)·f16(d·sc) (two roundings): the same bound.
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
    const bool d_plane = mma_has_own_scale_plane(q.format);
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

// One matrix of a check: its rows, the row stride of its output (≥ rows) and whether it adds.
struct Part {
  int64_t rows, ldy;
  bool accumulate;
};

// Runs gemm_dequant (one part) or gemm_dequant_group (several, sharing x) with n_tok tokens
// and checks every output against the FP64 product of the reference weights rounded to f16
// and the BF16 activations; an accumulating part's y starts at random values, and the
// padding of a wider ldy stays untouched.
void check_gemm(FormatId f, const std::vector<Part>& parts, int64_t cols, int64_t n_tok, float amplitude = 0.05f) {
  std::string what = std::string(format_name(f)) + " ×" + std::to_string(cols) + ", " + std::to_string(n_tok) + " tokens:";
  for (const Part& p : parts) what += " " + std::to_string(p.rows) + (p.accumulate ? "+=" : "") + "/" + std::to_string(p.ldy);
  SCOPED_TRACE(what);
  const auto x = random_floats(size_t(n_tok * cols), uint64_t(n_tok + 7 * cols));
  const std::vector<uint16_t> xb = to_bf16(x);
  Buf<uint16_t> dx(xb.data(), xb.size()), dxm(xb.size());
  f16_mma_columns(dx.p, n_tok, cols, dxm.p, nullptr);

  std::vector<std::vector<float>> ws, y0s;
  std::vector<std::unique_ptr<MmaWeights>> dws;
  std::vector<std::unique_ptr<Buf<float>>> dys;
  std::vector<GemmDequantOut> outs;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Part& p = parts[i];
    const auto wf = random_floats(size_t(p.rows * cols), uint64_t(p.rows * 131 + cols + int(f) + 1000 * i), amplitude);
    const OwnedQuantMatrix q = quantize(f, wf, p.rows, cols);
    ws.push_back(dequantize(q.view()));
    y0s.push_back(random_floats(size_t(n_tok * p.ldy), 99 + i));
    dws.push_back(std::make_unique<MmaWeights>(q));
    ASSERT_TRUE(gemm_dequant_supported(dws.back()->m));
    dys.push_back(std::make_unique<Buf<float>>(y0s.back().data(), y0s.back().size()));
    outs.push_back({&dws.back()->m, dys.back()->p, p.ldy, p.accumulate});
  }
  if (outs.size() == 1) {
    gemm_dequant(*outs[0].w, dxm.p, n_tok, outs[0].y, outs[0].ldy, outs[0].accumulate, nullptr);
  } else {
    gemm_dequant_group(outs.data(), int(outs.size()), dxm.p, n_tok, nullptr);
  }
  IMP_CUDA_CHECK(cudaDeviceSynchronize());

  const double tol = f == FormatId::Q4_K || f == FormatId::Q5_K || f == FormatId::Q6_K ? kQ4KTolerance : kTolerance;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Part& p = parts[i];
    const std::vector<float> got = dys[i]->get();
    const std::vector<float>& w = ws[i];
    const std::vector<float>& y0 = y0s[i];
    size_t bad = 0, padding_changed = 0;
    double worst = 0.0;
    for (int64_t t = 0; t < n_tok; ++t) {
      for (int64_t r = p.rows; r < p.ldy; ++r) padding_changed += got[size_t(t * p.ldy + r)] != y0[size_t(t * p.ldy + r)];
      for (int64_t r = 0; r < p.rows; ++r) {
        double sum = 0.0, mag = 0.0;
        for (int64_t k = 0; k < cols; ++k) {
          const float wk = w[size_t(r * cols + k)];
          const double term = double(f == FormatId::NVFP4_CKPT ? wk : f16_to_f32(f32_to_f16(wk))) *
                              double(::imp::bf16_to_f32(xb[size_t(t * cols + k)]));
          sum += term;
          mag += std::fabs(term);
        }
        const float y_in = y0[size_t(t * p.ldy + r)];
        if (p.accumulate) sum += y_in, mag += std::fabs(y_in);
        const double err = std::fabs(double(got[size_t(t * p.ldy + r)]) - sum) / std::max(mag, 1e-30);
        worst = std::max(worst, err);
        bad += !(err <= tol);
      }
    }
    EXPECT_EQ(bad, 0u) << "part " << i << ": outputs off by more than " << tol << " of their absolute sum (worst "
                       << worst << ")";
    EXPECT_EQ(padding_changed, 0u) << "part " << i << " wrote beyond its rows";
  }
}

void check_gemm(FormatId f, int64_t rows, int64_t cols, int64_t n_tok, bool accumulate) {
  check_gemm(f, {{rows, rows, accumulate}}, cols, n_tok);
}

bool have_wgmma() {
  return gemm_dequant_supported({FormatId::Q4_0, 16, 128, reinterpret_cast<void*>(256), reinterpret_cast<void*>(256),
                                 1.0f, WeightLayout::kMma});
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
  if (!have_wgmma()) GTEST_SKIP() << "gemm_dequant needs a compute capability 9.0 GPU";
  const int saved = fused_gemm_tile_tokens(), saved_lead = fused_gemm_lead();
  // (tokens per CTA, units queued while decoding): both tiles, and the lead-2 pipeline.
  for (auto [tile, lead] : {std::pair{128, 1}, std::pair{256, 1}, std::pair{128, 2}}) {
    SCOPED_TRACE(std::to_string(tile) + " tokens, lead " + std::to_string(lead));
    set_fused_gemm_tile_tokens(tile);
    set_fused_gemm_lead(lead);
    for (FormatId f : {FormatId::Q4_0, FormatId::Q8_0, FormatId::Q4_K, FormatId::Q5_K, FormatId::Q6_K,
                       FormatId::NVFP4_CKPT, FormatId::MXFP4_CKPT}) {
      const bool k_quant = f == FormatId::Q4_K || f == FormatId::Q5_K || f == FormatId::Q6_K;
      const int64_t unit = k_quant ? 256 : f == FormatId::Q8_0 ? 64 : 128;
      check_gemm(f, 200, unit * 3, 300, false);  // two row tiles (the second ragged), ragged token tiles
      check_gemm(f, 37, unit, 5, true);          // one unit, one ragged tile each way, y +=
    }
    check_gemm(FormatId::Q4_0, 256, 4096, 257, false);  // long K: the ring wraps many times
    // MXFP4 block scales beyond 2^9 (weights ~3000): the FP32 scaling, not the exact f16 one.
    check_gemm(FormatId::MXFP4_CKPT, {{70, 70, false}}, 256, 20, 3000.0f);
    check_gemm(FormatId::Q4_0, 130, 128 * 5, 140, false);  // 5 units: lead 2's round of three + a tail of two
  }
  set_fused_gemm_tile_tokens(saved);
  set_fused_gemm_lead(saved_lead);
}

// Several matrices in one launch (Q·K·V, gate·up): ragged row counts, so part boundaries
// fall inside the CTA grid's row-tile sequence at uneven places; outputs with row strides
// wider than their rows (untouched padding), one part accumulating; both tiles and the
// by-size choice; both launch orders (fused_gemm_tokens_fast).
TEST(CudaGemmDequant, GroupMatchesReferencePerPart) {
  IMP_SKIP_WITHOUT_GPU();
  if (!have_wgmma()) GTEST_SKIP() << "gemm_dequant needs a compute capability 9.0 GPU";
  const int saved = fused_gemm_tile_tokens(), saved_lead = fused_gemm_lead();
  for (auto [tile, lead] : {std::pair{128, 1}, std::pair{256, 1}, std::pair{0, 1}, std::pair{128, 2}}) {
    SCOPED_TRACE(std::to_string(tile) + " tokens, lead " + std::to_string(lead));
    set_fused_gemm_tile_tokens(tile);
    set_fused_gemm_lead(lead);
    check_gemm(FormatId::Q4_0, {{200, 200, false}, {64, 72, false}, {37, 37, true}}, 384, 300);
    check_gemm(FormatId::NVFP4_CKPT, {{130, 130, false}, {128, 160, true}}, 256, 129);
    check_gemm(FormatId::Q4_K, {{96, 96, false}, {160, 160, false}, {8, 8, false}, {256, 300, false}}, 512, 40);
    check_gemm(FormatId::Q6_K, {{150, 150, false}, {128, 136, true}}, 768, 200);  // 128-token tiles only
    check_gemm(FormatId::Q5_K, {{150, 150, false}, {128, 136, true}}, 768, 200);
  }
  // Token tiles first in the grid (fused_gemm_tokens_fast): the same results.
  const bool saved_order = fused_gemm_tokens_fast();
  set_fused_gemm_tokens_fast(!saved_order);
  set_fused_gemm_tile_tokens(0);
  check_gemm(FormatId::Q4_0, {{200, 200, false}, {64, 72, false}, {37, 37, true}}, 384, 300);
  check_gemm(FormatId::Q4_K, {{96, 96, false}, {256, 300, false}}, 512, 40);
  set_fused_gemm_tokens_fast(saved_order);
  set_fused_gemm_tile_tokens(saved);
  set_fused_gemm_lead(saved_lead);
}

// The tile choice (host only, runs in CI): whole waves of one CTA per SM, 256-token CTAs
// counted at their better rate — the 8B shapes on 132 SMs as the session-14 bench ranked them.
TEST(CudaGemmDequant, TileTokensFollowTheWaves) {
  EXPECT_EQ(gemm_dequant_tile_tokens(32, 512, 132), 128);   // 4096 rows: 128 CTAs, one wave
  EXPECT_EQ(gemm_dequant_tile_tokens(48, 512, 132), 256);   // Q·K·V 6144: 192 CTAs of 128 = 2 waves
  EXPECT_EQ(gemm_dequant_tile_tokens(224, 512, 132), 256);  // gate·up 2 × 14336
  EXPECT_EQ(gemm_dequant_tile_tokens(32, 2048, 132), 256);  // many waves: the better rate wins
  EXPECT_EQ(gemm_dequant_tile_tokens(1, 40, 132), 128);     // one CTA either way: the smaller tile
}

TEST(CudaGemmDequant, RefusesWhatItCannotRun) {
  const DeviceMatrix q5{FormatId::Q3_K, 16, 256, reinterpret_cast<void*>(256), reinterpret_cast<void*>(256), 1.0f,
                        WeightLayout::kMma};
  std::string why;
  EXPECT_FALSE(gemm_dequant_supported(q5, &why));
  EXPECT_NE(why.find("kMma"), std::string::npos) << why;
  const DeviceMatrix native{FormatId::Q4_0, 16, 128, reinterpret_cast<void*>(256), reinterpret_cast<void*>(256), 1.0f,
                            WeightLayout::kNative};
  EXPECT_FALSE(gemm_dequant_supported(native));
  const DeviceMatrix odd{FormatId::Q4_0, 16, 96, reinterpret_cast<void*>(256), reinterpret_cast<void*>(256), 1.0f,
                         WeightLayout::kMma};
  EXPECT_FALSE(gemm_dequant_supported(odd, &why));
  EXPECT_NE(why.find("units"), std::string::npos) << why;
  EXPECT_THROW(gemm_dequant(q5, nullptr, 4, nullptr, 16, false, nullptr), Error);
  EXPECT_THROW(gemm_dequant_group(nullptr, 0, nullptr, 4, nullptr), Error);
}

// The backend's prefill GEMM (matmul, n_tok > 1, BF16 mode) of kMma weights with the fused
// kernel forced off, forced on and by size: all match the FP32 reference as the BF16 GEMM
// must; stats() counts what the fused kernel ran (33 tokens: by size takes it).
TEST(CudaGemmDequant, BackendPrefillGemmTakesItWhenOn) {
  IMP_SKIP_WITHOUT_GPU();
  const FusedGemm saved = fused_gemm_mode();
  for (FusedGemm mode : {FusedGemm::kOff, FusedGemm::kOn, FusedGemm::kBySize}) {
    set_fused_gemm_mode(mode);
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
      EXPECT_LT(rel_error(download(b, dy, ref.size()), ref), 1e-2) << format_name(f) << " mode " << int(mode);
      b.release(dx);
      b.release(dy);
    }
    const bool ran = b.stats().find("fused-dequantization prefill GEMMs: 0 ") == std::string::npos;
    EXPECT_EQ(ran, mode != FusedGemm::kOff && have_wgmma()) << b.stats();
  }
  set_fused_gemm_mode(saved);
}

// Q6_K and Q5_K in the kMma layout through the backend (set_mma_high_bit_formats, IMP_CUDA_Q5K_Q6K_MMA): the decode
// GEMV (1 token), the fused prefill GEMM (70) and the layout's BF16 dequantization for cuBLAS
// (1100 tokens, above kFusedGemmMaxTokens) against the FP32 reference; only the kMma layout
// can take the fused GEMM, so its count shows which layout the upload chose.
TEST(CudaGemmDequant, BackendRunsHighBitFormatsInTheMmaLayout) {
  IMP_SKIP_WITHOUT_GPU();
  const bool saved = mma_high_bit_formats_on();
  const FusedGemm saved_mode = fused_gemm_mode();
  set_mma_high_bit_formats(true);
  set_fused_gemm_mode(FusedGemm::kBySize);
  {
    CudaBackend b;
    const int64_t rows = 300, cols = 4352;
    for (FormatId f : {FormatId::Q6_K, FormatId::Q5_K}) {
    SCOPED_TRACE(format_name(f));
    const OwnedQuantMatrix q = quantize(f, random_floats(size_t(rows * cols), 606, 0.05f), rows, cols);
    const MatrixHandle h = b.add_matrix(q.view(), "w");
    for (int64_t n_tok : {1, 70, 1100}) {
      expect_matmul_matches_reference(b, h, q, n_tok, 607 + uint64_t(n_tok), n_tok == 1 ? 2e-3 : 1e-2);
    }
    }
    if (have_wgmma()) EXPECT_NE(b.stats().find("fused-dequantization prefill GEMMs: 2 "), std::string::npos) << b.stats();
  }
  set_mma_high_bit_formats(saved);
  set_fused_gemm_mode(saved_mode);
}

// The fused hooks of a prefill group their GEMMs (gemm_group): Q and K (Q4_0) in one launch,
// V (Q8_0, another format) on its own; gate and up (Q4_K) in one; every output as the FP32
// reference's, and stats() counts the four grouped GEMMs plus V's.
TEST(CudaGemmDequant, BackendHooksGroupTheirGemms) {
  IMP_SKIP_WITHOUT_GPU();
  const FusedGemm saved = fused_gemm_mode();
  set_fused_gemm_mode(FusedGemm::kBySize);
  CudaBackend b;
  const int64_t cols = 512, n_tok = 70, n_ff = 384;
  struct W {
    FormatId f;
    int64_t rows;
    OwnedQuantMatrix q;
    MatrixHandle h;
  };
  std::vector<W> ws = {{FormatId::Q4_0, 256, {}, 0}, {FormatId::Q4_0, 64, {}, 0}, {FormatId::Q8_0, 64, {}, 0},
                       {FormatId::Q4_K, n_ff, {}, 0}, {FormatId::Q4_K, n_ff, {}, 0}};
  for (size_t i = 0; i < ws.size(); ++i) {
    ws[i].q = quantize(ws[i].f, random_floats(size_t(ws[i].rows * cols), 300 + i, 0.05f), ws[i].rows, cols);
    ws[i].h = b.add_matrix(ws[i].q.view(), "w");
  }
  const auto x = random_floats(size_t(n_tok * cols), 53);
  float* dx = upload(b, x);
  std::vector<float*> dy;
  for (const W& w : ws) dy.push_back(b.alloc(n_tok * w.rows));
  float* act = b.alloc(n_tok * n_ff);
  b.matmul_qkv(ws[0].h, ws[1].h, ws[2].h, dx, n_tok, dy[0], dy[1], dy[2]);
  b.ffn_gate_up_swiglu(ws[3].h, ws[4].h, dx, n_tok, n_ff, dy[3], dy[4], act);
  std::vector<std::vector<float>> ref(ws.size());
  for (size_t i = 0; i < ws.size(); ++i) {
    ref[i].resize(size_t(n_tok * ws[i].rows));
    matmul_ref(ws[i].q.view(), x.data(), n_tok, ref[i].data());
    if (i < 3) EXPECT_LT(rel_error(download(b, dy[i], ref[i].size()), ref[i]), 1e-2) << "matrix " << i;
  }
  std::vector<float> act_ref(size_t(n_tok * n_ff));
  for (size_t e = 0; e < act_ref.size(); ++e) {
    const float g = ref[3][e];
    act_ref[e] = g / (1.0f + std::exp(-g)) * ref[4][e];
  }
  EXPECT_LT(rel_error(download(b, act, act_ref.size()), act_ref), 1e-2);
  if (have_wgmma()) EXPECT_NE(b.stats().find("fused-dequantization prefill GEMMs: 5 "), std::string::npos) << b.stats();
  set_fused_gemm_mode(saved);
}

}  // namespace
}  // namespace imp::cuda::test
