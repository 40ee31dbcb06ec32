// KV cache types: write/read round trip through the paged cache per type, attention over a
// quantized cache against attention over the F32 cache, and the error paths. Fresh random
// data of awkward head dims (64, 80, 96, 128) and token counts each run.
// Errors are relative: ‖decoded − x‖ / ‖x‖ over all rows; NaN fails.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <map>
#include <random>
#include <vector>

#include "common/random_data.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/ops.h"
#include "common/error.h"
#include "runtime/kv_cache.h"

namespace imp {
namespace {

// Round-trip bounds on N(0,1) rows (measured ≈ 0.2–0.65 of each bound, printed by
// RowBytesAndOrdering; the margin absorbs fresh data):
//   f16  : 10 mantissa bits, RNE → rms relative error ≈ 2^-11/√3 ≈ 3e-4.
//   bf16 : 7 mantissa bits → ≈ 2^-8/√3 ≈ 2.3e-3.
//   int8 : step amax/127 with amax ≈ 3σ per row → ≈ 0.023/√12 ≈ 7e-3.
//   fp8  : 3 mantissa bits, per-row scale → ≈ 2^-4/√3 ≈ 0.036 (plus a few subnormals).
//   int4 : step amax/7 per 32 with amax ≈ 2.3σ → ≈ 0.33/√12 ≈ 0.095.
//   nvfp4: E2M1 grid {0,.5,1,1.5,2,3,4,6} scaled per 16 → ≈ 0.09.
const std::map<KvType, double> kRoundTripTol = {
    {KvType::F32, 0.0},       {KvType::F16, 1e-3},  {KvType::BF16, 5e-3}, {KvType::INT8, 1.5e-2},
    {KvType::FP8_E4M3, 6e-2}, {KvType::INT4, 0.15}, {KvType::NVFP4, 0.15}};
// Attention output over the quantized cache vs over the F32 cache, same K/V: K error moves
// the scores by ~tol·|q||k|/√d, V error averages down over the context, so the output error
// stays of the order of the round-trip error (measured 1.0–1.4 × the round-trip error, both
// printed); bound = round-trip bound × 1.5.
constexpr double kAttentionFactor = 1.5;
// Fast attention vs reference on the same cache: FP32 vs double softmax, ~1e-6.
constexpr double kFastVsRefTol = 1e-5;

using test::randn;
using test::rel_err;
using test::rng;

KvCacheConfig config(KvType t, int64_t hd, int64_t n_kv, int64_t max_tokens) {
  KvCacheConfig c;
  c.n_layer = 2;
  c.n_kv_head = n_kv;
  c.head_dim = hd;
  c.max_tokens = max_tokens;
  c.block_tokens = 16;
  c.dtype = t;
  return c;
}

// Reads every cached row of one layer back to floats, (n_tokens, n_kv_head, head_dim).
std::vector<float> read_back(const KvCache& kv, int64_t layer, bool values) {
  const KvLayerView view = kv.layer_view(layer);
  const auto decode = kv_decode_row_fn(view.dtype);
  const int64_t n = kv.n_tokens(), nkv = view.n_kv_head, hd = view.head_dim;
  std::vector<float> out(size_t(n * nkv * hd));
  for (int64_t p = 0; p < n; ++p) {
    for (int64_t g = 0; g < nkv; ++g) {
      decode(values ? view.v_row(p, g) : view.k_row(p, g), out.data() + (p * nkv + g) * hd, hd);
    }
  }
  return out;
}

TEST(KvCache, RoundTripPerType) {
  const int64_t n_kv = 3, n_tok = 37;
  for (KvType t : kAllKvTypes) {
    for (int64_t hd : {64, 80, 128, 96}) {
      KvCache kv(config(t, hd, n_kv, 64));
      const auto k = randn(n_tok * n_kv * hd, 2.5f), v = randn(n_tok * n_kv * hd, 0.3f);
      // Written in steps of 1, 17 and 19 tokens (prefill then decode), across block edges.
      int64_t pos = 0;
      for (int64_t step : {1, 17, 19}) {
        for (int64_t layer = 0; layer < 2; ++layer) {
          kv.write(layer, pos, step, k.data() + pos * n_kv * hd, v.data() + pos * n_kv * hd);
        }
        pos += step;
        kv.set_n_tokens(pos);
      }
      ASSERT_EQ(pos, n_tok);
      const double tol = kRoundTripTol.at(t);
      for (int64_t layer = 0; layer < 2; ++layer) {
        const double ek = rel_err(read_back(kv, layer, false), k), ev = rel_err(read_back(kv, layer, true), v);
        EXPECT_LE(ek, tol) << kv_type_name(t) << " K head_dim " << hd;
        EXPECT_LE(ev, tol) << kv_type_name(t) << " V head_dim " << hd;
        if (t != KvType::F32) EXPECT_GT(ek, 0.0) << kv_type_name(t) << " is lossy, so exact rows mean no encode";
      }
      // 3 blocks of 16 tokens per layer, for K and V.
      EXPECT_EQ(kv.bytes_in_use(), 2 * 2 * 3 * 16 * n_kv * kv_row_bytes(t, hd)) << kv_type_name(t);
    }
  }
}

TEST(KvCache, RowBytesAndOrdering) {
  const int64_t hd = 80;
  EXPECT_EQ(kv_row_bytes(KvType::F32, hd), 320);
  EXPECT_EQ(kv_row_bytes(KvType::BF16, hd), 160);
  EXPECT_EQ(kv_row_bytes(KvType::INT8, hd), 84);
  EXPECT_EQ(kv_row_bytes(KvType::FP8_E4M3, hd), 84);
  EXPECT_EQ(kv_row_bytes(KvType::INT4, hd), 3 * 2 + 40);  // groups 32 + 32 + 16
  EXPECT_EQ(kv_row_bytes(KvType::NVFP4, hd), 4 + 5 + 40);
  // On the same rows the error grows as bits shrink.
  const auto x = randn(hd * 41);
  std::map<KvType, double> err;
  for (KvType t : kAllKvTypes) {
    std::vector<uint8_t> buf(size_t(kv_row_bytes(t, hd)));
    std::vector<float> y(x.size());
    for (size_t r = 0; r < x.size() / size_t(hd); ++r) {
      kv_encode_row_fn(t)(x.data() + r * size_t(hd), buf.data(), hd);
      kv_decode_row_fn(t)(buf.data(), y.data() + r * size_t(hd), hd);
    }
    err[t] = rel_err(y, x);
    std::printf("%-9s round-trip relative error %.3e (bound %.1e)\n", std::string(kv_type_name(t)).c_str(), err[t],
                kRoundTripTol.at(t));
  }
  EXPECT_EQ(err[KvType::F32], 0.0);
  EXPECT_LT(err[KvType::F16], err[KvType::BF16]);
  EXPECT_LT(err[KvType::BF16], err[KvType::INT8]);
  EXPECT_LT(err[KvType::INT8], err[KvType::FP8_E4M3]);
  EXPECT_LT(err[KvType::FP8_E4M3], err[KvType::INT4]);
  EXPECT_LT(err[KvType::FP8_E4M3], err[KvType::NVFP4]);
}

// Scales are per token·head row (and per group for int4/nvfp4): a loud row or group must not
// wash out a quiet one. A per-tensor scale would flush the quiet values to zero.
TEST(KvCache, ScalesAreLocal) {
  const int64_t hd = 96;
  for (KvType t : kAllKvTypes) {
    auto x = randn(hd, 0.01f);
    const bool grouped = t == KvType::INT4 || t == KvType::NVFP4;
    // Grouped types: a spike in the first group. Per-row types: zero row scale stays local, so
    // instead check a quiet row alone keeps its relative precision.
    if (grouped) x[3] = 1000.0f;
    std::vector<uint8_t> buf(size_t(kv_row_bytes(t, hd)));
    std::vector<float> y(static_cast<size_t>(hd));
    kv_encode_row_fn(t)(x.data(), buf.data(), hd);
    kv_decode_row_fn(t)(buf.data(), y.data(), hd);
    const size_t from = grouped ? 32 : 0;  // the groups without the spike
    const std::vector<float> xs(x.begin() + long(from), x.end()), ys(y.begin() + long(from), y.end());
    EXPECT_LE(rel_err(ys, xs), kRoundTripTol.at(t) * 2) << kv_type_name(t);
    // All-zero rows decode to zeros (no 0/0 scales).
    std::vector<float> z(size_t(hd), 0.0f), zy(size_t(hd), 1.0f);
    kv_encode_row_fn(t)(z.data(), buf.data(), hd);
    kv_decode_row_fn(t)(buf.data(), zy.data(), hd);
    for (float f : zy) EXPECT_EQ(f, 0.0f) << kv_type_name(t);
  }
}

TEST(KvCache, AttentionOverQuantizedCacheMatchesF32) {
  ThreadPool pool(2);
  const int64_t n_kv = 2, n_head = 6, n_prompt = 29, n_tok = 3;
  for (int64_t hd : {64, 80}) {
    const int64_t n_all = n_prompt + n_tok;
    const auto k = randn(n_all * n_kv * hd), v = randn(n_all * n_kv * hd);
    const auto q = randn(n_tok * n_head * hd);
    KvCache ref_kv(config(KvType::F32, hd, n_kv, 48));
    ref_kv.write(0, 0, n_all, k.data(), v.data());
    ref_kv.set_n_tokens(n_all);
    std::vector<float> ref(q.size());
    attention_ref(q.data(), n_tok, n_head, n_prompt, ref_kv.layer_view(0), ref.data());
    for (KvType t : kAllKvTypes) {
      KvCache kv(config(t, hd, n_kv, 48));
      kv.write(0, 0, n_all, k.data(), v.data());
      kv.set_n_tokens(n_all);
      std::vector<float> out(q.size()), fast(q.size());
      attention_ref(q.data(), n_tok, n_head, n_prompt, kv.layer_view(0), out.data());
      attention(pool, q.data(), n_tok, n_head, n_prompt, kv.layer_view(0), fast.data());
      const double bound = t == KvType::F32 ? 0.0 : kRoundTripTol.at(t) * kAttentionFactor;
      const double e = rel_err(out, ref);
      std::printf("%-9s head_dim %3lld attention relative error %.3e (bound %.1e)\n",
                  std::string(kv_type_name(t)).c_str(), (long long)hd, e, bound);
      EXPECT_LE(e, bound) << kv_type_name(t) << " head_dim " << hd;
      EXPECT_LE(rel_err(fast, out), kFastVsRefTol) << kv_type_name(t) << " head_dim " << hd;
    }
  }
}

TEST(KvCache, Errors) {
  EXPECT_THROW(parse_kv_type("int3"), Error);
  EXPECT_EQ(parse_kv_type("fp8"), KvType::FP8_E4M3);
  for (KvType t : kAllKvTypes) EXPECT_EQ(parse_kv_type(kv_type_name(t)), t);
  // nvfp4 needs head_dim % 16, int4 an even head_dim.
  EXPECT_THROW(KvCache(config(KvType::NVFP4, 72, 1, 8)), Error);
  EXPECT_THROW(KvCache(config(KvType::INT4, 63, 1, 8)), Error);
  EXPECT_NO_THROW(KvCache(config(KvType::INT4, 72, 1, 8)));
  const DeviceCaps caps = cpu_device_caps();
  EXPECT_NO_THROW(require_kv_type(caps, KvType::NVFP4, 64));
  try {
    require_kv_type(caps, KvType::NVFP4, 72);
    ADD_FAILURE() << "nvfp4 with head_dim 72 accepted";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("nvfp4"), std::string::npos) << msg;
    EXPECT_NE(msg.find("cpu"), std::string::npos) << msg;
  }
  // A backend that answers no for a type names it.
  DeviceCaps f16_only{"test-backend", nullptr, [](KvType t, int64_t) { return t == KvType::F16; }};
  EXPECT_THROW(require_kv_type(f16_only, KvType::INT8, 64), Error);
  EXPECT_NO_THROW(require_kv_type(f16_only, KvType::F16, 64));
  // Writing past the context stays an error for quantized types.
  KvCache kv(config(KvType::INT4, 64, 1, 4));
  const auto x = randn(5 * 64);
  EXPECT_THROW(kv.write(0, 0, 5, x.data(), x.data()), Error);
}

}  // namespace
}  // namespace imp
