// A tiny random llama model for the quantizer tests, written fresh per test:
//   GGUF F32 (llama.cpp names, RoPE rows in GGUF order) through GgufWriter, and the same
//   weights as a Hugging Face folder (config.json + model.safetensors, HF names, half-split
//   RoPE rows) through SafetensorsWriter.
// Sizes: n_embd 256 (K-quant rows fit), n_ff 384 (ffn_down rows of 384 do not fit 256-element
// super-blocks, so llama.cpp's fallback fires; 384 is a multiple of 128 for GPTQ), 4 layers,
// 8 heads of 32, 2 KV heads (n_gqa 4), vocab 300.
#pragma once

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/random_data.h"
#include "io/gguf_writer.h"
#include "io/safetensors_writer.h"
#include "io/tensor_names.h"

namespace imp::test {

struct TinyTensor {
  std::string gguf_name;
  std::vector<int64_t> shape;
  std::vector<float> data;  // GGUF row order
};

struct TinyModel {
  int64_t n_embd = 256, n_ff = 384, n_layer = 4, n_head = 8, n_head_kv = 2, n_vocab = 300;
  bool tied = false;
  std::vector<TinyTensor> tensors;

  int64_t head_dim() const { return n_embd / n_head; }

  static TinyModel make(bool tied = false) {
    TinyModel m;
    m.tied = tied;
    auto add = [&](std::string n, std::vector<int64_t> shape, float scale) {
      int64_t e = 1;
      for (auto d : shape) e *= d;
      m.tensors.push_back({std::move(n), shape, randn(e, scale)});
    };
    const int64_t hd = m.head_dim();
    add("token_embd.weight", {m.n_vocab, m.n_embd}, 1.0f);
    add("output_norm.weight", {m.n_embd}, 1.0f);
    if (!tied) add("output.weight", {m.n_vocab, m.n_embd}, 0.05f);
    for (int l = 0; l < m.n_layer; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      add(p + "attn_norm.weight", {m.n_embd}, 1.0f);
      add(p + "attn_q.weight", {m.n_head * hd, m.n_embd}, 0.05f);
      add(p + "attn_k.weight", {m.n_head_kv * hd, m.n_embd}, 0.05f);
      add(p + "attn_v.weight", {m.n_head_kv * hd, m.n_embd}, 0.05f);
      add(p + "attn_output.weight", {m.n_embd, m.n_head * hd}, 0.05f);
      add(p + "ffn_norm.weight", {m.n_embd}, 1.0f);
      add(p + "ffn_gate.weight", {m.n_ff, m.n_embd}, 0.05f);
      add(p + "ffn_up.weight", {m.n_ff, m.n_embd}, 0.05f);
      add(p + "ffn_down.weight", {m.n_embd, m.n_ff}, 0.05f);
    }
    return m;
  }

  const TinyTensor& at(const std::string& gguf_name) const {
    for (const auto& t : tensors) {
      if (t.gguf_name == gguf_name) return t;
    }
    throw std::runtime_error("no tiny tensor " + gguf_name);
  }

  // The tensor in HF row order (attn_q/attn_k un-permuted).
  std::vector<float> hf_data(const TinyTensor& t) const {
    const bool q = t.gguf_name.ends_with("attn_q.weight"), k = t.gguf_name.ends_with("attn_k.weight");
    if (!q && !k) return t.data;
    const int64_t heads = q ? n_head : n_head_kv;
    std::vector<float> out(t.data.size());
    rope_permute_rows({reinterpret_cast<const uint8_t*>(t.data.data()), t.data.size() * 4},
                      {reinterpret_cast<uint8_t*>(out.data()), out.size() * 4}, heads, head_dim(), t.shape[1] * 4,
                      false);
    return out;
  }

  void write_gguf(const std::string& path) const {
    GgufWriter w;
    auto u32 = [](int64_t v) { return GgufValue::of_uint(GgufType::kUint32, uint64_t(v)); };
    w.set("general.architecture", GgufValue::of_string("llama"));
    w.set("general.name", GgufValue::of_string("tiny"));
    w.set("llama.context_length", u32(128));
    w.set("llama.embedding_length", u32(n_embd));
    w.set("llama.block_count", u32(n_layer));
    w.set("llama.feed_forward_length", u32(n_ff));
    w.set("llama.attention.head_count", u32(n_head));
    w.set("llama.attention.head_count_kv", u32(n_head_kv));
    w.set("llama.rope.freq_base", GgufValue::of_float(GgufType::kFloat32, 10000.0));
    w.set("llama.attention.layer_norm_rms_epsilon", GgufValue::of_float(GgufType::kFloat32, 1e-5));
    w.set("general.file_type", u32(0));
    w.set("test.marker", GgufValue::of_string("copied"));
    for (const auto& t : tensors) {
      w.add_tensor(t.gguf_name, t.shape, FormatId::F32,
                   {reinterpret_cast<const uint8_t*>(t.data.data()), t.data.size() * 4});
    }
    w.write(path);
  }

  void write_hf(const std::string& dir) const {
    std::filesystem::create_directories(dir);
    std::vector<SafetensorsWriter::Tensor> st;
    for (const auto& t : tensors) {
      const auto hf = gguf_to_hf_name(t.gguf_name, "llama").value_or("model.extra." + t.gguf_name);
      const auto v = hf_data(t);
      std::vector<uint8_t> b(v.size() * 4);
      std::memcpy(b.data(), v.data(), b.size());
      st.push_back({hf, StDtype::F32, t.shape, std::move(b)});
    }
    SafetensorsWriter::write_file(dir + "/model.safetensors", st, {{"format", "pt"}});
    nlohmann::json c = {{"architectures", {"LlamaForCausalLM"}},
                        {"model_type", "llama"},
                        {"hidden_size", n_embd},
                        {"intermediate_size", n_ff},
                        {"num_hidden_layers", n_layer},
                        {"num_attention_heads", n_head},
                        {"num_key_value_heads", n_head_kv},
                        {"vocab_size", n_vocab},
                        {"max_position_embeddings", 128},
                        {"rms_norm_eps", 1e-5},
                        {"rope_theta", 10000.0},
                        {"tie_word_embeddings", tied},
                        {"torch_dtype", "float32"}};
    std::ofstream(dir + "/config.json") << c.dump(2);
    std::ofstream(dir + "/generation_config.json") << R"({"do_sample": false})";
  }
};

}  // namespace imp::test
