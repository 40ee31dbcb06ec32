// Vocab from a Hugging Face folder: tokenizer.json (model BPE, added_tokens, normalizer,
// pre_tokenizer) and tokenizer_config.json (add_bos_token, bos/eos token texts).
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "runtime/pretokenizer.h"
#include "runtime/vocab.h"

namespace imp {
namespace {

nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) fail("{}: cannot open", p.string());
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    return nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    fail("{}: invalid JSON: {}", p.string(), e.what());
  }
}

std::string regex_escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

bool mentions(const nlohmann::json& j, const char* type) {
  if (j.is_object()) {
    if (j.value("type", "") == type) return true;
    for (const auto& [k, x] : j.items()) if (mentions(x, type)) return true;
  } else if (j.is_array()) {
    for (const auto& x : j) if (mentions(x, type)) return true;
  }
  return false;
}

// Byte-level pre-tokenizer → regex list, in application order.
void collect_patterns(const nlohmann::json& p, std::vector<std::string>& out, const std::string& where) {
  if (p.is_null()) return;
  const std::string type = p.value("type", "");
  if (type == "Sequence") {
    for (const auto& x : p.at("pretokenizers")) collect_patterns(x, out, where);
  } else if (type == "Split") {
    const auto& pat = p.at("pattern");
    if (p.value("behavior", "") != "Isolated" || p.value("invert", false)) {
      fail("{}: Split pre-tokenizer with behavior {} is not supported", where, p.value("behavior", "?"));
    }
    out.push_back(pat.contains("Regex") ? pat["Regex"].get<std::string>() : regex_escape(pat.at("String").get<std::string>()));
  } else if (type == "Digits") {
    out.emplace_back(p.value("individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)");
  } else if (type == "ByteLevel") {
    if (p.value("use_regex", true)) out.push_back(pretokenizer_patterns("gpt2").front());
    if (p.value("add_prefix_space", false)) fail("{}: ByteLevel add_prefix_space is not supported", where);
  } else {
    fail("{}: pre-tokenizer {} is not supported for byte-level BPE", where, type);
  }
}

int32_t id_of(const Vocab& v, const nlohmann::json& cfg, const char* name) {
  const auto it = cfg.find(name);
  if (it == cfg.end()) return -1;
  std::string text;
  if (it->is_string()) text = it->get<std::string>();
  else if (it->is_object() && it->contains("content")) text = (*it)["content"].get<std::string>();
  return text.empty() ? -1 : v.find(text);
}

}  // namespace

Vocab vocab_from_hf_folder(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path tj = fs::path(dir) / "tokenizer.json";
  if (!fs::exists(tj)) fail("{}: no tokenizer.json: the model folder carries no tokenizer", dir);
  const nlohmann::json j = read_json(tj);
  const std::string where = tj.string();
  Vocab v;
  v.source = where;
  try {
    const auto& model = j.at("model");
    if (model.value("type", "BPE") != "BPE") fail("{}: tokenizer model {} is not supported (only BPE)", where, model.value("type", "?"));
    int64_t max_id = -1;
    for (const auto& [text, id] : model.at("vocab").items()) max_id = std::max(max_id, id.get<int64_t>());
    for (const auto& t : j.value("added_tokens", nlohmann::json::array())) max_id = std::max(max_id, t.at("id").get<int64_t>());
    if (max_id < 0 || max_id > INT32_MAX) fail("{}: empty or oversized vocabulary", where);
    v.tokens.assign(size_t(max_id) + 1, std::string());
    v.types.assign(v.tokens.size(), TokenType::kUnused);
    for (const auto& [text, id] : model.at("vocab").items()) {
      const auto i = id.get<int64_t>();
      if (i < 0) fail("{}: negative token id for '{}'", where, text);
      v.tokens[size_t(i)] = text;
      v.types[size_t(i)] = TokenType::kNormal;
    }
    for (const auto& t : j.value("added_tokens", nlohmann::json::array())) {
      const auto i = size_t(t.at("id").get<int64_t>());
      v.tokens[i] = t.at("content").get<std::string>();
      v.types[i] = t.value("special", false) ? TokenType::kControl : TokenType::kUserDefined;
    }
    for (const auto& m : model.value("merges", nlohmann::json::array())) {
      if (m.is_string()) v.merges.push_back(m.get<std::string>());
      else v.merges.push_back(m.at(0).get<std::string>() + " " + m.at(1).get<std::string>());
    }
    v.byte_fallback = model.value("byte_fallback", false);
    v.ignore_merges = model.value("ignore_merges", false);
    const auto& pre = j.contains("pre_tokenizer") ? j["pre_tokenizer"] : nlohmann::json();
    if (mentions(pre, "ByteLevel") || mentions(j.value("decoder", nlohmann::json()), "ByteLevel")) {
      v.model = "gpt2";
      v.pre = "tokenizer.json";
      collect_patterns(pre, v.pre_patterns, where);
    } else {
      v.model = "llama";
      for (size_t i = 0; i < v.tokens.size(); ++i) {
        if (v.types[i] == TokenType::kNormal && v.tokens[i].size() == 6 && v.tokens[i].rfind("<0x", 0) == 0) v.types[i] = TokenType::kByte;
      }
      const auto& norm = j.contains("normalizer") ? j["normalizer"] : nlohmann::json();
      v.add_space_prefix = mentions(norm, "Prepend") || (mentions(pre, "Metaspace") && pre.value("prepend_scheme", "always") != "never");
    }
  } catch (const nlohmann::json::exception& e) {
    fail("{}: unexpected tokenizer.json layout: {}", where, e.what());
  }
  v.build_index();
  const fs::path cp = fs::path(dir) / "tokenizer_config.json";
  if (fs::exists(cp)) {
    const nlohmann::json cfg = read_json(cp);
    v.add_bos = cfg.value("add_bos_token", false);
    v.bos = id_of(v, cfg, "bos_token");
    v.eos = id_of(v, cfg, "eos_token");
    v.unk = id_of(v, cfg, "unk_token");
    v.pad = id_of(v, cfg, "pad_token");
  }
  if (v.unk < 0 && j.contains("model") && j["model"].value("unk_token", nlohmann::json()).is_string()) {
    v.unk = v.find(j["model"]["unk_token"].get<std::string>());
  }
  return v;
}

}  // namespace imp
