// The tensor-core prefill attention (attention_prefill.cu, the BF16 mode's path) against the
// CPU reference over the same cache bytes: head dims of every template (64, 128, 256) and
// padded ones (72, 80), GQA, several 64-query tiles with a ragged last one, a second chunk
// that starts mid-cache, sliding windows, and every KV dtype.
#include <string>

#include "backends/cpu/cpu_backend.h"
#include "backends/cuda/gemm_dequant.h"
#include "formats/quant_matrix.h"
#include "forward_test_util.h"
#include "runtime/kv_cache.h"

namespace imp::cuda::test {
namespace {

// q, k, v and p are rounded to f16 (relative 2^-11 each) before the FP32 products and sums;
// the outputs are convex combinations of v rows, so the error stays near a few 2^-11 of the
// largest |v| — measured ~5e-4 on these shapes.
constexpr double kF16AttentionTolerance = 3e-3;

struct Case {
  int64_t head_dim, n_head, n_kv_head, window;
  KvType dtype;
  std::vector<int64_t> chunks;  // prompt chunk lengths, processed one after another
};

void run_case(const Case& cs, CudaGemmPrecision prec, double tolerance) {
  SCOPED_TRACE("head_dim " + std::to_string(cs.head_dim) + " heads " + std::to_string(cs.n_head) + "/" +
               std::to_string(cs.n_kv_head) + " window " + std::to_string(cs.window) + " kv " +
               std::string(kv_type_name(cs.dtype)));
  CudaBackendOptions o;
  o.gemm = prec;
  CudaBackend b(o);
  CpuBackend cpu(CpuOpsPath::kReference, 1);
  int64_t total = 0;
  for (int64_t n : cs.chunks) total += n;
  const KvCacheConfig kc{1, cs.n_kv_head, cs.head_dim, total, 16, cs.dtype};
  auto dkv = b.create_kv_cache(kc);
  auto hkv = cpu.create_kv_cache(kc);
  const int64_t H = cs.n_head, hd = cs.head_dim, nkv = cs.n_kv_head;
  int64_t pos = 0;
  for (int64_t n_tok : cs.chunks) {
    const uint64_t seed = uint64_t(pos) * 7 + uint64_t(hd);
    const auto q = random_floats(size_t(n_tok * H * hd), 100 + seed);
    const auto k = random_floats(size_t(n_tok * nkv * hd), 200 + seed, 2.0f);
    const auto v = random_floats(size_t(n_tok * nkv * hd), 300 + seed, 0.5f);
    std::vector<float> ref(q.size());
    cpu.begin_step(*hkv, pos, n_tok);
    cpu.kv_write(*hkv, 0, k.data(), v.data(), n_tok);
    cpu.attention(q.data(), n_tok, H, *hkv, 0, cs.window, 0.0f, ref.data());
    cpu.end_step();
    float *dq = upload(b, q), *dk = upload(b, k), *dv = upload(b, v), *dout = b.alloc(int64_t(q.size()));
    b.begin_step(*dkv, pos, n_tok);
    b.kv_write(*dkv, 0, dk, dv, n_tok);
    b.attention(dq, n_tok, H, *dkv, 0, cs.window, 0.0f, dout);
    b.end_step();
    const double err = rel_error(download(b, dout, ref.size()), ref);
    EXPECT_LT(err, tolerance) << n_tok << " tokens at position " << pos;
    for (float* p : {dq, dk, dv, dout}) b.release(p);
    pos += n_tok;
    hkv->set_n_tokens(pos);
    dkv->set_n_tokens(pos);
  }
}

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {64, 8, 2, 0, KvType::F16, {130, 70}},     // 3 query tiles (ragged), then a chunk at 130
      {128, 4, 1, 0, KvType::BF16, {200}},       // GQA 4:1
      {128, 4, 4, 50, KvType::F16, {150, 33}},   // sliding window inside and across tiles
      {256, 2, 2, 0, KvType::FP8_E4M3, {40, 90}},  // gemma's head_dim: 32-key tiles
      {72, 6, 2, 0, KvType::INT8, {77}},         // padded to 128
      {80, 3, 1, 17, KvType::INT4, {65, 64}},    // padded, window shorter than a tile
      {64, 2, 1, 0, KvType::F32, {2, 129}},      // two-token prefill, then a longer one
      {128, 8, 2, 0, KvType::NVFP4, {100, 30}},   // nvfp4 rows decoded into the tile
      {128, 8, 2, 0, KvType::F16, {300, 221}},    // 9 query tiles: the two-stage ring wraps, mid-cache chunk
      {64, 4, 2, 100, KvType::F16, {330}},        // window across several tiles, f16 copies
      {256, 4, 1, 0, KvType::BF16, {97, 70}},     // 32-key tiles over several stages
  };
  return c;
}

