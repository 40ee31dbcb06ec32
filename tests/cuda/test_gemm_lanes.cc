// The FP8 W8A8 GEMMs of a prefill hook side by side on streams of their own (gemm_lanes.h):
// the same bits as on one stream, through the backend's Q·K·V and FFN hooks (cuBLASLt on the
// activations the norm and SwiGLU quantize, CudaBackend::fp8_run_produced).
#include "backends/cuda/gemm_lanes.h"

#include <string>
#include <vector>

#include "forward_test_util.h"

namespace imp::cuda::test {
namespace {

// Restores the lanes of the environment when a test ends, pass or fail.
struct LanesGuard {
  ~LanesGuard() { set_gemm_lanes(0); }
};

// "… FP8 GEMMs of N hooks side by side …" → N.
int64_t hooks_side_by_side(const std::string& stats) {
  const std::string key = "FP8 GEMMs of ";
  const size_t at = stats.find(key);
  return at == std::string::npos ? -1 : std::stoll(stats.substr(at + key.size()));
}

TEST(CudaGemmLanes, HookGemmsOnLanesGiveTheBitsOfOneStream) {
  IMP_SKIP_WITHOUT_GPU();
  LanesGuard guard;
  // An 8B layer's proportions, small: Q 384 rows, K and V 128 (GQA), gate and up 512.
  const int64_t E = 640, F = 512, n_tok = 77;
  const float eps = 1e-5f;
  for (FormatId f : {FormatId::FP8_E4M3_TENSOR, FormatId::FP8_E4M3_CHANNEL}) {
    SCOPED_TRACE(format_name(f));
    CudaBackend b;
    uint64_t seed = 10 * uint64_t(f);
    auto add = [&](int64_t rows, int64_t cols) {
      const OwnedQuantMatrix w = quantize(f, random_floats(size_t(rows * cols), ++seed, 0.05f), rows, cols);
      return b.add_matrix(w.view(), "w");
    };
    const MatrixHandle wq = add(384, E), wk = add(128, E), wv = add(128, E), gate = add(F, E), up = add(F, E),
                       down = add(E, F);
    std::vector<float> gain = random_floats(size_t(E), ++seed, 0.1f);
    for (float& g : gain) g += 1.0f;
    const float* dgain = b.add_vector(gain.data(), E, "gain");
    const auto x = random_floats(size_t(n_tok * E), ++seed);
    float* dx = upload(b, x);
    float *h = b.alloc(n_tok * E), *q = b.alloc(n_tok * 384), *k = b.alloc(n_tok * 128), *v = b.alloc(n_tok * 128);
    float *g = b.alloc(n_tok * F), *u = b.alloc(n_tok * F), *act = b.alloc(n_tok * F), *scratch = b.alloc(n_tok * E);
    auto run = [&](int lanes) {
      set_gemm_lanes(lanes);
      b.write(dx, x.data(), n_tok * E);
      b.rmsnorm_matmul_qkv(dx, dgain, n_tok, E, eps, h, wq, wk, wv, q, k, v);
      b.rmsnorm_ffn_swiglu_add(dx, dgain, n_tok, E, eps, h, gate, up, down, F, g, u, act, scratch);
      std::vector<float> all;
      for (const auto& [p, n] : {std::pair{static_cast<const float*>(q), 384}, {k, 128}, {v, 128}, {dx, E}}) {
        const auto part = download(b, p, size_t(n_tok * n));
        all.insert(all.end(), part.begin(), part.end());
      }
      return all;
    };
    const std::vector<float> one = run(1);
    EXPECT_EQ(hooks_side_by_side(b.stats()), 0) << b.stats();
    const std::vector<float> three = run(3);
    EXPECT_EQ(hooks_side_by_side(b.stats()), 2) << b.stats();  // Q·K·V on 3 lanes, gate·up on 2
    const std::vector<float> two = run(2);                       // Q·K·V: V back on lane 0
    EXPECT_EQ(hooks_side_by_side(b.stats()), 4) << b.stats();
    EXPECT_EQ(three, one);
    EXPECT_EQ(two, one);
    EXPECT_NE(b.stats().find("; 0 fell back to BF16"), std::string::npos) << b.stats();
    for (float* p : {dx, h, q, k, v, g, u, act, scratch}) b.release(p);
  }
}

}  // namespace
}  // namespace imp::cuda::test
