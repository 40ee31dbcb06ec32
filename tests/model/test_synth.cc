// imp synth: synthetic tiny models of several types load through open_model_file, plan,
// run a forward on the CPU and decode to weights with the promised statistics.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <unistd.h>
#include <unordered_set>
#include <string>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "common/error.h"
#include "formats/quant_matrix.h"
#include "formats/traits.h"
#include "io/model_file.h"
#include "model/llama.h"
#include "model/presets.h"
#include "planner/storage_plan.h"
#include "quant/synth_model.h"
#include "quant/synth_vocab.h"
#include "runtime/kv_cache.h"
#include "runtime/tokenizer.h"

namespace imp {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path p;
  TempDir() : p(fs::temp_directory_path() / fmt::format("imp_synth_{}_{}", ::getpid(), counter()++)) { fs::create_directories(p); }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(p, ec);
  }
  static int& counter() {
    static int c = 0;
    return c;
  }
};

std::vector<char> slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

struct Stats {
  double mean = 0, stddev = 0;
  int64_t zeros = 0;
};
Stats stats_of(const std::vector<float>& v) {
  Stats s;
  for (float x : v) s.mean += x, s.zeros += x == 0.0f;
  s.mean /= double(v.size());
  for (float x : v) s.stddev += (x - s.mean) * (x - s.mean);
  s.stddev = std::sqrt(s.stddev / double(v.size()));
  return s;
}

// Loads, checks config/shapes/statistics, plans for the CPU and runs 3 tokens.
void check_model(const std::string& path, FormatId linear, bool hf) {
  const auto file = open_model_file(path);
  const ModelPreset& p = find_model_preset("tiny");
  EXPECT_EQ(file->config.n_embd, p.n_embd);
  EXPECT_EQ(file->config.n_layer, 1);
  EXPECT_EQ(file->config.n_head, p.n_head);
  EXPECT_EQ(file->config.n_head_kv, p.n_head_kv);
  EXPECT_EQ(file->config.n_ff, p.n_ff);
  EXPECT_EQ(file->config.n_vocab, p.n_vocab);
  const std::string q_name = hf ? "model.layers.0.self_attn.q_proj.weight" : "blk.0.attn_q.weight";
  const std::string norm_name = hf ? "model.layers.0.input_layernorm.weight" : "blk.0.attn_norm.weight";
  const TensorSource& q = file->at(q_name);
  EXPECT_EQ(q.format, linear) << format_name(q.format);
  EXPECT_EQ(q.shape, (std::vector<int64_t>{p.n_head * p.head_dim, p.n_embd}));
  // Decoded projection: N(0, 0.02²) up to the format's rounding (≤ ~10 % of σ for 4-bit).
  const Stats sq = stats_of(dequantize(q.matrix()));
  EXPECT_NEAR(sq.mean, 0.0, 2e-3) << format_name(linear);
  EXPECT_NEAR(sq.stddev, 0.02, 0.0025) << format_name(linear);
  const Stats sn = stats_of(dequantize(file->at(norm_name).matrix()));
  EXPECT_NEAR(sn.mean, 1.0, 0.02);
  EXPECT_NEAR(sn.stddev, 0.05, 0.01);
  EXPECT_EQ(sn.zeros, 0);

  const StoragePlan plan = plan_storage(*file, cpu_device_caps());
  EXPECT_EQ(plan.rows.size(), file->tensors.size());
  auto tok = Tokenizer::from_model(*file);
  const std::vector<int32_t> ids = tok->encode("hello there", true, true);
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids.front(), p.n_vocab - 2);  // bos
  // LlamaModel reads GGUF tensor names; Hugging Face folders are checked up to the plan.
  if (hf) return;
  CpuBackend backend(CpuOpsPath::kFast, 2);
  LlamaModel model(*file, plan, backend);
  KvCache kv(model.kv_config(16, KvType::F32));
  std::vector<float> logits;
  model.forward(ids, kv, false, logits);
  ASSERT_EQ(int64_t(logits.size()), p.n_vocab);
  double ss = 0;
  for (float l : logits) {
    ASSERT_TRUE(std::isfinite(l));
    ss += double(l) * l;
  }
  EXPECT_GT(ss, 0.0);
}

SynthOptions tiny(FormatId f, SynthContainer c, const fs::path& out) {
  SynthOptions o;
  o.preset = "tiny";
  o.type = f;
  o.container = c;
  o.out = out.string();
  o.seed = 42;
  o.layers = 1;
  o.threads = 2;
  return o;
}