TEST(CudaAttentionPrefill, TensorCoreKernelMatchesCpuReference) {
  IMP_SKIP_WITHOUT_GPU();
  for (const Case& c : cases()) run_case(c, CudaGemmPrecision::kBF16, kF16AttentionTolerance);
}

// The exact mode keeps the FP32 kernel: accumulation-order error only.
TEST(CudaAttentionPrefill, ExactModeMatchesCpuReference) {
  IMP_SKIP_WITHOUT_GPU();
  for (const Case& c : cases()) run_case(c, CudaGemmPrecision::kF32, 1e-4);
}

// attention_matmul_add in the BF16 mode: the flash kernel writes the O projection's BF16
// activations itself. With the fused-dequantization GEMM off, bits must equal attention (F32)
// then matmul_add on the same backend — the conversion of the F32 output gives the same BF16
// operand; with it on (Q4_0, by size), the kernel writes the GEMM's f16 kMma columns directly
// (one rounding instead of BF16 then f16): equal within that rounding. Both must match the
// CPU reference within the BF16 GEMM tolerance.
TEST(CudaAttentionPrefill, BlockWithOutputProjectionMatchesComposition) {
  IMP_SKIP_WITHOUT_GPU();
  const FusedGemm saved = fused_gemm_mode();
  const int64_t H = 8, nkv = 2, hd = 128, E = 320, n_tok = 150;
  for (const FusedGemm mode : {FusedGemm::kOff, FusedGemm::kBySize})
  for (FormatId f : {FormatId::BF16, FormatId::Q4_0}) {
    SCOPED_TRACE(std::string(format_name(f)) + (mode == FusedGemm::kOff ? ", fused GEMM off" : ", fused GEMM by size"));
    set_fused_gemm_mode(mode);
    const bool same_bits = mode == FusedGemm::kOff || f == FormatId::BF16;
    CudaBackend b;
    CpuBackend cpu(CpuOpsPath::kReference, 1);
    const OwnedQuantMatrix wo = quantize(f, random_floats(size_t(E * H * hd), 91, 0.05f), E, H * hd);
    const MatrixHandle dwo = b.add_matrix(wo.view(), "wo"), cwo = cpu.add_matrix(wo.view(), "wo");
    const KvCacheConfig kc{1, nkv, hd, n_tok, 16, KvType::F16};
    auto dkv = b.create_kv_cache(kc);
    auto hkv = cpu.create_kv_cache(kc);
    const auto q = random_floats(size_t(n_tok * H * hd), 92), k = random_floats(size_t(n_tok * nkv * hd), 93, 2.0f),
               v = random_floats(size_t(n_tok * nkv * hd), 94, 0.5f), x = random_floats(size_t(n_tok * E), 95);
    float *dq = upload(b, q), *dk = upload(b, k), *dv = upload(b, v), *att = b.alloc(n_tok * H * hd);
    float *x1 = upload(b, x), *x2 = upload(b, x), *o = b.alloc(n_tok * E);
    b.begin_step(*dkv, 0, n_tok);
    b.kv_write(*dkv, 0, dk, dv, n_tok);
    b.attention_matmul_add(dq, n_tok, H, *dkv, 0, 0, 0.0f, att, dwo, E, x1, o);
    b.attention(dq, n_tok, H, *dkv, 0, 0, 0.0f, att);
    b.matmul_add(dwo, att, n_tok, E, x2, o);
    b.end_step();
    const auto got = download(b, x1, x.size()), composed = download(b, x2, x.size());
    expect_same_update(got, composed, x, same_bits, 5e-3);
    std::vector<float> cx = x, catt(q.size()), co(x.size());
    cpu.begin_step(*hkv, 0, n_tok);
    cpu.kv_write(*hkv, 0, k.data(), v.data(), n_tok);
    cpu.attention_matmul_add(q.data(), n_tok, H, *hkv, 0, 0, 0.0f, catt.data(), cwo, E, cx.data(), co.data());
    cpu.end_step();
    std::vector<float> delta(x.size()), cdelta(x.size());
    for (size_t i = 0; i < x.size(); ++i) delta[i] = got[i] - x[i], cdelta[i] = cx[i] - x[i];
    EXPECT_LT(rel_error(delta, cdelta), 2e-2);
    for (float* p : {dq, dk, dv, att, x1, x2, o}) b.release(p);
  }
  set_fused_gemm_mode(saved);
}

}  // namespace
}  // namespace imp::cuda::test
