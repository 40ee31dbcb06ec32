// `imp inspect FILE_OR_FOLDER [--json] [--full]`: what a model file holds, without reading
// its tensor data — container, quant scheme, architecture hyper-parameters, tokenizer
// summary, metadata, and a tensor table (name, shape, format, bytes, bits/weight) with
// totals per format. Works on anything open_model_file opens (GGUF, safetensors folders).
//
// --json prints one object: path, container, quant_scheme, config, tokenizer, metadata,
// tensors, totals, warnings and, for GGUF files, "gguf": {version, alignment, types:
// {key: "UINT32" | "ARRAY[STRING]" …}}. Metadata arrays longer than 256 entries (token
// lists, merges) are summarized as {"array": n, "head": [first 8]} unless --full.
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>

#include "common/error.h"
#include "io/gguf_reader.h"
#include "io/mapped_file.h"
#include "io/model_file.h"
#include "tools/commands.h"

namespace imp {
namespace {

constexpr size_t kMaxArray = 256;
constexpr size_t kArrayHead = 8;

nlohmann::json summarize_arrays(const nlohmann::json& j) {
  if (j.is_array() && j.size() > kMaxArray) {
    nlohmann::json head = nlohmann::json::array();
    for (size_t k = 0; k < kArrayHead; ++k) head.push_back(j[k]);
    return {{"array", j.size()}, {"head", head}};
  }
  if (j.is_object()) {
    nlohmann::json o = nlohmann::json::object();
    for (auto it = j.begin(); it != j.end(); ++it) o[it.key()] = summarize_arrays(it.value());
    return o;
  }
  return j;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t k = 0; k < shape.size(); ++k) s += fmt::format("{}{}", k ? ", " : "", shape[k]);
  return s + "]";
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return u ? fmt::format("{:.2f} {}", b, units[u]) : fmt::format("{} B", int64_t(b));
}

// A metadata value on one line for the text view.
std::string short_value(const nlohmann::json& v) {
  if (v.is_array()) {
    std::string s = fmt::format("[{} entries", v.size());
    if (!v.empty()) s += ": " + v[0].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + (v.size() > 1 ? ", …" : "");
    return s + "]";
  }
  std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (s.size() > 100) s = s.substr(0, 97) + "...";
  return s;
}

nlohmann::json gguf_details(const std::string& path) {
  const MappedFile map(path);
  const GgufFile g = parse_gguf(map.bytes(), path);
  nlohmann::json types = nlohmann::json::object();
  for (const auto& [key, value] : g.kv) types[key] = value.type_string();
  return {{"version", g.version}, {"alignment", g.alignment}, {"types", types}};
}

nlohmann::json config_json(const ModelConfig& c) {
  return {{"architecture", c.architecture},
          {"name", c.name},
          {"n_vocab", c.n_vocab},
          {"n_ctx_train", c.n_ctx_train},
          {"n_embd", c.n_embd},
          {"n_layer", c.n_layer},
          {"n_ff", c.n_ff},
          {"n_head", c.n_head},
          {"n_head_kv", c.n_head_kv},
          {"head_dim", c.head_dim},
          {"rms_norm_eps", c.rms_norm_eps},
          {"rope_theta", c.rope_theta},
          {"rope_scaling",
           {{"type", c.rope_scaling.type},
            {"factor", c.rope_scaling.factor},
            {"original_context", c.rope_scaling.original_context},
            {"low_freq_factor", c.rope_scaling.low_freq_factor},
            {"high_freq_factor", c.rope_scaling.high_freq_factor}}},
          {"sliding_window", c.sliding_window},
          {"n_expert", c.n_expert},
          {"n_expert_used", c.n_expert_used},
          {"tie_word_embeddings", c.tie_word_embeddings}};
}

nlohmann::json tokenizer_json(const TokenizerInfo& t) {
  auto id = [](const std::optional<int64_t>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  return {{"model", t.model},       {"pre", t.pre},           {"n_tokens", t.n_tokens},
          {"n_merges", t.n_merges}, {"bos_id", id(t.bos_id)}, {"eos_id", id(t.eos_id)},
          {"unk_id", id(t.unk_id)}, {"pad_id", id(t.pad_id)}, {"eot_id", id(t.eot_id)},
          {"add_bos", t.add_bos},   {"has_chat_template", t.has_chat_template}, {"source", t.source}};
}

struct Totals {
  int64_t tensors = 0, elements = 0, bytes = 0;
  double bpw() const { return elements ? 8.0 * double(bytes) / double(elements) : 0.0; }
};

void print_text(const ModelFile& m, const nlohmann::json& gguf) {
  const auto& c = m.config;
  const auto& t = m.tokenizer;
  fmt::print("file          {}\n", m.path);
  fmt::print("container     {}{}\n", m.container,
             gguf.is_null() ? "" : fmt::format(" (alignment {})", gguf["alignment"].get<uint32_t>()));
  fmt::print("quant scheme  {}\n", m.quant_scheme);
  fmt::print("architecture  {}{}\n", c.architecture.empty() ? "(none)" : c.architecture,
             c.name.empty() ? "" : fmt::format(" — {}", c.name));
  fmt::print("hyper-params  vocab {}  ctx {}  embd {}  layers {}  ff {}  heads {}/{} kv  head_dim {}\n", c.n_vocab,
             c.n_ctx_train, c.n_embd, c.n_layer, c.n_ff, c.n_head, c.n_head_kv, c.head_dim);
  fmt::print("              rms_eps {:g}  rope_theta {:g}{}{}{}{}\n", c.rms_norm_eps, c.rope_theta,
             c.rope_scaling.type.empty() ? "" : fmt::format("  rope_scaling {} ×{:g} (orig ctx {})",
                                                            c.rope_scaling.type, c.rope_scaling.factor,
                                                            c.rope_scaling.original_context),
             c.sliding_window ? fmt::format("  sliding_window {}", c.sliding_window) : "",
             c.n_expert ? fmt::format("  experts {} (used {})", c.n_expert, c.n_expert_used) : "",
             c.tie_word_embeddings ? "  tied embeddings" : "");
  auto id = [](const std::optional<int64_t>& v) { return v ? fmt::format("{}", *v) : std::string("-"); };
  fmt::print("tokenizer     {}{}  {} tokens  {} merges  bos {}  eos {}  unk {}  pad {}  eot {}  add_bos {}  chat "
             "template {}\n",
             t.model.empty() ? "(none)" : t.model, t.pre.empty() ? "" : fmt::format(" (pre {})", t.pre), t.n_tokens,
             t.n_merges, id(t.bos_id), id(t.eos_id), id(t.unk_id), id(t.pad_id), id(t.eot_id),
             t.add_bos ? "yes" : "no", t.has_chat_template ? "yes" : "no");
  fmt::print("\nmetadata ({} keys)\n", m.metadata.size());
  for (auto it = m.metadata.begin(); it != m.metadata.end(); ++it) {
    const std::string type = gguf.is_null() ? "" : gguf["types"].value(it.key(), "");
    fmt::print("  {:<44} {:<14} {}\n", it.key(), type, short_value(it.value()));
  }
  size_t w = 6;
  for (const auto& s : m.tensors) w = std::max(w, s.name.size());
  fmt::print("\n{:<{}}  {:<22} {:<12} {:>14} {:>8}\n", "tensor", w, "shape", "format", "bytes", "bits/w");
  Totals all;
  std::map<std::string, Totals> by_format;
  for (const auto& s : m.tensors) {
    fmt::print("{:<{}}  {:<22} {:<12} {:>14} {:>8.4g}{}\n", s.name, w, shape_string(s.shape), format_name(s.format),
               s.bytes(), s.bits_per_weight(), s.note.empty() ? "" : "  " + s.note);
    for (Totals* x : {&all, &by_format[std::string(format_name(s.format))]}) {
      x->tensors += 1;
      x->elements += s.elements();
      x->bytes += s.bytes();
    }
  }
  fmt::print("\ntotal: {} tensors, {} weights, {} ({} bytes), {:.4g} bits/weight\n", all.tensors, all.elements,
             human_bytes(double(all.bytes)), all.bytes, all.bpw());
  for (const auto& [name, x] : by_format) {
    fmt::print("  {:<12} {:>6} tensors {:>16} weights {:>12} {:>8.4g} bits/w\n", name, x.tensors, x.elements,
               human_bytes(double(x.bytes)), x.bpw());
  }
  for (const auto& warning : m.warnings) fmt::print("warning: {}\n", warning);
}

void print_json(const ModelFile& m, const nlohmann::json& gguf, bool full) {
  nlohmann::json tensors = nlohmann::json::array();
  Totals all;
  std::map<std::string, Totals> by_format;
  for (const auto& s : m.tensors) {
    tensors.push_back({{"name", s.name},
                       {"shape", s.shape},
                       {"format", format_name(s.format)},
                       {"bytes", s.bytes()},
                       {"bits_per_weight", s.bits_per_weight()},
                       {"tensor_scale", s.tensor_scale},
                       {"file", s.file},
                       {"note", s.note}});
    for (Totals* x : {&all, &by_format[std::string(format_name(s.format))]}) {
      x->tensors += 1;
      x->elements += s.elements();
      x->bytes += s.bytes();
    }
  }
  auto totals_json = [](const Totals& x) {
    return nlohmann::json{{"tensors", x.tensors}, {"elements", x.elements}, {"bytes", x.bytes},
                          {"bits_per_weight", x.bpw()}};
  };
  nlohmann::json formats = nlohmann::json::object();
  for (const auto& [name, x] : by_format) formats[name] = totals_json(x);
  nlohmann::json totals = totals_json(all);
  totals["by_format"] = formats;
  nlohmann::json out = {{"path", m.path},
                        {"container", m.container},
                        {"quant_scheme", m.quant_scheme},
                        {"config", config_json(m.config)},
                        {"tokenizer", tokenizer_json(m.tokenizer)},
                        {"metadata", full ? m.metadata : summarize_arrays(m.metadata)},
                        {"tensors", tensors},
                        {"totals", totals},
                        {"warnings", m.warnings}};
  if (!gguf.is_null()) out["gguf"] = gguf;
  // Metadata strings are not guaranteed to be UTF-8; replace bad bytes rather than fail.
  fmt::print("{}\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
}

void run_inspect(const std::string& path, bool json, bool full) {
  const auto m = open_model_file(path);
  const nlohmann::json gguf = m->container.rfind("gguf", 0) == 0 ? gguf_details(m->path) : nlohmann::json();
  if (json) {
    print_json(*m, gguf, full);
  } else {
    print_text(*m, gguf);
  }
}

}  // namespace

void register_inspect_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Show what a model file holds (GGUF file or safetensors folder)");
  static std::string path;
  static bool json = false, full = false;
  cmd->add_option("FILE_OR_FOLDER", path, "a .gguf file, a .safetensors file or a Hugging Face folder")->required();
  cmd->add_flag("--json", json, "machine-readable output");
  cmd->add_flag("--full", full, "with --json: print long metadata arrays (token lists, merges) in full");
  cmd->callback([] { run_inspect(path, json, full); });
}

}  // namespace imp