class SynthGguf : public ::testing::TestWithParam<FormatId> {};

TEST_P(SynthGguf, LoadsPlansAndRuns) {
  TempDir d;
  const fs::path out = d.p / "tiny.gguf";
  const SynthSummary s = synth_model(tiny(GetParam(), SynthContainer::kGguf, out));
  EXPECT_EQ(s.n_tensors, 1 + 9 + 2);  // embd, 9 per layer, output_norm, output
  EXPECT_GT(s.bytes, 0u);
  check_model(out.string(), GetParam(), false);
  const auto file = open_model_file(out.string());
  // lm_head: Q6_K under 6 bits, else the type itself.
  const FormatId head = format_traits(GetParam()).bits_per_weight < 6.0f ? FormatId::Q6_K : GetParam();
  EXPECT_EQ(file->at("output.weight").format, head);
  EXPECT_EQ(file->at("blk.0.ffn_norm.weight").format, FormatId::F32);
}

INSTANTIATE_TEST_SUITE_P(Types, SynthGguf,
                         ::testing::Values(FormatId::Q4_K, FormatId::Q4_0, FormatId::Q8_0, FormatId::Q6_K, FormatId::IQ4_XS,
                                           FormatId::Q5_1, FormatId::F16, FormatId::BF16),
                         [](const auto& info) { return std::string(format_name(info.param)); });

class SynthSafetensors : public ::testing::TestWithParam<FormatId> {};

TEST_P(SynthSafetensors, ModelOptFolderLoadsPlansAndRuns) {
  TempDir d;
  const fs::path out = d.p / "tiny";
  synth_model(tiny(GetParam(), SynthContainer::kSafetensors, out));
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}) {
    EXPECT_TRUE(fs::exists(out / f)) << f;
  }
  EXPECT_EQ(fs::exists(out / "hf_quant_config.json"), GetParam() != FormatId::BF16);
  check_model(out.string(), GetParam(), true);
  const auto file = open_model_file(out.string());
  EXPECT_EQ(file->at("lm_head.weight").format, FormatId::BF16);
  if (GetParam() == FormatId::NVFP4_CKPT) {
    const TensorSource& q = file->at("model.layers.0.mlp.down_proj.weight");
    // G = amax / (6·448) of a N(0, 0.02²) matrix: amax ≈ 4–5 σ.
    EXPECT_GT(q.tensor_scale, 0.06f / 2688.0f);
    EXPECT_LT(q.tensor_scale, 0.14f / 2688.0f);
  }
}

INSTANTIATE_TEST_SUITE_P(Types, SynthSafetensors,
                         ::testing::Values(FormatId::NVFP4_CKPT, FormatId::FP8_E4M3_TENSOR, FormatId::BF16),
                         [](const auto& info) { return std::string(format_name(info.param)); });

TEST(Synth, DeterministicPerSeedAndIndependentOfThreads) {
  TempDir d;
  SynthOptions a = tiny(FormatId::Q4_K, SynthContainer::kGguf, d.p / "a.gguf");
  SynthOptions b = a;
  b.out = (d.p / "b.gguf").string();
  b.threads = 1;
  SynthOptions c = a;
  c.out = (d.p / "c.gguf").string();
  c.seed = 43;
  synth_model(a);
  synth_model(b);
  synth_model(c);
  EXPECT_EQ(slurp(a.out), slurp(b.out));
  EXPECT_NE(slurp(a.out), slurp(c.out));
}

TEST(Synth, PresetShapes) {
  const ModelPreset& l8 = find_model_preset("llama3.1-8b");
  const auto t = synth_tensor_list(l8, l8.n_layer);
  EXPECT_EQ(t.size(), size_t(1 + 32 * 9 + 2));
  int64_t params = 0;
  for (const auto& x : t) params += x.shape.size() > 1 ? x.shape[0] * x.shape[1] : x.shape[0];
  EXPECT_EQ(params, 8030261248);  // Llama-3.1-8B's published parameter count
  const ModelPreset& q8 = find_model_preset("qwen3-8b");
  const auto tq = synth_tensor_list(q8, q8.n_layer);
  EXPECT_EQ(tq.size(), size_t(1 + 36 * 11 + 2));
  const ModelPreset& l1 = find_model_preset("llama3.2-1b");
  const auto t1 = synth_tensor_list(l1, l1.n_layer);
  EXPECT_EQ(t1.back().name, "output_norm.weight");  // tied: no output.weight
  EXPECT_THROW(find_model_preset("llama-9000"), Error);
}

