// Every fast CPU op against its scalar reference on fresh random data of awkward sizes.
// Tolerances are relative (‖fast − ref‖ / ‖ref‖, NaN fails) and named with their reason.
#include <gtest/gtest.h>

#include <atomic>
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "common/random_data.h"
#include "backends/cpu/ops.h"
#include "common/error.h"

namespace imp {
namespace {

// Same math in FP32 instead of double, different summation order: a few ulps per element.
constexpr double kFp32Tol = 2e-6;
// exp/tanh/sin/cos in float vs double, on values of order 1.
constexpr double kTranscendentalTol = 1e-5;
// Fast matmul quantizes the activation to 8 bits per element (Q8_0/Q8_1): each element moves
// by up to d/2 with d = amax/127: rms d/√12 ≈ 0.6 % of the element scale for N(0, 1) data,
// ~1 % when a 32-block's amax reaches 3.5σ (1e-2 failed ~1 run in 150 at one block).
constexpr double kQ8ActivationTol = 2e-2;

using test::randn;
using test::rel_err;
using test::rng;

TEST(ThreadPool, CoversEveryIndexOnceAndRethrows) {
  ThreadPool pool(4);
  EXPECT_LE(pool.size(), ThreadPool::hardware_threads());
  for (int64_t n : {1, 2, 3, 17, 129, 1000}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    pool.parallel_for(n, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
    });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1) << "n=" << n;
  }
  EXPECT_THROW(pool.parallel_for(64, [](int64_t, int64_t) { fail("boom"); }), Error);
  int sum = 0;  // the pool still works after an exception
  pool.parallel_for(1, [&](int64_t, int64_t) { sum = 7; });
  EXPECT_EQ(sum, 7);
}

struct MatmulCase {
  FormatId format;
  double tol;
};

TEST(CpuOps, MatmulFastMatchesReference) {
  ThreadPool pool(3);
  const MatmulCase cases[] = {{FormatId::F32, kFp32Tol},        {FormatId::F16, kFp32Tol},
                              {FormatId::BF16, kFp32Tol},       {FormatId::Q8_0, kQ8ActivationTol},
                              {FormatId::Q4_0, kQ8ActivationTol}, {FormatId::Q4_1, kQ8ActivationTol},
                              {FormatId::Q5_1, kQ8ActivationTol}};
  for (const auto& c : cases) {
    for (int64_t blocks : {1, 3, 17}) {
      for (int64_t n_tok : {1, 3, 5}) {  // 5: the decode-once path of F32 activations
        const int64_t rows = 37, cols = 32 * blocks;
        const auto w = quantize(c.format, randn(rows * cols), rows, cols);
        const auto x = randn(n_tok * cols);
        std::vector<float> ref(size_t(n_tok * rows)), fast(ref.size());
        matmul_ref(w.view(), x.data(), n_tok, ref.data());
        matmul(pool, w.view(), x.data(), n_tok, fast.data());
        // Default: F32 activations, every format within FP32 rounding of the reference.
        EXPECT_LT(rel_err(fast, ref), kFp32Tol) << format_name(c.format) << " cols=" << cols << " n_tok=" << n_tok;
        matmul(pool, w.view(), x.data(), n_tok, fast.data(), best_cpu_isa(), ActQuant::kQ8);
        EXPECT_LT(rel_err(fast, ref), c.tol) << format_name(c.format) << " q8 cols=" << cols << " n_tok=" << n_tok;
        // An outlier (as in SmolLM2's hidden states) in every block: Q8 rounding flattens the
        // rest of the block, the F32 path does not care.
        auto xo = x;
        for (size_t j = 0; j < xo.size(); j += 32) xo[j] = 300.0f;
        std::vector<float> ref_o(ref.size()), fast_o(ref.size());
        matmul_ref(w.view(), xo.data(), n_tok, ref_o.data());
        matmul(pool, w.view(), xo.data(), n_tok, fast_o.data());
        EXPECT_LT(rel_err(fast_o, ref_o), kFp32Tol) << format_name(c.format) << " outliers cols=" << cols;
        // The reference itself: row 0 of token 0 against the dequantized weights.
        const auto wf = dequantize(w.view());
        double dot = 0;
        for (int64_t k = 0; k < cols; ++k) dot += double(wf[size_t(k)]) * x[size_t(k)];
        EXPECT_NEAR(ref[0], dot, 1e-5 * (std::abs(dot) + 1));
      }
    }
  }
}

