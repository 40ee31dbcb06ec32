#include "quant/synth_model.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>

#include "backends/cpu/thread_pool.h"
#include "common/error.h"
#include "formats/fp8_scaled.h"
#include "formats/nvfp4_ckpt.h"
#include "formats/quant_matrix.h"
#include "formats/traits.h"
#include "io/gguf_writer.h"
#include "io/safetensors_writer.h"
#include "io/tensor_names.h"
#include "quant/gguf_mix.h"
#include "quant/synth_vocab.h"

namespace imp {
namespace {

constexpr int64_t kChunkRows = 64;  // RNG stream granularity (fixed: results are thread-count independent)

int64_t rows_of(const SynthTensor& t) { return t.shape[0]; }
int64_t cols_of(const SynthTensor& t) { return t.shape.size() > 1 ? t.shape[1] : t.shape[0]; }
int64_t rows_2d(const SynthTensor& t) { return t.shape.size() > 1 ? t.shape[0] : 1; }

// The F32 values of tensor `index` (rows_2d × cols), generated in parallel.
std::vector<float> generate(const SynthTensor& t, size_t index, uint64_t seed, ThreadPool& pool) {
  const int64_t rows = rows_2d(t), cols = cols_of(t);
  std::vector<float> x(size_t(rows * cols));
  const bool norm = t.kind == SynthTensor::kNorm;
  const float stddev = norm ? 0.05f : 0.02f, mean = norm ? 1.0f : 0.0f;
  const int64_t chunks = (rows + kChunkRows - 1) / kChunkRows;
  pool.parallel_for(chunks, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      std::seed_seq sq{uint32_t(seed), uint32_t(seed >> 32), uint32_t(index), uint32_t(c), uint32_t(c >> 32)};
      std::mt19937_64 rng(sq);
      std::normal_distribution<float> nd(mean, stddev);
      const int64_t r1 = std::min(rows, (c + 1) * kChunkRows);
      for (int64_t i = c * kChunkRows * cols; i < r1 * cols; ++i) {
        float v = nd(rng);
        while (v == 0.0f) v = nd(rng);  // "never zeros", even by accident
        x[size_t(i)] = v;
      }
    }
  });
  return x;
}

// quantize() with the rows spread over the pool: the same per-tensor scale computation and
// the same per-row reference quantizer, so the bytes are identical.
OwnedQuantMatrix quantize_parallel(FormatId f, const std::vector<float>& x, int64_t rows, int64_t cols, ThreadPool& pool) {
  const auto& tr = format_traits(f);
  if (tr.scale_layout == ScaleLayout::kTile128 || tr.scale_layout == ScaleLayout::kPerGroup) {
    return quantize(f, x, rows, cols);  // not produced by synth; kept correct anyway
  }
  check_row_length(f, cols);
  OwnedQuantMatrix m;
  m.format = f;
  m.rows = rows;
  m.cols = cols;
  m.data.resize(size_t(rows * row_data_bytes(f, cols)));
  m.scales.resize(size_t(scale_plane_bytes(f, rows, cols, 0)));
  m.zeros.resize(size_t(zero_plane_bytes(f, rows, cols, 0)));
  if (tr.needs_tensor_scale) {
    std::vector<float> amaxes;
    std::mutex mu;
    pool.parallel_for(rows, [&](int64_t r0, int64_t r1) {
      float a = 0.0f;
      for (int64_t i = r0 * cols; i < r1 * cols; ++i) a = std::fmax(a, std::fabs(x[size_t(i)]));
      std::lock_guard<std::mutex> lock(mu);
      amaxes.push_back(a);
    });
    float amax = 0.0f;
    for (float a : amaxes) amax = std::fmax(amax, a);
    m.tensor_scale = f == FormatId::NVFP4_CKPT ? nvfp4_ckpt_tensor_scale(amax) : fp8_e4m3_tensor_scale(amax);
  }
  const QuantMatrix v = m.view();
  pool.parallel_for(rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const ConstRowPlanes c = row_planes(v, r);
      RowPlanes p{const_cast<void*>(c.data), const_cast<void*>(c.scales), const_cast<void*>(c.zeros), c.tensor_scale, c.group};
      tr.quantize_ref(x.data() + r * cols, p, cols);
    }
  });
  return m;
}

bool is_gguf_weight_type(FormatId f) {
  const auto& t = format_traits(f);
  return t.gguf_type >= 0 && t.vec_dot_ref != nullptr && !t.is_activation_only;
}

