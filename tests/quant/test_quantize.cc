// imp quantize end to end on a fresh tiny random llama (tests/quant/tiny_model.h): every
// GGUF mix and every safetensors scheme, reloaded through open_model_file and compared
// byte for byte with the formats core's reference quantizer on the same data; llama.cpp's
// per-tensor rules on hand-worked cases; the bad inputs.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "formats/traits.h"
#include "io/model_file.h"
#include "io/schemes/gptq.h"
#include "quant/gguf_mix.h"
#include "quant/pipeline.h"
#include "quant/tiny_model.h"
#include "runtime/vocab.h"

namespace imp {
namespace {

namespace fs = std::filesystem;
using test::TinyModel;

struct TmpDir {
  fs::path dir;
  TmpDir() {
    dir = fs::temp_directory_path() / ("imp-quant-test-" + std::to_string(::getpid()) + "-" + std::to_string(rand()));
    fs::create_directories(dir);
  }
  ~TmpDir() { fs::remove_all(dir); }
  std::string operator/(const std::string& n) const { return (dir / n).string(); }
};

QuantizeSummary quantize(const std::string& in, const std::string& out, const std::string& type,
                         std::vector<std::string> keep = {}, std::vector<std::string> force = {},
                         const std::string& layout = "modelopt", bool overwrite = false) {
  QuantizeParams p;
  p.in = in;
  p.out = out;
  p.type = type;
  p.keep = std::move(keep);
  p.quantize = std::move(force);
  p.layout = layout;
  p.threads = 2;
  p.force = overwrite;
  p.progress = false;
  p.log = nullptr;
  return run_quantize(p);
}

std::span<const uint8_t> bytes_of(const std::vector<float>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4};
}

bool same(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0;
}

int64_t rows_of(const std::vector<int64_t>& s) {
  int64_t r = 1;
  for (size_t i = 0; i + 1 < s.size(); ++i) r *= s[i];
  return r;
}

// Every tensor of a GGUF output equals the reference quantization of the source data in
// the type the file declares (F32 tensors: the source bytes).
void expect_gguf_matches(const TinyModel& m, const ModelFile& out) {
  ASSERT_EQ(out.tensors.size(), m.tensors.size());
  for (const auto& t : m.tensors) {
    const TensorSource& s = out.at(t.gguf_name);
    ASSERT_EQ(s.shape, t.shape) << t.gguf_name;
    if (s.format == FormatId::F32) {
      EXPECT_TRUE(same(s.data, bytes_of(t.data))) << t.gguf_name;
      continue;
    }
    const OwnedQuantMatrix ref = imp::quantize(s.format, t.data, rows_of(t.shape), t.shape.back());
    EXPECT_TRUE(same(s.data, ref.data)) << t.gguf_name << " as " << format_name(s.format);
  }
}

TEST(Quantize, EveryGgufMixIsBitExactAndCarriesMetadata) {
  TmpDir d;
  const TinyModel m = TinyModel::make();
  m.write_gguf(d / "in.gguf");
  for (auto name : gguf_mix_names()) {
    const std::string out = d / (std::string(name) + ".gguf");
    const QuantizeSummary s = quantize(d / "in.gguf", out, std::string(name));
    EXPECT_EQ(s.tensors, int64_t(m.tensors.size()));
    const auto f = open_model_file(out);
    SCOPED_TRACE(std::string(name));
    expect_gguf_matches(m, *f);
    EXPECT_EQ(f->metadata["general.file_type"], find_gguf_mix(name)->file_type);
    EXPECT_EQ(f->metadata["general.quantization_version"], 2);
    EXPECT_EQ(f->metadata["test.marker"], "copied");
    EXPECT_EQ(f->config.n_layer, m.n_layer);
    EXPECT_FALSE(fs::exists(out + ".tmp-" + std::to_string(::getpid())));
  }
}

std::map<std::string, FormatId> types_of(const std::string& path) {
  std::map<std::string, FormatId> r;
  const auto f = open_model_file(path);  // the temporary in a range-for init would dangle
  for (const auto& t : f->tensors) r[t.name] = t.format;
  return r;
}

TEST(Quantize, Q4KMFollowsLlamaCppRules) {
  TmpDir d;
  const TinyModel m = TinyModel::make();
  m.write_gguf(d / "in.gguf");
  quantize(d / "in.gguf", d / "o.gguf", "Q4_K_M");
  auto t = types_of(d / "o.gguf");
  EXPECT_EQ(t["output.weight"], FormatId::Q6_K);
  EXPECT_EQ(t["token_embd.weight"], FormatId::Q4_K);
  EXPECT_EQ(t["output_norm.weight"], FormatId::F32);
  // use_more_bits(i, 4): i < 0 || i >= 3 || i % 3 == 2 → layers 2 and 3.
  for (int l = 0; l < 4; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    const bool more = l >= 2;
    EXPECT_EQ(t[p + "attn_v.weight"], more ? FormatId::Q6_K : FormatId::Q4_K) << l;
    // ffn_down rows of 384: Q4_K falls back to Q5_0, Q6_K to Q8_0.
    EXPECT_EQ(t[p + "ffn_down.weight"], more ? FormatId::Q8_0 : FormatId::Q5_0) << l;
    EXPECT_EQ(t[p + "attn_q.weight"], FormatId::Q4_K);
    EXPECT_EQ(t[p + "attn_k.weight"], FormatId::Q4_K);
    EXPECT_EQ(t[p + "attn_norm.weight"], FormatId::F32);
  }
}

TEST(Quantize, TiedEmbeddingIsTheOutputAndPureSkipsRules) {
  TmpDir d;
  const TinyModel m = TinyModel::make(/*tied=*/true);
  m.write_gguf(d / "in.gguf");
  quantize(d / "in.gguf", d / "o.gguf", "q4_k_m");
  EXPECT_EQ(types_of(d / "o.gguf")["token_embd.weight"], FormatId::Q6_K);
  quantize(d / "in.gguf", d / "p.gguf", "q4_k");  // no preset: pure
  auto t = types_of(d / "p.gguf");
  EXPECT_EQ(t["token_embd.weight"], FormatId::Q4_K);
  EXPECT_EQ(t["blk.3.attn_v.weight"], FormatId::Q4_K);
  EXPECT_EQ(t["blk.3.ffn_down.weight"], FormatId::Q5_0);  // the fallback still applies
  // Q2_K: n_gqa 4 → attn_v Q4_K; ffn_down Q3_K → IQ4_NL fallback; attn_output Q3_K.
  quantize(d / "in.gguf", d / "q2.gguf", "q2_k");
  t = types_of(d / "q2.gguf");
  EXPECT_EQ(t["blk.0.attn_v.weight"], FormatId::Q4_K);
  EXPECT_EQ(t["blk.0.ffn_down.weight"], FormatId::IQ4_NL);
  EXPECT_EQ(t["blk.0.attn_output.weight"], FormatId::Q3_K);
  EXPECT_EQ(t["blk.0.ffn_up.weight"], FormatId::Q2_K);
}

TEST(Quantize, KeepAndQuantizeOverrides) {
  TmpDir d;
  const TinyModel m = TinyModel::make();
  m.write_gguf(d / "in.gguf");
  quantize(d / "in.gguf", d / "o.gguf", "q8_0", {"attn_v"}, {"output_norm"});
  auto t = types_of(d / "o.gguf");
  EXPECT_EQ(t["blk.1.attn_v.weight"], FormatId::F32);
  EXPECT_EQ(t["blk.1.attn_k.weight"], FormatId::Q8_0);
  EXPECT_EQ(t["output_norm.weight"], FormatId::Q8_0);
  EXPECT_EQ(t["blk.1.ffn_norm.weight"], FormatId::F32);
}

// Reference planes for a safetensors scheme, from the HF-order data.
OwnedQuantMatrix st_ref(const TinyModel& m, const test::TinyTensor& t, FormatId f, int32_t group = 0) {
  return imp::quantize(f, m.hf_data(t), t.shape[0], t.shape[1], group);
}

void expect_st_matches(const TinyModel& m, const std::string& dir, FormatId f, bool ct = false) {
  const auto out = open_model_file(dir);
  for (const auto& t : m.tensors) {
    const std::string hf = *gguf_to_hf_name(t.gguf_name, "llama");
    const TensorSource& s = out->at(hf);
    SCOPED_TRACE(hf);
    const bool kept = t.shape.size() == 1 || hf.find("embed_tokens") != std::string::npos || hf == "lm_head.weight";
    if (kept) {
      EXPECT_EQ(s.format, FormatId::F32);
      EXPECT_TRUE(same(s.data, bytes_of(m.hf_data(t))));
      continue;
    }
    ASSERT_EQ(s.format, f);
    ASSERT_EQ(s.shape, t.shape);
    if (f == FormatId::INT4_GROUP) {
      const Int4Repacked r = repack_gptq_to_int4_group(s);
      const auto ref = st_ref(m, t, f, 128);
      EXPECT_TRUE(r.input_perm.empty());
      EXPECT_TRUE(same(r.matrix.data, ref.data));
      EXPECT_TRUE(same(r.matrix.scales, ref.scales));
      EXPECT_TRUE(same(r.matrix.zeros, ref.zeros));
      continue;
    }
    const auto ref = st_ref(m, t, f);
    EXPECT_TRUE(same(s.data, ref.data));
    EXPECT_TRUE(same(s.scales, ref.scales));
    if (ct) {
      EXPECT_NEAR(s.tensor_scale, ref.tensor_scale, 1e-6f * ref.tensor_scale);  // stored as 1/G
    } else {
      EXPECT_EQ(s.tensor_scale, ref.tensor_scale);
    }
    // And it decodes to the reference's values (compressed-tensors: up to the ulp that
    // 1 / (1 / G) may move G by).
    if (ct) {
      EXPECT_LT(test::rel_err(dequantize(s.matrix()), dequantize(ref.view())), 1e-6);
    } else {
      EXPECT_EQ(dequantize(s.matrix()), dequantize(ref.view()));
    }
  }
}

TEST(Quantize, SafetensorsSchemesFromGgufAreBitExact) {
  TmpDir d;
  const TinyModel m = TinyModel::make();
  m.write_gguf(d / "in.gguf");
  const std::pair<const char*, FormatId> cases[] = {{"nvfp4", FormatId::NVFP4_CKPT},
                                                    {"fp8", FormatId::FP8_E4M3_TENSOR},
                                                    {"fp8-channel", FormatId::FP8_E4M3_CHANNEL},
                                                    {"fp8-block", FormatId::FP8_E4M3_BLOCK128},
                                                    {"mxfp4", FormatId::MXFP4_CKPT},
                                                    {"int4", FormatId::INT4_GROUP}};
  for (const auto& [type, f] : cases) {
    SCOPED_TRACE(type);
    const std::string out = d / type;
    quantize(d / "in.gguf", out, type);
    expect_st_matches(m, out, f);
    const auto mf = open_model_file(out);
    EXPECT_EQ(mf->config.n_layer, m.n_layer);
    EXPECT_EQ(mf->config.n_head_kv, m.n_head_kv);
  }
  const auto nv = open_model_file(d / "nvfp4");
  EXPECT_EQ(nv->quant_scheme, "modelopt nvfp4");
  EXPECT_TRUE(fs::exists(d / "nvfp4/hf_quant_config.json"));
  EXPECT_EQ(open_model_file(d / "int4")->quant_scheme, "gptq v1 4-bit g128");
}

TEST(Quantize, HfFolderToCompressedTensorsAndToGguf) {
  TmpDir d;
  const TinyModel m = TinyModel::make();
  m.write_hf(d / "hf");
  {
    nlohmann::json vocab = nlohmann::json::object();
    for (int i = 0; i < 200; ++i) vocab["t" + std::to_string(i)] = i;
    std::ofstream(d / "hf/tokenizer.json") << nlohmann::json{
        {"model",
         {{"type", "BPE"}, {"byte_fallback", false}, {"vocab", vocab}, {"merges", {"t1 t2", "t3 t4", "t5 t6"}}}},
        {"added_tokens",
         {{{"id", 200}, {"content", "<|begin|>"}},
          {{"id", 201}, {"content", "<|end|>"}}}}}.dump();
    std::ofstream(d / "hf/tokenizer_config.json")
        << R"({"bos_token": "<|begin|>", "eos_token": "<|end|>", "add_bos_token": true,
              "chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"})";
  }
  quantize(d / "hf", d / "ct", "nvfp4", {}, {}, "compressed-tensors");
  EXPECT_TRUE(fs::exists(d / "ct/tokenizer.json"));
  expect_st_matches(m, d / "ct", FormatId::NVFP4_CKPT, /*ct=*/true);
  EXPECT_EQ(open_model_file(d / "ct")->quant_scheme, "compressed-tensors nvfp4");
  EXPECT_TRUE(fs::exists(d / "ct/generation_config.json"));
  // HF → GGUF: names mapped, q/k rows permuted back to llama.cpp order.
  quantize(d / "hf", d / "f32.gguf", "f32");
  const auto f = open_model_file(d / "f32.gguf");
  expect_gguf_matches(m, *f);
  EXPECT_EQ(f->metadata["llama.attention.head_count_kv"], m.n_head_kv);
  EXPECT_EQ(f->metadata["general.file_type"], 0);
  // The tokenizer travels from tokenizer.json into tokenizer.ggml.*.
  const TokenizerInfo& tok = f->tokenizer;
  EXPECT_EQ(tok.model, vocab_from_hf_folder(d / "hf").model);  // the runtime's reading of tokenizer.json
  EXPECT_EQ(tok.n_tokens, 202);
  EXPECT_EQ(tok.n_merges, 3);
  EXPECT_EQ(tok.bos_id, 200);
  EXPECT_EQ(tok.eos_id, 201);
  EXPECT_TRUE(tok.add_bos);
  EXPECT_TRUE(tok.has_chat_template);
  EXPECT_EQ(f->metadata["tokenizer.ggml.tokens"][7], "t7");
  quantize(d / "hf", d / "q8.gguf", "q8_0");
  expect_gguf_matches(m, *open_model_file(d / "q8.gguf"));
}