TEST(CpuOps, EmbeddingLookupDecodesRowsAndChecksIds) {
  const auto w = quantize(FormatId::Q8_0, randn(17 * 64), 17, 64);
  const auto wf = dequantize(w.view());
  const std::vector<int32_t> ids = {16, 0, 5};
  std::vector<float> out(3 * 64);
  embedding_lookup(w.view(), ids, out.data());
  for (int t = 0; t < 3; ++t) {
    for (int k = 0; k < 64; ++k) ASSERT_EQ(out[size_t(t * 64 + k)], wf[size_t(ids[size_t(t)] * 64 + k)]);
  }
  const std::vector<int32_t> bad = {17};
  EXPECT_THROW(embedding_lookup(w.view(), bad, out.data()), Error);
}

TEST(CpuOps, RmsNormFastMatchesReference) {
  ThreadPool pool(3);
  for (int64_t n : {1, 7, 37, 577}) {
    const int64_t n_tok = 5;
    const auto x = randn(n_tok * n, 3.0f), g = randn(n);
    std::vector<float> ref(x.size()), fast(x.size());
    rmsnorm_ref(x.data(), g.data(), n_tok, n, 1e-5f, ref.data());
    rmsnorm(pool, x.data(), g.data(), n_tok, n, 1e-5f, fast.data());
    EXPECT_LT(rel_err(fast, ref), kFp32Tol) << "n=" << n;
  }
  // Unit gain: every output row has mean square ≈ 1.
  const auto x = randn(129, 5.0f);
  std::vector<float> ones(129, 1.0f), y(129);
  rmsnorm_ref(x.data(), ones.data(), 1, 129, 0.0f, y.data());
  double ms = 0;
  for (float v : y) ms += double(v) * v;
  EXPECT_NEAR(ms / 129, 1.0, 1e-6);
}

TEST(CpuOps, RopeFastMatchesReferenceBothStyles) {
  ThreadPool pool(2);
  for (RopeStyle style : {RopeStyle::kAdjacent, RopeStyle::kHalfSplit}) {
    for (int64_t hd : {2, 6, 64, 130}) {
      const int64_t n_head = 3;
      const std::vector<int32_t> pos = {0, 1, 17, 1000, 4097};
      const auto x = randn(int64_t(pos.size()) * n_head * hd);
      auto ref = x, fast = x;
      const RopeParams p{style, 100000.0f, 1.0f};
      rope_ref(ref.data(), pos, n_head, hd, p);
      rope(pool, fast.data(), pos, n_head, hd, p);
      // Float angles at position 4097 lose ~4097·2⁻²⁴ rad: still far below 1e-3.
      EXPECT_LT(rel_err(fast, ref), 1e-4) << "hd=" << hd;
      // Position 0 is the identity.
      for (int64_t i = 0; i < n_head * hd; ++i) ASSERT_EQ(ref[size_t(i)], x[size_t(i)]);
    }
  }
}

TEST(CpuOps, RopeAdjacentOnPermutedRowsEqualsHalfSplit) {
  // formats.md §4.7: GGUF row 2i holds HF row i, row 2i+1 holds HF row i + hd/2.
  const int64_t hd = 64;
  const std::vector<int32_t> pos = {5, 33};
  const auto hf = randn(2 * hd);
  std::vector<float> gguf(hf.size());
  for (int64_t t = 0; t < 2; ++t) {
    for (int64_t i = 0; i < hd / 2; ++i) {
      gguf[size_t(t * hd + 2 * i)] = hf[size_t(t * hd + i)];
      gguf[size_t(t * hd + 2 * i + 1)] = hf[size_t(t * hd + i + hd / 2)];
    }
  }
  auto a = hf, b = gguf;
  rope_ref(a.data(), pos, 1, hd, {RopeStyle::kHalfSplit, 10000.0f, 1.0f});
  rope_ref(b.data(), pos, 1, hd, {RopeStyle::kAdjacent, 10000.0f, 1.0f});
  for (int64_t t = 0; t < 2; ++t) {
    for (int64_t i = 0; i < hd / 2; ++i) {
      EXPECT_FLOAT_EQ(b[size_t(t * hd + 2 * i)], a[size_t(t * hd + i)]);
      EXPECT_FLOAT_EQ(b[size_t(t * hd + 2 * i + 1)], a[size_t(t * hd + i + hd / 2)]);
    }
  }
}