// GGUF tensor type for a tensor of the model (see the header).
FormatId gguf_type_for(const SynthTensor& t, FormatId type) {
  if (t.kind == SynthTensor::kNorm) return FormatId::F32;
  if (t.kind == SynthTensor::kOutput && format_traits(type).bits_per_weight < 6.0f) {
    return cols_of(t) % 256 == 0 ? FormatId::Q6_K : FormatId::Q8_0;
  }
  return type;
}

std::string human_bytes(uint64_t b) {
  if (b >= (uint64_t(1) << 30)) return fmt::format("{:.2f} GiB", double(b) / double(uint64_t(1) << 30));
  if (b >= (uint64_t(1) << 20)) return fmt::format("{:.1f} MiB", double(b) / double(uint64_t(1) << 20));
  return fmt::format("{} B", b);
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out;
  for (int64_t d : s) out += (out.empty() ? "" : "×") + std::to_string(d);
  return out;
}

std::vector<uint8_t> raw_i32(const std::vector<int32_t>& v) {
  std::vector<uint8_t> raw(v.size() * 4);
  std::memcpy(raw.data(), v.data(), raw.size());
  return raw;
}

void report(const SynthOptions& o, size_t k, size_t n, const std::string& name, const std::vector<int64_t>& shape,
            std::string_view fmt_name, uint64_t bytes) {
  if (o.progress) o.progress(fmt::format("[{}/{}] {} {} {} {}", k + 1, n, name, shape_str(shape), fmt_name, human_bytes(bytes)));
}

SynthSummary write_gguf(const SynthOptions& o, const ModelPreset& p, int64_t n_layer, ThreadPool& pool) {
  if (!is_gguf_weight_type(o.type)) fail("imp synth: {} is not a GGUF weight type", format_name(o.type));
  const auto tensors = synth_tensor_list(p, n_layer);
  const std::string a(p.arch);
  GgufWriter w;
  w.set("general.architecture", GgufValue::of_string(a));
  w.set("general.name", GgufValue::of_string(fmt::format("synthetic {} ({})", p.name, o.mix.empty() ? std::string(format_name(o.type)) : o.mix)));
  w.set("imp.synth.preset", GgufValue::of_string(std::string(p.name)));
  w.set("imp.synth.seed", GgufValue::of_uint(GgufType::kUint64, o.seed));
  const auto u32 = [](int64_t v) { return GgufValue::of_uint(GgufType::kUint32, uint64_t(v)); };
  w.set(a + ".context_length", u32(p.n_ctx));
  w.set(a + ".embedding_length", u32(p.n_embd));
  w.set(a + ".block_count", u32(n_layer));
  w.set(a + ".feed_forward_length", u32(p.n_ff));
  w.set(a + ".attention.head_count", u32(p.n_head));
  w.set(a + ".attention.head_count_kv", u32(p.n_head_kv));
  w.set(a + ".attention.key_length", u32(p.head_dim));
  w.set(a + ".attention.value_length", u32(p.head_dim));
  w.set(a + ".attention.layer_norm_rms_epsilon", GgufValue::of_float(GgufType::kFloat32, p.rms_eps));
  w.set(a + ".rope.freq_base", GgufValue::of_float(GgufType::kFloat32, p.rope_theta));
  w.set(a + ".rope.dimension_count", u32(p.head_dim));
  w.set(a + ".vocab_size", u32(p.n_vocab));
  const SynthVocab v = make_synth_vocab(p.n_vocab);
  w.set("tokenizer.ggml.model", GgufValue::of_string("gpt2"));
  w.set("tokenizer.ggml.pre", GgufValue::of_string(p.arch == "qwen3" ? "qwen2" : "llama-bpe"));
  w.set("tokenizer.ggml.tokens", GgufValue::of_strings(v.tokens));
  w.set("tokenizer.ggml.token_type", GgufValue::of_array(GgufType::kInt32, raw_i32(v.types)));
  w.set("tokenizer.ggml.merges", GgufValue::of_strings(v.merges));
  w.set("tokenizer.ggml.bos_token_id", u32(v.bos));
  w.set("tokenizer.ggml.eos_token_id", u32(v.eos));
  w.set("tokenizer.ggml.add_bos_token", GgufValue::of_bool(true));
  std::vector<FormatId> types;
  const std::optional<GgufMix> mix = o.mix.empty() ? std::nullopt : find_gguf_mix(o.mix);
  if (!o.mix.empty() && !mix) fail("imp synth: unknown GGUF mix '{}'", o.mix);
  if (mix) w.set("general.file_type", GgufValue::of_uint(GgufType::kUint32, uint64_t(mix->file_type)));
  GgufMixModel mm;
  mm.n_layer = n_layer;
  mm.n_head = p.n_head;
  mm.n_head_kv = p.n_head_kv > 0 ? p.n_head_kv : p.n_head;
  for (const auto& t : tensors) {
    if (t.name.find("attn_v.weight") != std::string::npos) ++mm.n_attention_wv;
    if (t.name == "output.weight") mm.has_output = true;
  }
  int i_wv = 0;
  for (const auto& t : tensors) {
    if (mix && t.kind != SynthTensor::kNorm) {
      const int layer = t.name.rfind("blk.", 0) == 0 ? std::atoi(t.name.c_str() + 4) : -1;
      types.push_back(gguf_mix_tensor_type(*mix, mm, t.name, layer, i_wv, cols_of(t), 1).format);
      if (t.name.find("attn_v.weight") != std::string::npos) ++i_wv;
    } else {
      types.push_back(gguf_type_for(t, o.type));
    }
    w.add_tensor_info(t.name, t.shape, types.back());
  }
  SynthSummary s{o.out, int64_t(tensors.size()), 0};
  w.write_streamed(o.out, [&](size_t k) {
    const SynthTensor& t = tensors[k];
    const std::vector<float> x = generate(t, k, o.seed, pool);
    OwnedQuantMatrix q = quantize_parallel(types[k], x, rows_2d(t), cols_of(t), pool);
    s.bytes += q.data.size();
    report(o, k, tensors.size(), t.name, t.shape, format_name(types[k]), q.data.size());
    return std::move(q.data);
  });
  return s;
}

