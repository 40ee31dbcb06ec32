// Each CUDA forward op against its CPU reference (backends/cpu/ops.h *_ref) on small,
// awkward shapes with fresh random data; the KV-cache rows byte for byte.
#include <fmt/core.h>

#include <algorithm>
#include <cstring>

#include "common/error.h"

#include "backends/cpu/cpu_backend.h"
#include "backends/cuda/attention_decode_kernel.h"
#include "backends/cuda/check.h"
#include "backends/cuda/gemm_dequant.h"
#include "backends/cuda/gemv.h"
#include "formats/f16.h"
#include "formats/quant_matrix.h"
#include "forward_test_util.h"
#include "runtime/kv_cache.h"

namespace imp::cuda::test {
namespace {

TEST(CudaForwardOps, RmsNormMatchesReference) {
  IMP_SKIP_WITHOUT_GPU();
  CudaBackend b;
  for (int64_t n : {1, 37, 576, 1000}) {
    const int64_t rows = 3;
    const auto x = random_floats(size_t(rows * n), 11 + uint64_t(n), 3.0f);
    const auto gain = random_floats(size_t(n), 12 + uint64_t(n));
    std::vector<float> ref(x.size());
    rmsnorm_ref(x.data(), gain.data(), rows, n, 1e-5f, ref.data());
    float* dx = upload(b, x);
    float* dg = upload(b, gain);
    float* dout = b.alloc(rows * n);
    rmsnorm(dx, dg, rows, n, 1e-5f, dout, b.stream());
    EXPECT_LT(rel_error(download(b, dout, x.size()), ref), 1e-5) << "rmsnorm n=" << n;
    // The BF16 form (prefill): the same bits as the FP32 norm rounded by f32_to_bf16.
    float* d16 = b.alloc(rows * n);  // 2× the room the uint16_t pairs need
    float* d16_ref = b.alloc(rows * n);
    rmsnorm_bf16(dx, dg, rows, n, 1e-5f, reinterpret_cast<uint16_t*>(d16), b.stream());
    f32_to_bf16(dout, rows * n, reinterpret_cast<uint16_t*>(d16_ref), b.stream());
    std::vector<uint16_t> got(size_t(rows * n)), want(got.size());
    IMP_CUDA_CHECK(cudaStreamSynchronize(b.stream()));
    IMP_CUDA_CHECK(cudaMemcpy(got.data(), d16, got.size() * 2, cudaMemcpyDeviceToHost));
    IMP_CUDA_CHECK(cudaMemcpy(want.data(), d16_ref, want.size() * 2, cudaMemcpyDeviceToHost));
    EXPECT_EQ(got, want) << "rmsnorm_bf16 n=" << n;
    rmsnorm(dx, dg, rows, n, 1e-5f, dx, b.stream());  // in place
    EXPECT_LT(rel_error(download(b, dx, x.size()), ref), 1e-5) << "rmsnorm in place n=" << n;
    for (float* p : {dx, dg, dout, d16, d16_ref}) b.release(p);
  }
}

// The producers of the fused-dequantization GEMM's input (rmsnorm_f16_mma, swiglu_f16_mma):
// the FP32 op's values rounded to f16 (nearest even, saturating) and placed in the kMma column
// order — column 4k + t of each 16-column chunk at position 8·(t / 2) + 2k + t % 2 — bit for
// bit; an element beyond f16's range saturates to 65504.
TEST(CudaForwardOps, ProducersWriteTheFusedGemmColumns) {
  IMP_SKIP_WITHOUT_GPU();
  CudaBackend b;
  const auto placed = [](const std::vector<float>& v) {
    std::vector<uint16_t> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      const size_t c = i % 16, k = c / 4, t = c % 4;
      out[i - c + 8 * (t / 2) + 2 * k + t % 2] = f32_to_f16(std::clamp(v[i], -65504.0f, 65504.0f));
    }
    return out;
  };
  const auto fetch = [&](const float* p, size_t n) {
    std::vector<uint16_t> h(n);
    IMP_CUDA_CHECK(cudaStreamSynchronize(b.stream()));
    IMP_CUDA_CHECK(cudaMemcpy(h.data(), p, n * 2, cudaMemcpyDeviceToHost));
    return h;
  };
  for (int64_t n : {int64_t(576), int64_t(9216)}) {  // 9216: past the norm's 8192 register-held columns
    const int64_t rows = 5;
    const auto x = random_floats(size_t(rows * n), 21 + uint64_t(n), 3.0f);
    const auto gain = random_floats(size_t(n), 22 + uint64_t(n));
    float *dx = upload(b, x), *dg = upload(b, gain), *dout = b.alloc(rows * n), *d16 = b.alloc(rows * n);
    rmsnorm(dx, dg, rows, n, 1e-5f, dout, b.stream());
    rmsnorm_f16_mma(dx, dg, rows, n, 1e-5f, reinterpret_cast<uint16_t*>(d16), b.stream());
    EXPECT_EQ(fetch(d16, size_t(rows * n)), placed(download(b, dout, size_t(rows * n)))) << "rmsnorm_f16_mma n=" << n;
    for (float* p : {dx, dg, dout, d16}) b.release(p);
  }
  const int64_t n = 3 * 14336;
  auto g = random_floats(size_t(n), 23, 4.0f), u = random_floats(size_t(n), 24);
  g[5] = 4.0f, u[5] = 1e6f;  // silu(4)·1e6 ≫ 65504
  float *dg = upload(b, g), *du = upload(b, u), *dout = b.alloc(n), *d16 = b.alloc(n);
  swiglu(dg, du, n, dout, b.stream());
  swiglu_f16_mma(dg, du, n, reinterpret_cast<uint16_t*>(d16), b.stream());
  const std::vector<uint16_t> got = fetch(d16, size_t(n));
  EXPECT_EQ(got, placed(download(b, dout, size_t(n)))) << "swiglu_f16_mma";
  EXPECT_EQ(got[size_t(8 * 0 + 2 * 1 + 1)], 0x7BFF) << "column 5 (chunk position 3) saturates to 65504";
  EXPECT_THROW(swiglu_f16_mma(dg, du, 40, reinterpret_cast<uint16_t*>(d16), b.stream()), Error);
  EXPECT_THROW(rmsnorm_f16_mma(dg, du, 1, 40, 1e-5f, reinterpret_cast<uint16_t*>(d16), b.stream()), Error);
  for (float* p : {dg, du, dout, d16}) b.release(p);
}

// The fused residual add + norm: x is the exact f32 sum (written back), out the norm of it.
// Widths past the 8192 elements kept in registers take the kernel's tail loop.
TEST(CudaForwardOps, AddRmsNormMatchesAddThenReference) {
  IMP_SKIP_WITHOUT_GPU();
  CudaBackend b;
  for (int64_t n : {1, 37, 4096, 9000}) {
    const int64_t rows = 2;
    const auto x = random_floats(size_t(rows * n), 21 + uint64_t(n), 3.0f);
    const auto delta = random_floats(size_t(rows * n), 22 + uint64_t(n));
    const auto gain = random_floats(size_t(n), 23 + uint64_t(n));
    std::vector<float> sum(x.size()), ref(x.size());
    for (size_t i = 0; i < x.size(); ++i) sum[i] = x[i] + delta[i];
    rmsnorm_ref(sum.data(), gain.data(), rows, n, 1e-6f, ref.data());
    float *dx = upload(b, x), *dd = upload(b, delta), *dg = upload(b, gain), *dout = b.alloc(rows * n);
    b.add_rmsnorm(dx, dd, dg, rows, n, 1e-6f, dout);
    EXPECT_EQ(download(b, dx, x.size()), sum) << "residual n=" << n;
    EXPECT_LT(rel_error(download(b, dout, x.size()), ref), 1e-5) << "norm n=" << n;
    for (float* p : {dx, dd, dg, dout}) b.release(p);
  }
}

// A prefill GEMM over more rows than one BF16 weight chunk (64M elements: 262144 rows of
// 256): the chunks alternate the two buffers, dequantized on the side stream while the other
// is multiplied; then matrices of one chunk each reuse the buffers in turn, interleaved with
// a format that takes the serial path through buffer 0 — every result against the reference.
TEST(CudaForwardOps, PipelinedPrefillGemmOverManyChunks) {
  IMP_SKIP_WITHOUT_GPU();
  CudaBackend b;
  struct M { FormatId f; int64_t rows; };
  const M mats[] = {{FormatId::Q4_0, 290000}, {FormatId::Q4_K, 300}, {FormatId::Q6_K, 200},
                    {FormatId::Q8_0, 129}, {FormatId::Q4_0, 77}};
  const int64_t cols = 256, n_tok = 3;  // Q4_0 at 256 columns: 262144 rows per chunk, 2 chunks
  std::vector<OwnedQuantMatrix> ws;
  std::vector<MatrixHandle> hs;
  for (const M& m : mats) {
    ws.push_back(quantize(m.f, random_floats(size_t(m.rows * cols), 61 + uint64_t(m.rows), 0.05f), m.rows, cols));
    hs.push_back(b.add_matrix(ws.back().view(), "w"));
  }
  const auto x = random_floats(size_t(n_tok * cols), 71);
  float* dx = upload(b, x);
  std::vector<float*> ys;
  for (size_t i = 0; i < ws.size(); ++i) {  // enqueue all before reading any: the streams overlap
    ys.push_back(b.alloc(n_tok * mats[i].rows));
    b.matmul(hs[i], dx, n_tok, ys.back());
  }
  for (size_t i = 0; i < ws.size(); ++i) {
    std::vector<float> ref(size_t(n_tok * mats[i].rows));
    matmul_ref(ws[i].view(), x.data(), n_tok, ref.data());
    EXPECT_LT(rel_error(download(b, ys[i], ref.size()), ref), 1e-2) << format_name(mats[i].f) << " " << mats[i].rows;
    b.release(ys[i]);
  }
  b.release(dx);
}

TEST(CudaForwardOps, RopeBothStylesMatchReference) {
  IMP_SKIP_WITHOUT_GPU();
  CudaBackend b;
  CpuBackend cpu(CpuOpsPath::kReference, 1);
  KvCacheConfig kc{1, 3, 72, 64, 16, KvType::F32};
  auto kv = b.create_kv_cache(kc);
  for (RopeStyle style : {RopeStyle::kAdjacent, RopeStyle::kHalfSplit}) {
    const int64_t n_tok = 5, n_head = 3, hd = 72, pos0 = 29;
    RopeParams p{style, 500000.0f, 2.0f};
    const auto x = random_floats(size_t(n_tok * n_head * hd), 21 + int(style));
    std::vector<int32_t> pos;
    for (int64_t t = 0; t < n_tok; ++t) pos.push_back(int32_t(pos0 + t));
    std::vector<float> ref = x;
    rope_ref(ref.data(), pos, n_head, hd, p);
    float* dx = upload(b, x);
    b.begin_step(*kv, pos0, n_tok);
    b.rope(dx, n_tok, n_head, hd, p);
    b.end_step();
    EXPECT_LT(rel_error(download(b, dx, x.size()), ref), 1e-5) << "rope style " << int(style);
    b.release(dx);
  }
}

// n = 1237: the one-element kernels; 1236: the 16-byte (float4) forms of SwiGLU and add.
TEST(CudaForwardOps, ElementwiseMatchReference) {
  IMP_SKIP_WITHOUT_GPU();
  for (const int64_t n : {int64_t(1237), int64_t(1236)}) {
    SCOPED_TRACE(n);
    CudaBackend b;
    const auto g = random_floats(size_t(n), 31, 4.0f), u = random_floats(size_t(n), 32);
    std::vector<float> ref(static_cast<size_t>(n));
    float* dg = upload(b, g);
    float* du = upload(b, u);
    float* dout = b.alloc(n);
    swiglu_ref(g.data(), u.data(), n, ref.data());
    swiglu(dg, du, n, dout, b.stream());
    EXPECT_LT(rel_error(download(b, dout, size_t(n)), ref), 1e-5) << "swiglu";
    {  // swiglu_bf16: the bits of swiglu then f32_to_bf16
      float* d16 = b.alloc(n);
      float* d16_ref = b.alloc(n);
      swiglu_bf16(dg, du, n, reinterpret_cast<uint16_t*>(d16), b.stream());
      f32_to_bf16(dout, n, reinterpret_cast<uint16_t*>(d16_ref), b.stream());
      std::vector<uint16_t> got(static_cast<size_t>(n)), want(got.size());
      IMP_CUDA_CHECK(cudaStreamSynchronize(b.stream()));
      IMP_CUDA_CHECK(cudaMemcpy(got.data(), d16, got.size() * 2, cudaMemcpyDeviceToHost));
      IMP_CUDA_CHECK(cudaMemcpy(want.data(), d16_ref, want.size() * 2, cudaMemcpyDeviceToHost));
      EXPECT_EQ(got, want) << "swiglu_bf16";
      b.release(d16);
      b.release(d16_ref);
    }
    gelu_tanh_ref(g.data(), n, ref.data());
    gelu_tanh(dg, n, dout, b.stream());
    EXPECT_LT(rel_error(download(b, dout, size_t(n)), ref), 1e-5) << "gelu_tanh";
    add(dg, du, n, b.stream());
    for (int64_t i = 0; i < n; ++i) ref[size_t(i)] = g[size_t(i)] + u[size_t(i)];
    EXPECT_EQ(download(b, dg, size_t(n)), ref) << "add";
    // add_bias over rows of 1237 / 7 = 176.7 → use 7 rows of 171
    const auto bias = random_floats(171, 33);
    std::vector<float> xb(7 * 171);
    std::copy_n(u.begin(), xb.size(), xb.begin());
    float* dx = upload(b, xb);
    float* dbias = upload(b, bias);
    add_bias(dx, dbias, 7, 171, b.stream());
    for (size_t i = 0; i < xb.size(); ++i) xb[i] += bias[i % 171];
    EXPECT_EQ(download(b, dx, xb.size()), xb) << "add_bias";
    for (float* p : {dg, du, dout, dx, dbias}) b.release(p);
  }
}

// GEMV (1 token) and the dequantize + cuBLAS GEMM (several tokens) against matmul_ref.
TEST(CudaForwardOps, MatmulMatchesReference) {
  IMP_SKIP_WITHOUT_GPU();
  for (CudaGemmPrecision prec : {CudaGemmPrecision::kF32, CudaGemmPrecision::kBF16}) {
    // FP32 GEMM with exact FP32 decode activations; BF16 GEMM with the default f16 decode
    // activations (Q8_0 / Q4_0 then sit in the kMma layout: tensor-core GEMV, and the
    // prefill GEMM dequantizes that layout).
    const bool exact = prec == CudaGemmPrecision::kF32;
    CudaBackendOptions o;
    o.gemm = prec;
    o.decode_x = exact ? CudaDecodeActivations::kF32 : CudaDecodeActivations::kF16;
    CudaBackend b(o);
    for (FormatId f : {FormatId::F16, FormatId::BF16, FormatId::Q8_0, FormatId::Q4_0, FormatId::Q4_K, FormatId::Q6_K}) {
      const int64_t rows = 37, cols = 512;
      const auto wf = random_floats(size_t(rows * cols), 41 + int(f), 0.05f);
      const OwnedQuantMatrix w = quantize(f, wf, rows, cols);
      const MatrixHandle h = b.add_matrix(w.view(), "w");
      for (int64_t n_tok : {1, 5, 17}) {
        // The FP32 GEMV and GEMM decode exactly and sum in FP32; the tensor-core GEMV rounds x
        // to f16 (relative 2^-11 per element); the BF16 GEMM rounds both operands.
        SCOPED_TRACE(exact ? "f32" : "bf16");
        expect_matmul_matches_reference(b, h, w, n_tok, 51 + uint64_t(n_tok), exact ? 1e-5 : n_tok == 1 ? 2e-3 : 1e-2);
      }
    }
  }
}

// The prefill FFN block hook (rmsnorm_ffn_swiglu_add): in the BF16 mode SwiGLU writes the down
// GEMM's BF16 activations itself; with the fused-dequantization GEMM off the result must be
// the composition's bits (the same BF16 operands reach the same cuBLAS calls). With it on
// (the default for these sizes), the norm and SwiGLU write the kMma-weight GEMMs' f16 input
// directly, one rounding where the composition has two (BF16, then f16): the same result
// within that rounding. FP8 weights keep the composition. Also against the CPU reference
// within the BF16 GEMM tolerance.
TEST(CudaForwardOps, PrefillFfnBlockMatchesComposition) {
  IMP_SKIP_WITHOUT_GPU();
  const FusedGemm saved = fused_gemm_mode();
  const int64_t E = 256, F = 704, n_tok = 37;  // F: whole Q4_0 / Q8_0 blocks
  for (const FusedGemm mode : {FusedGemm::kOff, FusedGemm::kBySize})
  for (FormatId f : {FormatId::BF16, FormatId::Q4_0, FormatId::Q8_0}) {
    SCOPED_TRACE(fmt::format("{}, fused GEMM {}", format_name(f), mode == FusedGemm::kOff ? "off" : "by size"));
    set_fused_gemm_mode(mode);
    const bool same_bits = mode == FusedGemm::kOff || f == FormatId::BF16;
    CudaBackend b;
    CpuBackend cpu(CpuOpsPath::kReference, 1);
    const OwnedQuantMatrix wg = quantize(f, random_floats(size_t(F * E), 81, 0.05f), F, E);
    const OwnedQuantMatrix wu = quantize(f, random_floats(size_t(F * E), 82, 0.05f), F, E);
    const OwnedQuantMatrix wd = quantize(f, random_floats(size_t(E * F), 83, 0.05f), E, F);
    const MatrixHandle g = b.add_matrix(wg.view(), "gate"), u = b.add_matrix(wu.view(), "up"),
                       d = b.add_matrix(wd.view(), "down");
    const MatrixHandle cg = cpu.add_matrix(wg.view(), "gate"), cu = cpu.add_matrix(wu.view(), "up"),
                       cd = cpu.add_matrix(wd.view(), "down");
    const auto gain = random_floats(size_t(E), 84);
    const auto x = random_floats(size_t(n_tok * E), 85, 2.0f);
    const float* dgain = b.add_vector(gain.data(), E, "gain");
    const float* cgain = cpu.add_vector(gain.data(), E, "gain");
    float *x1 = upload(b, x), *x2 = upload(b, x), *h = b.alloc(n_tok * E), *gs = b.alloc(n_tok * F),
          *us = b.alloc(n_tok * F), *o = b.alloc(n_tok * E);
    b.rmsnorm_ffn_swiglu_add(x1, dgain, n_tok, E, 1e-5f, h, g, u, d, F, gs, us, gs, o);
    b.rmsnorm_ffn_gate_up_swiglu(x2, dgain, n_tok, E, 1e-5f, h, g, u, F, gs, us, gs);
    b.matmul_add(d, gs, n_tok, E, x2, o);
    const auto got = download(b, x1, x.size()), composed = download(b, x2, x.size());
    expect_same_update(got, composed, x, same_bits, 5e-3);
    std::vector<float> cx = x, ch(x.size()), cgs(size_t(n_tok * F)), cus(cgs.size()), co(x.size());
    cpu.rmsnorm_ffn_swiglu_add(cx.data(), cgain, n_tok, E, 1e-5f, ch.data(), cg, cu, cd, F, cgs.data(), cus.data(),
                               cgs.data(), co.data());
    std::vector<float> delta(x.size()), cdelta(x.size());
    for (size_t i = 0; i < x.size(); ++i) delta[i] = got[i] - x[i], cdelta[i] = cx[i] - x[i];
    EXPECT_LT(rel_error(delta, cdelta), 2e-2);
    for (float* p : {x1, x2, h, gs, us, o}) b.release(p);
  }
  set_fused_gemm_mode(saved);
}

// The decode step's one-launch attention input (norm, QKV GEMV, RoPE, KV write:
// gemv_mma_qkv_rope_kv) against the same backend's separate ops, both RoPE styles, every
// element-wise KV type and a scaled one (int8: the fused form refuses it, the hook falls
// back), GQA, tokens in several cache blocks. q, k and v within float rounding of the
// rotation; cache rows within one unit in the last place of their type. A V of another
// format than Q and K (Q4_0 + Q8_0; Q4_K / Q5_K + Q6_K as in Q4_K_M / Q5_K_M, the high-bit
// formats in the kMma layout) runs
// as a Q·K launch and a V launch.
TEST(CudaForwardOps, FusedQkvRopeKvWriteMatchesSeparateOps) {
  IMP_SKIP_WITHOUT_GPU();
  const bool saved_q6 = mma_high_bit_formats_on();
  set_mma_high_bit_formats(true);
  CudaBackendOptions o;
  o.graphs = false;
  CudaBackend b(o);
  const int64_t E = 256, H = 4, nkv = 2;
  for (int64_t hd : {64, 128}) {
    for (auto [f, fv] : {std::pair{FormatId::Q8_0, FormatId::Q8_0}, std::pair{FormatId::Q4_0, FormatId::Q4_0},
                         std::pair{FormatId::Q4_0, FormatId::Q8_0}, std::pair{FormatId::Q4_K, FormatId::Q6_K},
                         std::pair{FormatId::Q5_K, FormatId::Q6_K}}) {
      const OwnedQuantMatrix wq = quantize(f, random_floats(size_t(H * hd * E), 61 + hd, 0.05f), H * hd, E);
      const OwnedQuantMatrix wk = quantize(f, random_floats(size_t(nkv * hd * E), 62 + hd, 0.05f), nkv * hd, E);
      const OwnedQuantMatrix wv = quantize(fv, random_floats(size_t(nkv * hd * E), 63 + hd, 0.05f), nkv * hd, E);
      const MatrixHandle hq = b.add_matrix(wq.view(), "wq"), hk = b.add_matrix(wk.view(), "wk"),
                         hv = b.add_matrix(wv.view(), "wv");
      const auto gain = random_floats(size_t(E), 64, 1.0f);
      const float* dgain = b.add_vector(gain.data(), E, "gain");
      for (KvType t : {KvType::F16, KvType::BF16, KvType::F32, KvType::INT8}) {
        for (RopeStyle style : {RopeStyle::kAdjacent, RopeStyle::kHalfSplit}) {
          SCOPED_TRACE(fmt::format("{}+{} hd {} {} {}", format_name(f), format_name(fv), hd, kv_type_name(t),
                                   style == RopeStyle::kAdjacent ? "adjacent" : "half-split"));
          const KvCacheConfig kc{1, nkv, hd, 64, 16, t};
          auto fused_kv = b.create_kv_cache(kc), sep_kv = b.create_kv_cache(kc);
          RopeParams rp;
          rp.style = style;
          rp.theta = 500000.0f;
          float *h = b.alloc(E), *q1 = b.alloc(H * hd), *k1 = b.alloc(nkv * hd), *v1 = b.alloc(nkv * hd);
          float *q2 = b.alloc(H * hd), *k2 = b.alloc(nkv * hd), *v2 = b.alloc(nkv * hd);
          for (int64_t pos = 0; pos < 40; ++pos) {
            float* x = upload(b, random_floats(size_t(E), 70 + uint64_t(pos), 3.0f));
            b.begin_step(*fused_kv, pos, 1);
            b.rmsnorm_qkv_rope_kv_write(x, dgain, 1, E, 1e-5f, h, hq, hk, hv, q1, k1, v1, H, hd, rp, *fused_kv, 0);
            b.end_step();
            b.begin_step(*sep_kv, pos, 1);
            b.rmsnorm_matmul_qkv(x, dgain, 1, E, 1e-5f, h, hq, hk, hv, q2, k2, v2);
            b.rope_kv_write(q2, k2, v2, 1, H, hd, rp, *sep_kv, 0);
            b.end_step();
            fused_kv->set_n_tokens(pos + 1);
            sep_kv->set_n_tokens(pos + 1);
            EXPECT_LT(rel_error(download(b, q1, size_t(H * hd)), download(b, q2, size_t(H * hd))), 1e-5) << "q at " << pos;
            EXPECT_LT(rel_error(download(b, k1, size_t(nkv * hd)), download(b, k2, size_t(nkv * hd))), 1e-5) << "k at " << pos;
            EXPECT_LT(rel_error(download(b, v1, size_t(nkv * hd)), download(b, v2, size_t(nkv * hd))), 1e-6) << "v at " << pos;
            b.release(x);
          }
          auto& fd = static_cast<CudaKvCache&>(*fused_kv);
          auto& sd = static_cast<CudaKvCache&>(*sep_kv);
          const int64_t row = fd.row_bytes(), block_bytes = kc.block_tokens * nkv * row;
          std::vector<uint8_t> a(static_cast<size_t>(block_bytes)), c(static_cast<size_t>(block_bytes));
          for (bool values : {false, true}) {
            for (int64_t blk = 0; blk * kc.block_tokens < 40; ++blk) {
              fd.copy_block_to_host(0, blk, values, a.data());
              sd.copy_block_to_host(0, blk, values, c.data());
              const int64_t tokens = std::min(kc.block_tokens, 40 - blk * kc.block_tokens);
              const size_t n = size_t(tokens * nkv * row);
              if (t == KvType::INT8) {  // refused by the fused form: the same separate ops ran
                EXPECT_EQ(std::memcmp(a.data(), c.data(), n), 0) << "int8 block " << blk;
              } else if (t == KvType::F32) {  // float rounding of the rotation
                for (size_t i = 0; i + 4 <= n; i += 4) {
                  float fa, fc;
                  std::memcpy(&fa, a.data() + i, 4);
                  std::memcpy(&fc, c.data() + i, 4);
                  ASSERT_NEAR(fa, fc, 1e-5f * std::max(1.0f, std::fabs(fc))) << (values ? "V" : "K") << " block " << blk;
                }
              } else {
                for (size_t i = 0; i + 2 <= n; i += 2) {
                  uint16_t ua, uc;
                  std::memcpy(&ua, a.data() + i, 2);
                  std::memcpy(&uc, c.data() + i, 2);
                  ASSERT_LE(std::abs(int(ua) - int(uc)), 1) << (values ? "V" : "K") << " block " << blk << " byte " << i;
                }
              }
            }
          }
          for (float* p : {h, q1, k1, v1, q2, k2, v2}) b.release(p);
        }
      }
    }
  }
  set_mma_high_bit_formats(saved_q6);
}

// Runs body with both decode attention kernels — the split kernel (a block per 32-key split,
// merged by combine_kernel) and the one-launch kernel (IMP_CUDA_ATTN_WIDE: 16 warps per split
// of up to 512 keys, merged in shared memory; more than 512 keys in the exact mode's prefill,
// so warps walk several tiles) — each with and without the L2 prologue
// (attention_decode_kernel.h), restoring the process-wide choices after.
template <class Body>
void with_and_without_prefetch(Body body) {
  const bool saved_wide = attention_wide_enabled();
  for (bool wide : {false, true}) {
    for (bool prefetch : {true, false}) {
      SCOPED_TRACE(std::string(wide ? "one-launch kernel, " : "split kernel, ") +
                   (prefetch ? "rows prefetched into L2" : "no prefetch"));
      set_attention_wide(wide);
      set_attention_prefetch(prefetch);
      body();
    }
  }
  set_attention_wide(saved_wide);
  set_attention_prefetch(true);
}

// max_tokens 300: decode steps fall in the 256 or the 300 bucket, 8 or 9 attention splits.
// head_dim 72 (two int4 groups and a short one); nvfp4 needs whole 16-blocks: 80.
KvCacheConfig kv_config(KvType t) { return {2, 2, t == KvType::NVFP4 ? 80 : 72, 300, 16, t}; }

// The exact mode: FP32 prefill attention (the BF16 mode's tensor-core prefill kernel has its
// own tests in test_attention_prefill.cc).
CudaBackendOptions exact_mode() {
  CudaBackendOptions o;
  o.gemm = CudaGemmPrecision::kF32;
  return o;
}

// kv_write rows byte-identical to the CPU cache; attention (prefill, then split-K decode)
// within accumulation error of attention_ref over the same bytes.
TEST(CudaForwardOps, KvWriteAndAttentionMatchCpuPerType) {
  IMP_SKIP_WITHOUT_GPU();
  with_and_without_prefetch([&] {
    for (KvType t : kAllKvTypes) {
      SCOPED_TRACE(std::string(kv_type_name(t)));
      CudaBackend b(exact_mode());
      CpuBackend cpu(CpuOpsPath::kReference, 1);
      const KvCacheConfig kc = kv_config(t);
      auto dkv = b.create_kv_cache(kc);
      auto hkv = cpu.create_kv_cache(kc);
      const int64_t H = 6, hd = kc.head_dim, nkv = kc.n_kv_head;
      int64_t pos = 0;
      for (int64_t n_tok : {37, 1, 1, 3, 1}) {
        for (int64_t layer = 0; layer < kc.n_layer; ++layer) {
          const uint64_t seed = uint64_t(pos * 10 + layer);
          const auto q = random_floats(size_t(n_tok * H * hd), 100 + seed);
          const auto k = random_floats(size_t(n_tok * nkv * hd), 200 + seed, 2.0f);
          const auto v = random_floats(size_t(n_tok * nkv * hd), 300 + seed, 0.5f);
          std::vector<float> ref(q.size());
          cpu.begin_step(*hkv, pos, n_tok);
          cpu.kv_write(*hkv, layer, k.data(), v.data(), n_tok);
          cpu.attention(q.data(), n_tok, H, *hkv, layer, 0, 0.0f, ref.data());
          cpu.end_step();
          float *dq = upload(b, q), *dk = upload(b, k), *dv = upload(b, v), *dout = b.alloc(int64_t(q.size()));
          b.begin_step(*dkv, pos, n_tok);
          b.kv_write(*dkv, layer, dk, dv, n_tok);
          b.attention(dq, n_tok, H, *dkv, layer, 0, 0.0f, dout);
          b.end_step();
          EXPECT_LT(rel_error(download(b, dout, ref.size()), ref), 1e-4) << "attention at " << pos << ", " << n_tok
                                                                         << " tokens, layer " << layer;
          for (float* p : {dq, dk, dv, dout}) b.release(p);
        }
        pos += n_tok;
        hkv->set_n_tokens(pos);
        dkv->set_n_tokens(pos);
      }
      // Every written block byte for byte (the last block only up to `pos`).
      auto& dev = static_cast<CudaKvCache&>(*dkv);
      auto& host = static_cast<KvCache&>(*hkv);
      const int64_t row = dev.row_bytes(), block_bytes = kc.block_tokens * nkv * row;
      std::vector<uint8_t> got(static_cast<size_t>(block_bytes));
      for (int64_t layer = 0; layer < kc.n_layer; ++layer) {
        const KvLayerView hv = host.layer_view(layer);
        for (bool values : {false, true}) {
          for (int64_t blk = 0; blk * kc.block_tokens < pos; ++blk) {
            dev.copy_block_to_host(layer, blk, values, got.data());
            const uint8_t* want = (values ? hv.v_blocks : hv.k_blocks)[size_t(blk)];
            const int64_t tokens = std::min(kc.block_tokens, pos - blk * kc.block_tokens);
            EXPECT_EQ(std::memcmp(got.data(), want, size_t(tokens * nkv * row)), 0)
                << (values ? "V" : "K") << " block " << blk << " of layer " << layer;
          }
        }
      }
    }
  });
}

// The decode kernel's other shapes: GQA groups past one block's 8 heads (two and three
// subgroups), MHA, head_dim 256 and one that is not a multiple of 4 (the per-element
// path), with contexts of several 32-key tiles per split (prefill: one split of 287 keys;
// decode at 288–290 in the 300 bucket: 9 splits of ~32 keys), and 700 keys in the 1024
// bucket: 32 splits of ~22.
TEST(CudaForwardOps, DecodeAttentionGroupsHeadDimsAndTilesMatchCpu) {
  IMP_SKIP_WITHOUT_GPU();
  with_and_without_prefetch([&] {
    struct Case {
      int64_t n_head, n_kv, hd;
      KvType type;
      int64_t prompt = 287, max_tokens = 300;
    };
    for (const Case& cs : {Case{32, 2, 128, KvType::F16}, Case{20, 1, 256, KvType::BF16}, Case{3, 3, 70, KvType::F32},
                           Case{8, 2, 64, KvType::FP8_E4M3}, Case{32, 8, 128, KvType::F16, 700, 1100}}) {
      SCOPED_TRACE(fmt::format("{} heads, {} kv heads, head_dim {}, {}, {} keys", cs.n_head, cs.n_kv, cs.hd,
                               kv_type_name(cs.type), cs.prompt));
      CudaBackend b(exact_mode());
      CpuBackend cpu(CpuOpsPath::kReference, 1);
      const KvCacheConfig kc{1, cs.n_kv, cs.hd, cs.max_tokens, 16, cs.type};
      auto dkv = b.create_kv_cache(kc);
      auto hkv = cpu.create_kv_cache(kc);
      int64_t pos = 0;
      for (int64_t n_tok : {cs.prompt, int64_t(1), int64_t(1), int64_t(1)}) {
        const uint64_t seed = uint64_t(pos + cs.hd);
        const auto q = random_floats(size_t(n_tok * cs.n_head * cs.hd), 1100 + seed);
        const auto k = random_floats(size_t(n_tok * cs.n_kv * cs.hd), 1200 + seed, 2.0f);
        const auto v = random_floats(size_t(n_tok * cs.n_kv * cs.hd), 1300 + seed, 0.5f);
        std::vector<float> ref(q.size());
        cpu.begin_step(*hkv, pos, n_tok);
        cpu.kv_write(*hkv, 0, k.data(), v.data(), n_tok);
        cpu.attention(q.data(), n_tok, cs.n_head, *hkv, 0, 0, 0.0f, ref.data());
        cpu.end_step();
        float *dq = upload(b, q), *dk = upload(b, k), *dv = upload(b, v), *dout = b.alloc(int64_t(q.size()));
        b.begin_step(*dkv, pos, n_tok);
        b.kv_write(*dkv, 0, dk, dv, n_tok);
        b.attention(dq, n_tok, cs.n_head, *dkv, 0, 0, 0.0f, dout);
        b.end_step();
        EXPECT_LT(rel_error(download(b, dout, ref.size()), ref), 1e-4) << n_tok << " tokens at " << pos;
        for (float* p : {dq, dk, dv, dout}) b.release(p);
        pos += n_tok;
        hkv->set_n_tokens(pos);
        dkv->set_n_tokens(pos);
      }
    }
  });
}

TEST(CudaForwardOps, SlidingWindowScaledAttentionMatchesCpuReference) {
  IMP_SKIP_WITHOUT_GPU();
  with_and_without_prefetch([&] {
    CudaBackend b(exact_mode());
    CpuBackend cpu(CpuOpsPath::kReference, 1);
    const KvCacheConfig kc = kv_config(KvType::F16);
    auto dkv = b.create_kv_cache(kc);
    auto hkv = cpu.create_kv_cache(kc);
    const int64_t H = 4, hd = kc.head_dim, nkv = kc.n_kv_head, window = 7;
    const float scale = 0.3f;  // gemma 3's query_pre_attn_scalar^-½ path, not 1/sqrt(head_dim)
    int64_t pos = 0;
    for (int64_t n_tok : {29, 1, 5, 1}) {
      const auto q = random_floats(size_t(n_tok * H * hd), 500 + uint64_t(pos));
      const auto k = random_floats(size_t(n_tok * nkv * hd), 600 + uint64_t(pos));
      const auto v = random_floats(size_t(n_tok * nkv * hd), 700 + uint64_t(pos));
      cpu.begin_step(*hkv, pos, n_tok);
      cpu.kv_write(*hkv, 0, k.data(), v.data(), n_tok);
      cpu.end_step();
      std::vector<float> ref(q.size());
      cpu.begin_step(*hkv, pos, n_tok);
      cpu.attention(q.data(), n_tok, H, *hkv, 0, window, scale, ref.data());
      cpu.end_step();
      float *dq = upload(b, q), *dk = upload(b, k), *dv = upload(b, v), *dout = b.alloc(int64_t(q.size()));
      b.begin_step(*dkv, pos, n_tok);
      b.kv_write(*dkv, 0, dk, dv, n_tok);
      b.attention(dq, n_tok, H, *dkv, 0, window, scale, dout);
      b.end_step();
      EXPECT_LT(rel_error(download(b, dout, ref.size()), ref), 1e-4) << "window " << window << " at " << pos;
      for (float* p : {dq, dk, dv, dout}) b.release(p);
      pos += n_tok;
      hkv->set_n_tokens(pos);
      dkv->set_n_tokens(pos);
    }
  });
}

// Every KV type has a device codec now; a head_dim the type cannot hold is refused by name.
TEST(CudaForwardOps, KvTypeThatCannotHoldHeadDimIsNamed) {
  IMP_SKIP_WITHOUT_GPU();
  CudaBackend b;
  KvCacheConfig kc{1, 1, 72, 16, 16, KvType::NVFP4};  // 72 is not a multiple of 16
  try {
    b.create_kv_cache(kc);
    FAIL() << "nvfp4 KV with head_dim 72 should be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nvfp4"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("72"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace imp::cuda::test