// A paged KV layer filled with random rows in `dtype`; keeps its blocks alive.
struct TestKv {
  std::vector<std::vector<uint8_t>> k, v;
  std::vector<const uint8_t*> kp, vp;
  KvLayerView view;
  TestKv(KvType dtype, int64_t n_tokens, int64_t n_kv_head, int64_t hd, int64_t block_tokens) {
    const FormatId format = *kv_type_scalar_format(dtype);
    const int64_t row_bytes = kv_row_bytes(dtype, hd);
    const int64_t n_blocks = (n_tokens + block_tokens - 1) / block_tokens;
    for (int64_t b = 0; b < n_blocks; ++b) {
      for (auto* plane : {&k, &v}) {
        const auto q = quantize(format, randn(block_tokens * n_kv_head * hd), block_tokens * n_kv_head, hd);
        plane->push_back(q.data);
      }
      kp.push_back(k.back().data());
      vp.push_back(v.back().data());
    }
    view = {dtype, n_kv_head, hd, block_tokens, row_bytes, kp, vp};
  }
};

TEST(CpuOps, AttentionFastMatchesReference) {
  ThreadPool pool(3);
  for (KvType dtype : {KvType::F32, KvType::F16, KvType::BF16}) {
    for (int64_t n_kv : {1, 3}) {
      const int64_t n_head = 3 * n_kv * (n_kv == 1 ? 2 : 1), hd = 34, n_tok = 5, pos0 = 31;
      TestKv kv(dtype, pos0 + n_tok, n_kv, hd, 16);
      const auto q = randn(n_tok * n_head * hd);
      std::vector<float> ref(q.size()), fast(q.size());
      attention_ref(q.data(), n_tok, n_head, pos0, kv.view, ref.data());
      attention(pool, q.data(), n_tok, n_head, pos0, kv.view, fast.data());
      EXPECT_LT(rel_err(fast, ref), kTranscendentalTol) << kv_type_name(dtype) << " n_kv=" << n_kv;
    }
  }
  // A token at position 0 sees only itself: output = its V row.
  TestKv kv(KvType::F32, 1, 1, 8, 16);
  const auto q = randn(8);
  std::vector<float> out(8);
  attention_ref(q.data(), 1, 1, 0, kv.view, out.data());
  const auto* v0 = reinterpret_cast<const float*>(kv.view.v_row(0, 0));
  for (int d = 0; d < 8; ++d) EXPECT_FLOAT_EQ(out[size_t(d)], v0[d]);
  // Positions past the cache and a head count that does not group are errors.
  EXPECT_THROW(attention_ref(q.data(), 1, 1, 16, kv.view, out.data()), Error);
  TestKv kv3(KvType::F32, 4, 3, 8, 16);
  std::vector<float> q4(4 * 8), o4(4 * 8);
  EXPECT_THROW(attention(pool, q4.data(), 1, 4, 0, kv3.view, o4.data()), Error);
}

