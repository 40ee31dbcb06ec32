// GGUF writer → reader round trips, typed JSON, open_gguf_model (config, tokenizer, NVFP4
// scale companions) and the sparse 100 GB file that must open without being read.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>

#include "common/error.h"
#include "io/gguf_config.h"
#include "io/gguf_reader.h"
#include "io/gguf_writer.h"
#include "io/model_file.h"
#include "io/gguf_test_util.h"

namespace imp {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir() {
  const auto d = fs::temp_directory_path() / fmt::format("imp_gguf_test_{}", ::getpid());
  fs::create_directories(d);
  return d;
}

void write_file(const fs::path& p, const std::vector<uint8_t>& b) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(GgufIo, WriterReaderRoundTripKeepsTypesValuesAndBytes) {
  for (uint32_t alignment : {32u, 8u, 64u, 4096u}) {
    const uint64_t seed = std::random_device{}();
    SCOPED_TRACE(fmt::format("alignment {} seed {}", alignment, seed));
    std::vector<test::ExampleTensor> tensors;
    const auto bytes = test::example_gguf(seed, alignment, &tensors);
    const GgufFile f = parse_gguf(bytes, "mem.gguf");
    EXPECT_EQ(f.version, 3u);
    EXPECT_EQ(f.alignment, alignment);
    EXPECT_EQ(f.layout.data_offset % alignment, 0u);

    // Same KV pairs, same order, same types and values.
    GgufWriter w2;
    std::mt19937_64 rng2(seed);
    test::add_example_kv(w2, rng2);
    const GgufFile kv_only = parse_gguf(w2.to_bytes(), "kv.gguf");
    ASSERT_EQ(f.kv.size(), kv_only.kv.size() + (alignment != 32 ? 1 : 0));
    for (size_t k = 0; k < kv_only.kv.size(); ++k) {
      EXPECT_EQ(f.kv[k].first, kv_only.kv[k].first);
      EXPECT_TRUE(f.kv[k].second == kv_only.kv[k].second) << f.kv[k].first;
    }
    EXPECT_EQ(f.find("t.u8")->type, GgufType::kUint8);
    EXPECT_EQ(f.find("t.u8")->u, 200u);
    EXPECT_EQ(f.find("t.i16")->i, -32000);
    EXPECT_EQ(f.find("t.arr_str")->strings, (std::vector<std::string>{"a", "", "bc d"}));
    EXPECT_EQ(f.find("t.arr_i16")->element(2).i, 300);
    EXPECT_EQ(f.find("t.arr_empty")->array_size(), 0u);
    EXPECT_EQ(f.find("t.arr_empty")->elem_type, GgufType::kInt32);
    EXPECT_GE(f.find("t.u64")->u, uint64_t(1) << 63);

    ASSERT_EQ(f.tensors.size(), tensors.size());
    for (size_t k = 0; k < tensors.size(); ++k) {
      const auto& t = f.tensors[k];
      EXPECT_EQ(t.name, tensors[k].name);
      EXPECT_EQ(t.shape(), tensors[k].shape);
      EXPECT_EQ(t.format, tensors[k].format);
      EXPECT_EQ(t.offset % alignment, 0u);
      const auto data = f.tensor_data(t);
      EXPECT_TRUE(std::equal(data.begin(), data.end(), tensors[k].bytes.begin(), tensors[k].bytes.end())) << t.name;
    }
    // Writing what was read gives the same bytes.
    GgufWriter again;
    for (const auto& [key, value] : f.kv) again.set(key, value);
    for (const auto& t : f.tensors) again.add_tensor(t.name, t.shape(), t.format, f.tensor_data(t));
    EXPECT_EQ(again.to_bytes(), bytes);
  }
}

TEST(GgufIo, TypedJsonRoundTrip) {
  std::mt19937_64 rng(std::random_device{}());
  GgufWriter w;
  test::add_example_kv(w, rng);
  const GgufFile f = parse_gguf(w.to_bytes(), "kv.gguf");
  for (const auto& [key, value] : f.kv) {
    const auto j = to_typed_json(value);
    EXPECT_TRUE(from_typed_json(nlohmann::json::parse(j.dump())) == value) << key << " " << j.dump();
  }
  EXPECT_NE(error_of([] { from_typed_json({{"type", "UINT8"}, {"value", 256}}); }).find("does not fit"),
            std::string::npos);
  EXPECT_NE(error_of([] { from_typed_json({{"type", "ARRAY"}, {"elem_type", "ARRAY"}, {"value", nlohmann::json::array()}}); })
                .find("nested"),
            std::string::npos);
}

TEST(GgufIo, FileWriteAndModelFile) {
  const auto dir = temp_dir();
  const std::string path = (dir / "model.gguf").string();
  std::mt19937_64 rng(std::random_device{}());
  auto tensors = test::example_tensors(rng);
  GgufWriter w;
  test::add_example_kv(w, rng);
  w.set("general.file_type", GgufValue::of_uint(GgufType::kUint32, 2));
  w.set("llama.feed_forward_length", GgufValue::of_uint(GgufType::kUint64, 176));  // any integer width
  w.set("llama.attention.head_count_kv", GgufValue::of_int(GgufType::kInt16, 2));
  w.set("llama.attention.layer_norm_rms_epsilon", GgufValue::of_float(GgufType::kFloat32, 1e-6));
  w.set("llama.rope.freq_base", GgufValue::of_float(GgufType::kFloat64, 500000.0));
  w.set("llama.rope.scaling.type", GgufValue::of_string("yarn"));
  w.set("llama.rope.scaling.factor", GgufValue::of_float(GgufType::kFloat32, 4.0));
  w.set("tokenizer.ggml.eos_token_id", GgufValue::of_uint(GgufType::kUint8, 2));
  w.set("tokenizer.chat_template", GgufValue::of_string("{{ x }}"));
  for (const auto& t : tensors) w.add_tensor(t.name, t.shape, t.format, t.bytes);
  w.write(path);
  EXPECT_FALSE(fs::exists(path + fmt::format(".tmp.{}", ::getpid())));

  const auto m = open_model_file(path);
  EXPECT_EQ(m->container, "gguf v3");
  EXPECT_EQ(m->quant_scheme.rfind("gguf Q4_0: ", 0), 0u) << m->quant_scheme;
  EXPECT_EQ(m->config.architecture, "llama");
  EXPECT_EQ(m->config.n_ctx_train, 4096);
  EXPECT_EQ(m->config.n_embd, 64);
  EXPECT_EQ(m->config.n_ff, 176);
  EXPECT_EQ(m->config.n_head, 4);
  EXPECT_EQ(m->config.n_head_kv, 2);
  EXPECT_EQ(m->config.head_dim, 16);
  EXPECT_EQ(m->config.rms_norm_eps, 1e-6f);
  EXPECT_EQ(m->config.rope_theta, 500000.0f);
  EXPECT_EQ(m->config.rope_scaling.type, "yarn");
  EXPECT_EQ(m->config.rope_scaling.factor, 4.0f);
  EXPECT_EQ(m->config.n_vocab, 5);
  EXPECT_TRUE(m->config.tie_word_embeddings);
  EXPECT_EQ(m->tokenizer.model, "llama");
  EXPECT_EQ(m->tokenizer.n_tokens, 5);
  EXPECT_EQ(m->tokenizer.bos_id, 1);  // SentencePiece default
  EXPECT_EQ(m->tokenizer.eos_id, 2);
  EXPECT_TRUE(m->tokenizer.has_chat_template);
  EXPECT_EQ(m->metadata["t.arr_str"], nlohmann::json({"a", "", "bc d"}));
  EXPECT_EQ(m->metadata["t.i8"], -100);
  EXPECT_NE(m->at("blk.0.attn_q.weight").note.find("adjacent-pair RoPE"), std::string::npos);
  EXPECT_EQ(m->at("blk.0.ffn_up.weight").note, "");
  ASSERT_EQ(m->tensors.size(), tensors.size());
  for (size_t k = 0; k < tensors.size(); ++k) {
    const auto& s = m->tensors[k];
    EXPECT_EQ(s.shape, tensors[k].shape);
    const auto mat = s.matrix();  // plane sizes agree with the shape
    EXPECT_EQ(mat.data.size(), tensors[k].bytes.size());
    EXPECT_TRUE(std::equal(s.data.begin(), s.data.end(), tensors[k].bytes.begin()));
  }
  fs::remove_all(dir);
}

GgufFile parse_kv(const std::string& key, GgufValue v, std::vector<uint8_t>& storage) {
  GgufWriter w;
  w.set("general.architecture", GgufValue::of_string("qwen3"));
  w.set(key, std::move(v));
  storage = w.to_bytes();
  return parse_gguf(storage, "cfg.gguf");
}

TEST(GgufIo, ConfigKeysAreTypeAndRangeChecked) {
  std::vector<uint8_t> b;
  std::vector<std::string> warnings;
  EXPECT_EQ(gguf_model_config(parse_kv("qwen3.block_count", GgufValue::of_uint(GgufType::kUint8, 36), b), warnings).n_layer, 36);
  EXPECT_EQ(gguf_model_config(parse_kv("qwen3.context_length", GgufValue::of_int(GgufType::kInt64, 40960), b), warnings)
                .n_ctx_train,
            40960);
  EXPECT_EQ(gguf_model_config(parse_kv("qwen3.attention.sliding_window", GgufValue::of_uint(GgufType::kUint32, 1024), b),
                              warnings)
                .sliding_window,
            1024);
  const auto layers = test::raw_of(std::vector<int32_t>{1024, 4096, 2048});
  EXPECT_EQ(gguf_model_config(parse_kv("qwen3.feed_forward_length", GgufValue::of_array(GgufType::kInt32, layers), b),
                              warnings)
                .n_ff,
            4096);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("varies per layer"), std::string::npos);

