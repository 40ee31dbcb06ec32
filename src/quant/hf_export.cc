#include "quant/hf_export.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "runtime/pretokenizer.h"
#include "runtime/vocab.h"

namespace imp {
namespace {

namespace fs = std::filesystem;

struct ArchNames {
  const char* arch;
  const char* model_type;
  const char* cls;
};
constexpr ArchNames kArchs[] = {
    {"llama", "llama", "LlamaForCausalLM"},         {"mistral", "mistral", "MistralForCausalLM"},
    {"qwen2", "qwen2", "Qwen2ForCausalLM"},         {"qwen3", "qwen3", "Qwen3ForCausalLM"},
    {"gemma3", "gemma3_text", "Gemma3ForCausalLM"},
};

const ArchNames& arch_names(const std::string& arch) {
  for (const auto& a : kArchs) {
    if (arch == a.arch) return a;
  }
  fail("architecture '{}' cannot be converted between GGUF and Hugging Face (llama, mistral, qwen2, qwen3, gemma3)",
       arch);
}

GgufValue u32(int64_t v) { return GgufValue::of_uint(GgufType::kUint32, uint64_t(v)); }
GgufValue f32(double v) { return GgufValue::of_float(GgufType::kFloat32, v); }

template <class T>
GgufValue array_of(GgufType t, const std::vector<T>& v) {
  std::vector<uint8_t> raw(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(raw.data(), v.data(), raw.size());
  return GgufValue::of_array(t, std::move(raw));
}

}  // namespace

nlohmann::json hf_config_from_gguf(const QuantInput& in) {
  const ModelConfig& c = in.model->config;
  const ArchNames& a = arch_names(c.architecture);
  nlohmann::json j = {
      {"architectures", {a.cls}},
      {"model_type", a.model_type},
      {"hidden_size", c.n_embd},
      {"intermediate_size", c.n_ff},
      {"num_hidden_layers", c.n_layer},
      {"num_attention_heads", c.n_head},
      {"num_key_value_heads", c.n_head_kv > 0 ? c.n_head_kv : c.n_head},
      {"head_dim", c.head_dim > 0 ? c.head_dim : c.n_embd / c.n_head},
      {"rms_norm_eps", c.rms_norm_eps},
      {"rope_theta", c.rope_theta},
      {"max_position_embeddings", c.n_ctx_train},
      {"vocab_size", c.n_vocab},
      {"tie_word_embeddings", c.tie_word_embeddings},
      {"hidden_act", c.architecture == "gemma3" ? "gelu_pytorch_tanh" : "silu"},
      {"torch_dtype", "bfloat16"},
  };
  if (c.sliding_window > 0) j["sliding_window"] = c.sliding_window;
  if (!c.rope_scaling.type.empty()) {
    j["rope_scaling"] = {{"rope_type", c.rope_scaling.type}, {"factor", c.rope_scaling.factor}};
    if (c.rope_scaling.original_context > 0) {
      j["rope_scaling"]["original_max_position_embeddings"] = c.rope_scaling.original_context;
    }
  }
  const TokenizerInfo& t = in.model->tokenizer;
  if (t.bos_id) j["bos_token_id"] = *t.bos_id;
  if (t.eos_id) j["eos_token_id"] = *t.eos_id;
  return j;
}

std::vector<std::string> gguf_metadata_from_hf(GgufWriter& w, const QuantInput& in) {
  std::vector<std::string> notes;
  const ModelConfig& c = in.model->config;
  if (c.architecture == "gemma3") {
    // convert_hf_to_gguf.py rewrites Gemma's norm weights (w → w + 1) and adds keys imp's
    // name table does not carry; writing a GGUF that loads differently would be worse.
    fail("HF → GGUF for gemma3 is not supported (norm weight offsets); quantize to a safetensors folder instead");
  }
  arch_names(c.architecture);
  const std::string a = c.architecture + ".";
  const int64_t head_dim = c.head_dim > 0 ? c.head_dim : c.n_embd / c.n_head;
  w.set("general.architecture", GgufValue::of_string(c.architecture));
  if (!c.name.empty()) w.set("general.name", GgufValue::of_string(c.name));
  w.set(a + "context_length", u32(c.n_ctx_train));
  w.set(a + "embedding_length", u32(c.n_embd));
  w.set(a + "block_count", u32(c.n_layer));
  w.set(a + "feed_forward_length", u32(c.n_ff));
  w.set(a + "attention.head_count", u32(c.n_head));
  w.set(a + "attention.head_count_kv", u32(c.n_head_kv > 0 ? c.n_head_kv : c.n_head));
  if (head_dim * c.n_head != c.n_embd || c.architecture == "qwen3") {
    w.set(a + "attention.key_length", u32(head_dim));
    w.set(a + "attention.value_length", u32(head_dim));
  }
  w.set(a + "rope.dimension_count", u32(head_dim));
  w.set(a + "rope.freq_base", f32(c.rope_theta));
  w.set(a + "attention.layer_norm_rms_epsilon", f32(c.rms_norm_eps));
  w.set(a + "vocab_size", u32(c.n_vocab));
  if (!c.rope_scaling.type.empty()) {
    w.set(a + "rope.scaling.type", GgufValue::of_string(c.rope_scaling.type));
    w.set(a + "rope.scaling.factor", f32(c.rope_scaling.factor));
    if (c.rope_scaling.original_context > 0) {
      w.set(a + "rope.scaling.original_context_length", u32(c.rope_scaling.original_context));
    }
  }
  if (c.sliding_window > 0) w.set(a + "attention.sliding_window", u32(c.sliding_window));

  const fs::path dir =
      fs::is_directory(in.model->path) ? fs::path(in.model->path) : fs::path(in.model->path).parent_path();
  if (!fs::exists(dir / "tokenizer.json")) {
    notes.push_back("the input folder has no tokenizer.json: the GGUF carries no tokenizer");
    return notes;
  }
  const Vocab v = vocab_from_hf_folder(dir.string());
  w.set("tokenizer.ggml.model", GgufValue::of_string(v.model));
  if (!v.pre.empty()) w.set("tokenizer.ggml.pre", GgufValue::of_string(v.pre));
  w.set("tokenizer.ggml.tokens", GgufValue::of_strings(v.tokens));
  std::vector<int32_t> types;
  for (auto t : v.types) types.push_back(int32_t(t));
  w.set("tokenizer.ggml.token_type", array_of(GgufType::kInt32, types));
  if (!v.scores.empty()) w.set("tokenizer.ggml.scores", array_of(GgufType::kFloat32, v.scores));
  if (!v.merges.empty()) w.set("tokenizer.ggml.merges", GgufValue::of_strings(v.merges));
  const std::pair<const char*, int32_t> ids[] = {
      {"bos", v.bos}, {"eos", v.eos}, {"unknown", v.unk}, {"padding", v.pad}, {"eot", v.eot}};
  for (const auto& [key, id] : ids) {
    if (id >= 0) w.set(fmt::format("tokenizer.ggml.{}_token_id", key), u32(id));
  }
  w.set("tokenizer.ggml.add_bos_token", GgufValue::of_bool(v.add_bos));
  if (v.model == "llama") w.set("tokenizer.ggml.add_space_prefix", GgufValue::of_bool(v.add_space_prefix));
  if (!v.pre_patterns.empty()) {
    notes.push_back("tokenizer.json pre-tokenizer regexes are not representable in GGUF; tokenizer.ggml.pre '" + v.pre +
                    "' names them");
  }
  // The chat template lives in tokenizer_config.json (or chat_template.jinja).
  std::string tmpl;
  if (std::ifstream f(dir / "chat_template.jinja"); f) {
    tmpl.assign(std::istreambuf_iterator<char>(f), {});
  } else if (std::ifstream g(dir / "tokenizer_config.json"); g) {
    const std::string text((std::istreambuf_iterator<char>(g)), {});
    const auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_object() && j.contains("chat_template") && j["chat_template"].is_string()) tmpl = j["chat_template"];
  }
  if (!tmpl.empty()) w.set("tokenizer.chat_template", GgufValue::of_string(tmpl));
  return notes;
}

std::optional<std::string> write_hf_tokenizer_from_gguf(const QuantInput& in, const std::string& dir) {
  using json = nlohmann::json;
  const json& m = in.model->metadata;
  if (!m.is_object() || !m.contains("tokenizer.ggml.model")) {
    return "the GGUF input carries no tokenizer: the output folder has no tokenizer files";
  }
  const Vocab v = vocab_from_gguf(m, in.model->path);
  if (v.model != "gpt2") {
    return fmt::format(
        "the GGUF's '{}' (SentencePiece) tokenizer is not exported: its scores have no tokenizer.json BPE "
        "equivalent; copy tokenizer.json from the original model",
        v.model);
  }
  const std::vector<std::string> patterns = v.pre_patterns.empty() ? pretokenizer_patterns(v.pre) : v.pre_patterns;
  json vocab = json::object(), added = json::array();
  int64_t duplicates = 0;
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    const std::string& t = v.tokens[i];
    if (vocab.contains(t)) {
      ++duplicates;  // a JSON object holds one id per text; the first wins, as Vocab::find does
    } else {
      vocab[t] = int64_t(i);
    }
    const TokenType ty = v.types[i];
    if (ty == TokenType::kControl || ty == TokenType::kUserDefined) {
      added.push_back({{"id", int64_t(i)},
                       {"content", t},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", ty == TokenType::kUserDefined},
                       {"special", ty == TokenType::kControl}});
    }
  }
  json pre = json::array();
  for (const auto& p : patterns) {
    pre.push_back({{"type", "Split"}, {"pattern", {{"Regex", p}}}, {"behavior", "Isolated"}, {"invert", false}});
  }
  pre.push_back({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}});
  json post = nullptr;
  if (v.add_bos && v.bos >= 0) {
    const std::string bos = v.tokens[size_t(v.bos)];
    post = {{"type", "TemplateProcessing"},
            {"single", {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
            {"pair",
             {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}},
              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
              {{"SpecialToken", {{"id", bos}, {"type_id", 1}}}},
              {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
            {"special_tokens", {{bos, {{"id", bos}, {"ids", {v.bos}}, {"tokens", {bos}}}}}}};
  }
  const json tj = {{"version", "1.0"},
                   {"truncation", nullptr},
                   {"padding", nullptr},
                   {"added_tokens", added},
                   {"normalizer", nullptr},
                   {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", pre}}},
                   {"post_processor", post},
                   {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
                   {"model",
                    {{"type", "BPE"},
                     {"dropout", nullptr},
                     {"unk_token", nullptr},
                     {"continuing_subword_prefix", nullptr},
                     {"end_of_word_suffix", nullptr},
                     {"fuse_unk", false},
                     {"byte_fallback", false},
                     {"ignore_merges", v.ignore_merges},
                     {"vocab", vocab},
                     {"merges", v.merges}}}};
  json cfg = {{"add_bos_token", v.add_bos},
              {"add_eos_token", false},
              {"clean_up_tokenization_spaces", false},
              {"tokenizer_class", "PreTrainedTokenizerFast"}};
  const std::pair<const char*, int32_t> named[] = {
      {"bos_token", v.bos}, {"eos_token", v.eos}, {"unk_token", v.unk}, {"pad_token", v.pad}};
  for (const auto& [key, id] : named) {
    if (id >= 0) cfg[key] = v.tokens[size_t(id)];
  }
  if (in.model->config.n_ctx_train > 0) cfg["model_max_length"] = in.model->config.n_ctx_train;
  if (const auto it = m.find("tokenizer.chat_template"); it != m.end() && it->is_string()) cfg["chat_template"] = *it;
  for (const auto& [name, j] : {std::pair<const char*, const json&>{"tokenizer.json", tj}, {"tokenizer_config.json", cfg}}) {
    std::ofstream f(fs::path(dir) / name);
    f << j.dump(2) << "\n";
    if (!f) fail("{}: write failed", (fs::path(dir) / name).string());
  }
  if (duplicates > 0) {
    return fmt::format("{} duplicate token texts in the GGUF vocabulary keep only their first id in tokenizer.json",
                       duplicates);
  }
  return std::nullopt;
}

std::vector<std::string> copy_hf_aux_files(const std::string& in_dir, const std::string& dir) {
  std::vector<std::string> copied;
  for (const auto& e : fs::directory_iterator(in_dir)) {
    if (!e.is_regular_file()) continue;
    const std::string n = e.path().filename().string();
    if (n.ends_with(".safetensors") || n == "model.safetensors.index.json" || n == "config.json" ||
        n == "hf_quant_config.json" || n.ends_with(".bin") || n.ends_with(".pt") || n.ends_with(".gguf")) {
      continue;
    }
    fs::copy_file(e.path(), fs::path(dir) / n, fs::copy_options::overwrite_existing);
    copied.push_back(n);
  }
  return copied;
}

}  // namespace imp