TEST(Synth, VocabMergesNameExistingTokens) {
  const SynthVocab v = make_synth_vocab(2000);
  ASSERT_EQ(v.tokens.size(), 2000u);
  EXPECT_EQ(v.bos, 1998);
  EXPECT_EQ(v.eos, 1999);
  EXPECT_EQ(v.merges.size(), 2000u - 256 - 2);
  std::unordered_set<std::string> have(v.tokens.begin(), v.tokens.end());
  EXPECT_EQ(have.size(), v.tokens.size());
  for (const auto& m : v.merges) {
    const size_t sp = m.find(' ');
    ASSERT_NE(sp, std::string::npos);
    EXPECT_TRUE(have.count(m.substr(0, sp)) && have.count(m.substr(sp + 1)) && have.count(m.substr(0, sp) + m.substr(sp + 1))) << m;
  }
  EXPECT_THROW(make_synth_vocab(100), Error);
}

// --type q4_k_m: llama.cpp's Q4_K_M mix, tensor for tensor (quant/gguf_mix.h): attn_v and
// ffn_down in Q6_K on the use_more_bits layers (i < n/8, i ≥ 7n/8, (i − n/8) % 3 == 2:
// 0, 3, 6, 7 of 8), Q4_K elsewhere, the lm_head in Q6_K, general.file_type 15.
TEST(Synth, LlamaCppMixQ4KM) {
  TempDir d;
  EXPECT_EQ(synth_mix_from_name("q4_k_m"), "q4_k_m");
  EXPECT_EQ(synth_mix_from_name("q4_k"), "");
  EXPECT_EQ(synth_type_from_name("q4_k_m", SynthContainer::kGguf), FormatId::Q4_K);
  EXPECT_THROW(synth_type_from_name("q4_k_m", SynthContainer::kSafetensors), Error);
  SynthOptions o = tiny(FormatId::Q4_K, SynthContainer::kGguf, d.p / "m.gguf");
  o.mix = "q4_k_m";
  o.layers = 8;
  synth_model(o);
  const auto file = open_model_file(o.out);
  for (int i = 0; i < 8; ++i) {
    const bool more = i < 1 || i >= 7 || (i - 1) % 3 == 2;
    const FormatId want = more ? FormatId::Q6_K : FormatId::Q4_K;
    const std::string b = "blk." + std::to_string(i) + ".";
    EXPECT_EQ(file->at(b + "attn_v.weight").format, want) << i;
    EXPECT_EQ(file->at(b + "ffn_down.weight").format, want) << i;
    EXPECT_EQ(file->at(b + "attn_q.weight").format, FormatId::Q4_K) << i;
    EXPECT_EQ(file->at(b + "ffn_gate.weight").format, FormatId::Q4_K) << i;
    EXPECT_EQ(file->at(b + "attn_norm.weight").format, FormatId::F32) << i;
  }
  EXPECT_EQ(file->at("output.weight").format, FormatId::Q6_K);
  EXPECT_EQ(file->at("token_embd.weight").format, FormatId::Q4_K);
  // It runs: plan for the CPU, one forward step.
  const StoragePlan plan = plan_storage(*file, cpu_device_caps());
  CpuBackend backend(CpuOpsPath::kFast, 2);
  LlamaModel model(*file, plan, backend);
  KvCache kv(model.kv_config(8, KvType::F32));
  std::vector<float> logits;
  model.forward(std::vector<int32_t>{1, 2, 3}, kv, false, logits);
  for (float l : logits) ASSERT_TRUE(std::isfinite(l));
  o.mix = "q9_k_z";
  EXPECT_THROW(synth_model(o), Error);
}

TEST(Synth, RejectsBadRequests) {
  TempDir d;
  EXPECT_THROW(synth_model(tiny(FormatId::NVFP4_CKPT, SynthContainer::kGguf, d.p / "x.gguf")), Error);
  EXPECT_THROW(synth_model(tiny(FormatId::Q4_K, SynthContainer::kSafetensors, d.p / "x")), Error);
  EXPECT_THROW(synth_type_from_name("q9_9", SynthContainer::kGguf), Error);
  EXPECT_EQ(synth_type_from_name("nvfp4", SynthContainer::kSafetensors), FormatId::NVFP4_CKPT);
  EXPECT_EQ(synth_type_from_name("nvfp4", SynthContainer::kGguf), FormatId::NVFP4);
  EXPECT_EQ(default_synth_container("fp8"), SynthContainer::kSafetensors);
  EXPECT_FALSE(fs::exists(d.p / "x.gguf"));
}

}  // namespace
}  // namespace imp