  const auto neg = error_of([&] {
    gguf_model_config(parse_kv("qwen3.block_count", GgufValue::of_int(GgufType::kInt32, -1), b), warnings);
  });
  EXPECT_EQ(neg.rfind("cfg.gguf: key 'qwen3.block_count' = -1 is out of range", 0), 0u) << neg;
  const auto huge = error_of([&] {
    gguf_model_config(parse_kv("qwen3.embedding_length", GgufValue::of_uint(GgufType::kUint64, ~uint64_t(0)), b),
                      warnings);
  });
  EXPECT_NE(huge.find("'qwen3.embedding_length' must be an integer"), std::string::npos) << huge;
  const auto str = error_of([&] {
    gguf_model_config(parse_kv("qwen3.attention.head_count", GgufValue::of_string("8"), b), warnings);
  });
  EXPECT_NE(str.find("'qwen3.attention.head_count' must be an integer"), std::string::npos) << str;
  const auto eps = error_of([&] {
    gguf_model_config(parse_kv("qwen3.attention.layer_norm_rms_epsilon", GgufValue::of_uint(GgufType::kUint32, 1), b),
                      warnings);
  });
  EXPECT_NE(eps.find("must be FLOAT32 or FLOAT64"), std::string::npos) << eps;
}

TEST(GgufIo, Nvfp4ScaleCompanionBecomesTensorScale) {
  const auto dir = temp_dir();
  const std::string path = (dir / "nvfp4.gguf").string();
  std::mt19937_64 rng(std::random_device{}());
  std::vector<uint8_t> q(size_t(3 * 36)), qe(size_t(2 * 36));
  for (auto& x : q) x = uint8_t(rng() & 0x7E);
  for (auto& x : qe) x = uint8_t(rng() & 0x7E);
  const float scale = std::uniform_real_distribution<float>(0.001f, 2.0f)(rng);
  const std::vector<float> expert_scales = {0.5f, 0.25f};
  GgufWriter w;
  w.set("general.architecture", GgufValue::of_string("llama"));
  w.add_tensor("blk.0.attn_q.weight", {3, 64}, FormatId::NVFP4, q);
  const auto s1 = test::raw_of(std::vector<float>{scale});  // the writer keeps a view: keep the bytes alive
  w.add_tensor("blk.0.attn_q.scale", {1}, FormatId::F32, s1);
  w.add_tensor("blk.0.ffn_up_exps.weight", {2, 1, 64}, FormatId::NVFP4, qe);
  const auto es = test::raw_of(expert_scales);
  w.add_tensor("blk.0.ffn_up_exps.scale", {2}, FormatId::F32, es);
  w.write(path);
  const auto m = open_model_file(path);
  ASSERT_EQ(m->tensors.size(), 3u);
  EXPECT_EQ(m->find("blk.0.attn_q.scale"), nullptr);
  EXPECT_EQ(m->at("blk.0.attn_q.weight").tensor_scale, scale);
  EXPECT_EQ(m->at("blk.0.ffn_up_exps.weight").tensor_scale, 1.0f);
  ASSERT_NE(m->find("blk.0.ffn_up_exps.scale"), nullptr);
  ASSERT_EQ(m->warnings.size(), 1u);
  EXPECT_NE(m->warnings[0].find("one per expert"), std::string::npos);
  fs::remove_all(dir);
}