// Sliding window and explicit scale: both paths against a direct softmax over the last
// `window` positions, written out here; window 1 returns the token's own V row; a window
// covering the whole context equals no window.
TEST(CpuOps, AttentionSlidingWindow) {
  ThreadPool pool(3);
  const int64_t n_kv = 2, n_head = 6, hd = 20, n_tok = 7, pos0 = 37, group = n_head / n_kv;
  TestKv kv(KvType::F32, pos0 + n_tok, n_kv, hd, 16);
  const auto q = randn(n_tok * n_head * hd);
  for (int64_t window : {1, 3, 17, 512}) {
    for (float scale : {0.0f, 0.0625f}) {
      std::vector<float> ref(q.size()), fast(q.size()), want(q.size());
      attention_ref(q.data(), n_tok, n_head, pos0, kv.view, ref.data(), window, scale);
      attention(pool, q.data(), n_tok, n_head, pos0, kv.view, fast.data(), window, scale);
      const double s = scale > 0 ? scale : 1.0 / std::sqrt(double(hd));
      for (int64_t t = 0; t < n_tok; ++t) {
        const int64_t p = pos0 + t, j0 = std::max<int64_t>(0, p - window + 1);
        for (int64_t h = 0; h < n_head; ++h) {
          std::vector<double> w;
          for (int64_t j = j0; j <= p; ++j) {
            const auto* k = reinterpret_cast<const float*>(kv.view.k_row(j, h / group));
            double dot = 0;
            for (int64_t d = 0; d < hd; ++d) dot += double(q[size_t((t * n_head + h) * hd + d)]) * k[d];
            w.push_back(std::exp(dot * s));
          }
          double sum = 0;
          for (double x : w) sum += x;
          for (int64_t d = 0; d < hd; ++d) {
            double acc = 0;
            for (int64_t j = j0; j <= p; ++j) {
              acc += w[size_t(j - j0)] / sum * reinterpret_cast<const float*>(kv.view.v_row(j, h / group))[d];
            }
            want[size_t((t * n_head + h) * hd + d)] = float(acc);
          }
        }
      }
      EXPECT_LT(rel_err(ref, want), 1e-6) << "window " << window << " scale " << scale;
      EXPECT_LT(rel_err(fast, ref), kTranscendentalTol) << "window " << window << " scale " << scale;
      if (window == 1) {
        for (int64_t d = 0; d < hd; ++d) {
          EXPECT_FLOAT_EQ(ref[size_t(d)], reinterpret_cast<const float*>(kv.view.v_row(pos0, 0))[d]);
        }
      }
      if (window == 512) {
        std::vector<float> full(q.size());
        attention_ref(q.data(), n_tok, n_head, pos0, kv.view, full.data(), 0, scale);
        EXPECT_EQ(full, ref);
      }
    }
  }
  std::vector<float> out(q.size());
  EXPECT_THROW(attention_ref(q.data(), n_tok, n_head, pos0, kv.view, out.data(), -1), Error);
}

TEST(CpuOps, ActivationsFastMatchReference) {
  ThreadPool pool(3);
  for (int64_t n : {1, 37, 5137, 20011}) {
    auto g = randn(n, 4.0f);
    const auto u = randn(n, 2.0f);
    // The float fast path legitimately underflows where the double reference does not
    // (gelu(−10) = 0 in float, −7.6e-23 in double); with n = 1 such an element alone would
    // make the relative error 1. Keep the single-element case away from the tails.
    if (n == 1) g[0] = std::clamp(g[0], -3.0f, 3.0f);
    std::vector<float> ref(static_cast<size_t>(n)), fast(static_cast<size_t>(n));
    swiglu_ref(g.data(), u.data(), n, ref.data());
    swiglu(pool, g.data(), u.data(), n, fast.data());
    EXPECT_LT(rel_err(fast, ref), kTranscendentalTol) << "swiglu n=" << n;
    gelu_tanh_ref(g.data(), n, ref.data());
    gelu_tanh(pool, g.data(), n, fast.data());
    EXPECT_LT(rel_err(fast, ref), kTranscendentalTol) << "gelu n=" << n;
  }
  float one = 1.0f, gelu_one = 0.0f;
  gelu_tanh_ref(&one, 1, &gelu_one);
  EXPECT_NEAR(gelu_one, 0.841192f, 1e-6);
  for (int64_t n : {1, 17, 1025}) {
    const int64_t rows = 3;
    auto ref = randn(rows * n, 10.0f), fast = ref;
    softmax_ref(ref.data(), rows, n);
    softmax(pool, fast.data(), rows, n);
    EXPECT_LT(rel_err(fast, ref), kTranscendentalTol) << "softmax n=" << n;
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += ref[size_t(i)];
    EXPECT_NEAR(s, 1.0, 1e-6);
  }
}

}  // namespace
}  // namespace imp