std::vector<uint8_t> f32_bytes(float v) {
  std::vector<uint8_t> b(4);
  std::memcpy(b.data(), &v, 4);
  return b;
}

void write_json(const std::filesystem::path& path, const nlohmann::ordered_json& j) {
  std::ofstream f(path);
  if (!f) fail("{}: cannot create", path.string());
  f << j.dump(2) << "\n";
  if (!f) fail("{}: write failed", path.string());
}

void write_hf_tokenizer(const std::filesystem::path& dir, int64_t n_vocab) {
  const SynthVocab v = make_synth_vocab(n_vocab);
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    if (v.types[i] == 1) vocab[v.tokens[i]] = i;
  }
  nlohmann::ordered_json added = nlohmann::ordered_json::array();
  for (int32_t id : {v.bos, v.eos}) added.push_back({{"id", id}, {"content", v.tokens[size_t(id)]}, {"special", true}});
  nlohmann::ordered_json tj = {{"version", "1.0"},
                               {"added_tokens", added},
                               {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
                               {"decoder", {{"type", "ByteLevel"}}},
                               {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", v.merges}, {"ignore_merges", false}}}};
  write_json(dir / "tokenizer.json", tj);
  write_json(dir / "tokenizer_config.json", {{"add_bos_token", true},
                                             {"bos_token", v.tokens[size_t(v.bos)]},
                                             {"eos_token", v.tokens[size_t(v.eos)]}});
}

SynthSummary write_safetensors(const SynthOptions& o, const ModelPreset& p, int64_t n_layer, ThreadPool& pool) {
  namespace fs = std::filesystem;
  const FormatId f = o.type;
  if (f != FormatId::NVFP4_CKPT && f != FormatId::FP8_E4M3_TENSOR && f != FormatId::BF16) {
    fail("imp synth: the safetensors folder holds nvfp4 (ModelOpt NVFP4), fp8 (ModelOpt FP8) or bf16, not {}", format_name(f));
  }
  const std::string algo = f == FormatId::NVFP4_CKPT ? "NVFP4" : f == FormatId::FP8_E4M3_TENSOR ? "FP8" : "";
  fs::create_directories(o.out);
  const auto tensors = synth_tensor_list(p, n_layer);
  // One safetensors entry per plane; `part` says which plane of which model tensor.
  enum Part : uint8_t { kPlain, kWeight, kBlockScale, kTensorScale, kInputScale };
  struct Entry {
    size_t tensor;
    Part part;
    std::string name;
  };
  std::vector<Entry> entries;
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  for (size_t k = 0; k < tensors.size(); ++k) {
    const SynthTensor& t = tensors[k];
    const auto hf = gguf_to_hf_name(t.name, std::string(p.arch));
    if (!hf) fail("imp synth: no Hugging Face name for {}", t.name);
    const std::string base = hf->substr(0, hf->size() - std::string(".weight").size());
    if (t.kind != SynthTensor::kProj || f == FormatId::BF16) {
      w.add(*hf, StDtype::BF16, t.shape);
      entries.push_back({k, kPlain, *hf});
    } else if (f == FormatId::NVFP4_CKPT) {
      w.add(*hf, StDtype::U8, {t.shape[0], t.shape[1] / 2});
      w.add(base + ".weight_scale", StDtype::F8_E4M3, {t.shape[0], t.shape[1] / 16});
      w.add(base + ".weight_scale_2", StDtype::F32, {});
      w.add(base + ".input_scale", StDtype::F32, {});
      entries.push_back({k, kWeight, *hf});
      entries.push_back({k, kBlockScale, base + ".weight_scale"});
      entries.push_back({k, kTensorScale, base + ".weight_scale_2"});
      entries.push_back({k, kInputScale, base + ".input_scale"});
    } else {
      w.add(*hf, StDtype::F8_E4M3, t.shape);
      w.add(base + ".weight_scale", StDtype::F32, {});
      w.add(base + ".input_scale", StDtype::F32, {});
      entries.push_back({k, kWeight, *hf});
      entries.push_back({k, kTensorScale, base + ".weight_scale"});
      entries.push_back({k, kInputScale, base + ".input_scale"});
    }
  }
  SynthSummary s{o.out, int64_t(tensors.size()), 0};
  OwnedQuantMatrix cur;  // the planes of the tensor being written
  // Each plane's bytes, one tensor at a time (a model larger than memory streams through).
  const auto produce = [&](size_t i) -> std::vector<uint8_t> {
    const Entry& e = entries[i];
    const SynthTensor& t = tensors[e.tensor];
    if (e.part == kPlain || e.part == kWeight) {
      const std::vector<float> x = generate(t, e.tensor, o.seed, pool);
      cur = quantize_parallel(e.part == kPlain ? FormatId::BF16 : f, x, rows_2d(t), cols_of(t), pool);
      s.bytes += cur.data.size() + cur.scales.size();
      report(o, e.tensor, tensors.size(), t.name, t.shape, e.part == kPlain ? "bf16" : format_name(f),
             cur.data.size() + cur.scales.size());
      return std::move(cur.data);
    }
    if (e.part == kBlockScale) return std::move(cur.scales);
    if (e.part == kTensorScale) return f32_bytes(cur.tensor_scale);
    // A plausible static activation scale: amax ≈ 4 for the input of a normed projection.
    return f32_bytes(f == FormatId::NVFP4_CKPT ? 4.0f / (6.0f * 448.0f) : 4.0f / 448.0f);
  };
  w.begin((fs::path(o.out) / "model.safetensors").string());
  for (size_t i = 0; i < entries.size(); ++i) w.write(entries[i].name, produce(i));
  w.finish();
  const std::string arch(p.arch);
  nlohmann::ordered_json cfg = {{"architectures", {std::string(p.hf_class)}},
                                {"model_type", std::string(p.hf_type)},
                                {"hidden_size", p.n_embd},
                                {"intermediate_size", p.n_ff},
                                {"num_hidden_layers", n_layer},
                                {"num_attention_heads", p.n_head},
                                {"num_key_value_heads", p.n_head_kv},
                                {"head_dim", p.head_dim},
                                {"hidden_act", "silu"},
                                {"max_position_embeddings", p.n_ctx},
                                {"rms_norm_eps", p.rms_eps},
                                {"rope_theta", p.rope_theta},
                                {"tie_word_embeddings", p.tied_embeddings},
                                {"vocab_size", p.n_vocab},
                                {"torch_dtype", "bfloat16"}};
  if (!algo.empty()) {
    const nlohmann::ordered_json producer = {{"name", "modelopt"}, {"version", "0.47.0"}};
    nlohmann::ordered_json quant = {{"quant_algo", algo}, {"kv_cache_quant_algo", nullptr}};
    if (algo == "NVFP4") quant["group_size"] = 16;
    quant["exclude_modules"] = {"lm_head", "model.embed_tokens"};
    write_json(fs::path(o.out) / "hf_quant_config.json", {{"producer", producer}, {"quantization", quant}});
    cfg["quantization_config"] = {{"quant_algo", algo}, {"producer", producer}, {"quant_method", "modelopt"},
                                  {"ignore", {"lm_head", "model.embed_tokens"}}};
  }
  write_json(fs::path(o.out) / "config.json", cfg);
  write_hf_tokenizer(o.out, p.n_vocab);
  return s;
}

}  // namespace

std::vector<SynthTensor> synth_tensor_list(const ModelPreset& p, int64_t n_layer) {
  std::vector<SynthTensor> t;
  const int64_t q = p.n_head * p.head_dim, kv = p.n_head_kv * p.head_dim;
  t.push_back({"token_embd.weight", {p.n_vocab, p.n_embd}, SynthTensor::kEmbed});
  for (int64_t i = 0; i < n_layer; ++i) {
    const std::string b = fmt::format("blk.{}.", i);
    t.push_back({b + "attn_norm.weight", {p.n_embd}, SynthTensor::kNorm});
    t.push_back({b + "attn_q.weight", {q, p.n_embd}, SynthTensor::kProj});
    t.push_back({b + "attn_k.weight", {kv, p.n_embd}, SynthTensor::kProj});
    t.push_back({b + "attn_v.weight", {kv, p.n_embd}, SynthTensor::kProj});
    if (p.qk_norm) {
      t.push_back({b + "attn_q_norm.weight", {p.head_dim}, SynthTensor::kNorm});
      t.push_back({b + "attn_k_norm.weight", {p.head_dim}, SynthTensor::kNorm});
    }
    t.push_back({b + "attn_output.weight", {p.n_embd, q}, SynthTensor::kProj});
    t.push_back({b + "ffn_norm.weight", {p.n_embd}, SynthTensor::kNorm});
    t.push_back({b + "ffn_gate.weight", {p.n_ff, p.n_embd}, SynthTensor::kProj});
    t.push_back({b + "ffn_up.weight", {p.n_ff, p.n_embd}, SynthTensor::kProj});
    t.push_back({b + "ffn_down.weight", {p.n_embd, p.n_ff}, SynthTensor::kProj});
  }
  t.push_back({"output_norm.weight", {p.n_embd}, SynthTensor::kNorm});
  if (!p.tied_embeddings) t.push_back({"output.weight", {p.n_vocab, p.n_embd}, SynthTensor::kOutput});
  return t;
}

SynthContainer default_synth_container(const std::string& type_name) {
  return type_name == "nvfp4" || type_name == "fp8" || type_name == "nvfp4_ckpt" || type_name == "fp8_e4m3_tensor"
             ? SynthContainer::kSafetensors
             : SynthContainer::kGguf;
}

FormatId synth_type_from_name(const std::string& name, SynthContainer container) {
  if (container == SynthContainer::kSafetensors) {
    if (name == "nvfp4" || name == "nvfp4_ckpt") return FormatId::NVFP4_CKPT;
    if (name == "fp8" || name == "fp8_e4m3_tensor") return FormatId::FP8_E4M3_TENSOR;
  }
  const auto f = format_from_name(name);
  if (f) return *f;
  if (const auto mix = find_gguf_mix(name)) {
    if (container != SynthContainer::kGguf) fail("imp synth: the mix '{}' is a GGUF mix; use --container gguf", name);
    return mix->base;
  }
  fail("imp synth: unknown type '{}'", name);
}

std::string synth_mix_from_name(const std::string& name) {
  if (format_from_name(name)) return "";
  const auto mix = find_gguf_mix(name);
  return mix && !mix->pure ? std::string(mix->name) : "";
}

SynthSummary synth_model(const SynthOptions& o) {
  const ModelPreset& p = find_model_preset(o.preset);
  if (o.layers < 0) fail("imp synth: --layers must be positive, got {}", o.layers);
  if (o.out.empty()) fail("imp synth: no output path");
  const int64_t n_layer = o.layers > 0 ? o.layers : p.n_layer;
  ThreadPool pool(o.threads);
  return o.container == SynthContainer::kGguf ? write_gguf(o, p, n_layer, pool) : write_safetensors(o, p, n_layer, pool);
}

}  // namespace imp