TEST(GgufIo, WriterRejectsBadInput) {
  GgufWriter w;
  const std::vector<uint8_t> ten(10);
  EXPECT_NE(error_of([&] { w.add_tensor("x", {2, 3}, FormatId::F32, ten); }).find("has 10 bytes, its shape needs 24"),
            std::string::npos);
  EXPECT_NE(error_of([&] { w.add_tensor("x", {1, 31}, FormatId::Q4_0, ten); }).find("not a multiple of the block"),
            std::string::npos);
  EXPECT_NE(error_of([&] { w.add_tensor("x", {16}, FormatId::NVFP4_CKPT, ten); }).find("has no GGUF type"),
            std::string::npos);
  w.set("a", GgufValue::of_bool(false));
  EXPECT_NE(error_of([&] { w.set("a", GgufValue::of_bool(true)); }).find("duplicate key"), std::string::npos);
  EXPECT_NE(error_of([&] { w.set("general.alignment", GgufValue::of_uint(GgufType::kUint32, 24)); }).find("power of two"),
            std::string::npos);
  EXPECT_NE(error_of([] { GgufValue::of_uint(GgufType::kUint16, 70000); }).find("does not fit"), std::string::npos);
}

// A 100 GB tensor in a sparse file: opening and inspecting must not read the data.
TEST(GgufIo, SparseHundredGigabyteFileIsNotRead) {
  const auto dir = temp_dir();
  const std::string path = (dir / "sparse.gguf").string();
  const std::vector<uint8_t> row(256 * 4);
  GgufWriter w;
  w.set("general.architecture", GgufValue::of_string("llama"));
  w.add_tensor("token_embd.weight", {1, 256}, FormatId::F32, row);
  auto bytes = w.to_bytes();
  const GgufFile small = parse_gguf(bytes, path);
  const uint64_t rows = 100'000'000'000ull / 1024;
  // ne[1] of the only tensor: name length, name, n_dims, ne[0], then ne[1].
  test::patch<uint64_t>(bytes, small.layout.tensor_info_offsets[0] + 8 + 17 + 4 + 8, rows);
  bytes.resize(size_t(small.layout.data_offset));
  write_file(path, bytes);
  const uint64_t total = small.layout.data_offset + rows * 1024;
  ASSERT_EQ(::truncate(path.c_str(), off_t(total)), 0);

  const auto t0 = std::chrono::steady_clock::now();
  const auto m = open_model_file(path);
  EXPECT_EQ(m->tensors.at(0).shape, (std::vector<int64_t>{int64_t(rows), 256}));
  EXPECT_EQ(uint64_t(m->tensors.at(0).bytes()), rows * 1024);
  const std::string cmd = fmt::format("{} inspect --json {} > /dev/null", IMP_BINARY, path);
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(seconds, 5.0) << "reading 100 GB of zeros takes far longer than parsing a header";
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(uint64_t(st.st_size), total);
  EXPECT_LT(uint64_t(st.st_blocks) * 512, uint64_t(1) << 20) << "the file must stay sparse";
  fs::remove_all(dir);
}

}  // namespace
}  // namespace imp