TEST(Quantize, QuantizedGgufIsDequantizedFirst) {
  TmpDir d;
  const TinyModel m = TinyModel::make();
  m.write_gguf(d / "in.gguf");
  quantize(d / "in.gguf", d / "q4.gguf", "q4_0", {}, {}, "modelopt");
  quantize(d / "q4.gguf", d / "q8.gguf", "q8_0");
  const auto q4 = open_model_file(d / "q4.gguf");
  const auto q8 = open_model_file(d / "q8.gguf");
  for (const auto& s : q4->tensors) {
    const TensorSource& o = q8->at(s.name);
    if (s.format == FormatId::F32) {
      EXPECT_EQ(o.format, FormatId::F32);
      continue;
    }
    if (s.name == "output.weight") {  // q4_0's output is Q6_K, q8_0's stays Q8_0
      EXPECT_EQ(o.format, FormatId::Q8_0);
    }
    const auto x = dequantize(s.matrix());
    const auto ref = imp::quantize(o.format, x, rows_of(s.shape), s.shape.back());
    EXPECT_TRUE(same(o.data, ref.data)) << s.name;
  }
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Quantize, BadInputsAreClearErrorsAndLeaveNothing) {
  TmpDir d;
  const TinyModel m = TinyModel::make();
  m.write_gguf(d / "in.gguf");
  EXPECT_NE(error_of([&] { quantize(d / "in.gguf", d / "x.gguf", "q4_k_q"); }).find("unknown --type"),
            std::string::npos);
  EXPECT_NE(error_of([&] { quantize(d / "in.gguf", d / "x", "q4_k_m"); }).find("unknown --type"), std::string::npos);
  quantize(d / "in.gguf", d / "x.gguf", "q8_0");
  EXPECT_NE(error_of([&] { quantize(d / "in.gguf", d / "x.gguf", "q8_0"); }).find("--force"), std::string::npos);
  EXPECT_EQ(error_of([&] { quantize(d / "in.gguf", d / "x.gguf", "q4_0", {}, {}, "modelopt", true); }), "");
  EXPECT_EQ(open_model_file(d / "x.gguf")->metadata["general.file_type"], 2);

  // A row of 40 elements: no 32-element block type can hold it, and Q4_0 has no fallback.
  TinyModel odd = m;
  odd.tensors.push_back({"blk.0.ffn_odd.weight", {8, 40}, test::randn(320)});
  odd.write_gguf(d / "odd.gguf");
  const std::string e = error_of([&] { quantize(d / "odd.gguf", d / "odd_q4.gguf", "q4_0"); });
  EXPECT_NE(e.find("row length 40"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(d / "odd_q4.gguf"));
  EXPECT_FALSE(fs::exists(d / ("odd_q4.gguf.tmp-" + std::to_string(::getpid()))));
  // NVFP4 needs rows of 16s: by default the tensor falls back to source precision (counted,
  // listed as excluded); forcing it with --quantize is an error naming the tensor and --keep.
  odd.write_hf(d / "oddhf");
  const std::string e2 = error_of([&] { quantize(d / "oddhf", d / "odd_nv", "nvfp4", {}, {"ffn_odd"}); });
  EXPECT_NE(e2.find("--keep"), std::string::npos) << e2;
  EXPECT_NE(e2.find("model.extra.blk.0.ffn_odd.weight"), std::string::npos) << e2;
  EXPECT_FALSE(fs::exists(d / "odd_nv"));
  QuantizeSummary fb;
  EXPECT_EQ(error_of([&] { fb = quantize(d / "oddhf", d / "odd_nv", "nvfp4"); }), "");
  EXPECT_EQ(fb.fallbacks, 1);
  {
    const auto nv = open_model_file(d / "odd_nv");
    EXPECT_EQ(nv->at("model.extra.blk.0.ffn_odd.weight").format, FormatId::F32);
    EXPECT_EQ(nv->at("model.layers.0.mlp.up_proj.weight").format, FormatId::NVFP4_CKPT);
    std::ifstream hq(d / "odd_nv/hf_quant_config.json");
    const auto j = nlohmann::json::parse(hq);
    const auto& ex = j["quantization"]["exclude_modules"];
    EXPECT_NE(std::find(ex.begin(), ex.end(), "model.extra.blk.0.ffn_odd"), ex.end()) << ex.dump();
  }
  // ... and --keep is the explicit way.
  EXPECT_EQ(error_of([&] { quantize(d / "oddhf", d / "odd_nv2", "nvfp4", {"ffn_odd"}); }), "");

  // An F64 weight: unsupported source dtype.
  fs::create_directories(d / "f64");
  std::vector<uint8_t> b(8 * 32 * 8, 0);
  SafetensorsWriter::write_file(d / "f64/model.safetensors",
                                {{"model.layers.0.mlp.up_proj.weight", StDtype::F64, {8, 32}, b}});
  fs::copy_file(d / "oddhf/config.json", d / "f64/config.json");
  const std::string e3 = error_of([&] { quantize(d / "f64", d / "f64.gguf", "q8_0"); });
  EXPECT_NE(e3.find("unsupported source dtype"), std::string::npos) << e3;
}

// The real SmolLM2 Q4_1 GGUF requantized to Q8_0 loads and generates with `imp run`.
TEST(Quantize, RealSmolLM2Q41ToQ80Runs) {
  const char* home = std::getenv("HOME");
  const std::string model = std::string(home ? home : "") + "/.cache/imp/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!fs::exists(model)) GTEST_SKIP() << model << " not downloaded (scripts/fetch-models.sh)";
  TmpDir d;
  const QuantizeSummary s = quantize(model, d / "q8.gguf", "q8_0");
  EXPECT_GT(s.quantized, 100);
  const auto f = open_model_file(d / "q8.gguf");
  EXPECT_EQ(f->metadata["general.file_type"], 7);
  EXPECT_EQ(f->tokenizer.n_tokens, open_model_file(model)->tokenizer.n_tokens);
  const std::string cmd =
      std::string(IMP_BINARY) + " run -m " + (d / "q8.gguf") + " -p hi -n 4 > " + (d / "run.txt") + " 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << std::ifstream(d / "run.txt").rdbuf();
}

}  // namespace
}  // namespace imp
