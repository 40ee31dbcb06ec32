#include "io/hf_config.h"

#include <fnmatch.h>

#include <algorithm>
#include <filesystem>

#include "common/bounded_regex.h"
#include "common/error.h"
#include "io/mapped_file.h"
#include "io/safetensors_reader.h"

namespace imp {
namespace {

using json = nlohmann::json;

const json* member(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  const auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

int64_t get_int(const json& j, const char* key, std::optional<int64_t> def, const std::string& file,
                bool positive = true) {
  const json* v = member(j, key);
  if (!v) {
    if (def) return *def;
    fail("{}: missing '{}'", file, key);
  }
  if (!v->is_number_integer()) fail("{}: '{}' must be an integer, got {}", file, key, v->dump());
  const int64_t x = v->get<int64_t>();
  if (positive ? x <= 0 : x < 0) fail("{}: '{}' must be {}, got {}", file, key, positive ? "positive" : "non-negative", x);
  return x;
}

double get_num(const json& j, const char* key, double def, const std::string& file) {
  const json* v = member(j, key);
  if (!v) return def;
  if (!v->is_number()) fail("{}: '{}' must be a number, got {}", file, key, v->dump());
  return v->get<double>();
}

bool get_bool(const json& j, const char* key, bool def, const std::string& file) {
  const json* v = member(j, key);
  if (!v) return def;
  if (!v->is_boolean()) fail("{}: '{}' must be true or false, got {}", file, key, v->dump());
  return v->get<bool>();
}

std::string get_str(const json& j, const char* key, const std::string& def, const std::string& file) {
  const json* v = member(j, key);
  if (!v) return def;
  if (!v->is_string()) fail("{}: '{}' must be a string, got {}", file, key, v->dump());
  return v->get<std::string>();
}

std::vector<std::string> get_str_list(const json& j, const char* key, const std::string& file) {
  std::vector<std::string> out;
  const json* v = member(j, key);
  if (!v) return out;
  if (!v->is_array()) fail("{}: '{}' must be a list of strings", file, key);
  for (const auto& e : *v) {
    if (!e.is_string()) fail("{}: '{}' must be a list of strings, found {}", file, key, e.dump());
    out.push_back(e.get<std::string>());
  }
  return out;
}

// First key of `keys` present in j (integer), else def.
int64_t get_int_any(const json& j, std::initializer_list<const char*> keys, int64_t def, const std::string& file) {
  for (const char* k : keys) {
    if (member(j, k)) return get_int(j, k, std::nullopt, file, false);
  }
  return def;
}

}  // namespace

ModelConfig parse_hf_config(const json& config, const std::string& file) {
  if (!config.is_object()) fail("{}: not a JSON object", file);
  ModelConfig c;
  const std::string model_type = get_str(config, "model_type", "", file);
  if (model_type.empty()) fail("{}: missing 'model_type'", file);
  // Multimodal wrappers (gemma3) keep the language model's hyper-parameters in text_config.
  const json* tc = member(config, "text_config");
  if (tc && !tc->is_object()) fail("{}: 'text_config' must be an object", file);
  const json& t = tc ? *tc : config;
  const std::string tfile = tc ? file + " text_config" : file;

  bool tie_default = false;
  if (model_type == "llama") {
    c.architecture = "llama";
  } else if (model_type == "mistral") {
    c.architecture = "mistral";
  } else if (model_type == "qwen2") {
    c.architecture = "qwen2";
  } else if (model_type == "qwen3") {
    c.architecture = "qwen3";
  } else if (model_type == "gemma3" || model_type == "gemma3_text") {
    c.architecture = "gemma3";
    tie_default = true;  // Gemma3TextConfig inherits PretrainedConfig's default
  } else if (model_type == "gpt_oss") {
    c.architecture = "gpt-oss";
  } else {
    fail("{}: model_type '{}' is not supported (llama, mistral, qwen2, qwen3, gemma3, gpt_oss)", file, model_type);
  }
  c.name = get_str(config, "_name_or_path", "", file);
  c.n_embd = get_int(t, "hidden_size", std::nullopt, tfile);
  c.n_layer = get_int(t, "num_hidden_layers", std::nullopt, tfile);
  c.n_head = get_int(t, "num_attention_heads", std::nullopt, tfile);
  c.n_head_kv = get_int(t, "num_key_value_heads", c.n_head, tfile);
  c.n_ff = get_int(t, "intermediate_size", std::nullopt, tfile);
  c.n_vocab = member(t, "vocab_size") ? get_int(t, "vocab_size", std::nullopt, tfile)
                                      : get_int(config, "vocab_size", std::nullopt, file);
  c.n_ctx_train = get_int(t, "max_position_embeddings", int64_t(0), tfile, false);
  if (member(t, "head_dim")) {
    c.head_dim = get_int(t, "head_dim", std::nullopt, tfile);
  } else {
    if (c.n_embd % c.n_head != 0) {
      fail("{}: hidden_size {} is not a multiple of num_attention_heads {} and no head_dim is given", tfile, c.n_embd,
           c.n_head);
    }
    c.head_dim = c.n_embd / c.n_head;
  }
  if (c.n_head % c.n_head_kv != 0) {
    fail("{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", tfile, c.n_head, c.n_head_kv);
  }
  c.rms_norm_eps = float(get_num(t, "rms_norm_eps", 1e-6, tfile));
  c.rope_theta = float(get_num(t, "rope_theta", c.architecture == "gemma3" ? 1e6 : 1e4, tfile));
  // transformers ≥ 5 writes rope_parameters {rope_theta, rope_type, factor …} instead of
  // rope_theta + rope_scaling (gemma3: one such object per layer type; not read here).
  const json* rp = member(t, "rope_parameters");
  if (rp && rp->is_object() && rp->contains("rope_theta") && !member(t, "rope_theta")) {
    c.rope_theta = float(get_num(*rp, "rope_theta", 1e4, tfile));
  }
  if (const json* rs = member(t, "rope_scaling") ? member(t, "rope_scaling")
                       : rp && rp->is_object() && rp->contains("rope_type") ? rp : nullptr) {
    if (!rs->is_object()) fail("{}: 'rope_scaling' must be an object or null", tfile);
    std::string type = get_str(*rs, "rope_type", "", tfile);
    if (type.empty()) type = get_str(*rs, "type", "", tfile);
    if (type != "default") c.rope_scaling.type = type;
    c.rope_scaling.factor = float(get_num(*rs, "factor", 1.0, tfile));
    c.rope_scaling.original_context = get_int(*rs, "original_max_position_embeddings", int64_t(0), tfile, false);
    c.rope_scaling.low_freq_factor = float(get_num(*rs, "low_freq_factor", 1.0, tfile));
    c.rope_scaling.high_freq_factor = float(get_num(*rs, "high_freq_factor", 4.0, tfile));
    if (!(c.rope_scaling.factor > 0.0f)) fail("{}: rope_scaling factor must be positive", tfile);
  }
  const bool uses_window = c.architecture == "qwen2" || c.architecture == "qwen3"
                               ? get_bool(t, "use_sliding_window", false, tfile)
                               : true;
  if (uses_window) c.sliding_window = get_int(t, "sliding_window", int64_t(0), tfile, false);
  c.n_expert = get_int_any(t, {"num_local_experts", "num_experts", "n_routed_experts"}, 0, tfile);
  c.n_expert_used = get_int_any(t, {"num_experts_per_tok", "experts_per_token"}, 0, tfile);
  c.tie_word_embeddings = member(t, "tie_word_embeddings") ? get_bool(t, "tie_word_embeddings", false, tfile)
                                                           : get_bool(config, "tie_word_embeddings", tie_default, file);
  return c;
}

QuantConfig parse_quant_config(const json& config, const json& hfq, const std::string& file) {
  QuantConfig q;
  if (hfq.is_object()) {
    const std::string hfile = "hf_quant_config.json";
    const json* prod = member(hfq, "producer");
    const std::string producer = prod ? get_str(*prod, "name", "", hfile) : "";
    if (producer != "modelopt") fail("{}: producer '{}' is not modelopt", hfile, producer);
    const json* quant = member(hfq, "quantization");
    if (!quant || !quant->is_object()) fail("{}: missing 'quantization' object", hfile);
    q.method = QuantMethod::kModelOpt;
    q.algo = get_str(*quant, "quant_algo", "", hfile);
    q.group_size = int32_t(get_int(*quant, "group_size", int64_t(0), hfile, false));
    q.excluded = get_str_list(*quant, "exclude_modules", hfile);
  }
  const json* qc = member(config, "quantization_config");
  if (!qc) {
    if (q.method == QuantMethod::kModelOpt) {
      if (q.algo.empty()) fail("hf_quant_config.json: missing quant_algo");
      std::string a = q.algo;
      std::transform(a.begin(), a.end(), a.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
      q.label = "modelopt " + a;
    } else {
      q.label = "none";
    }
    return q;
  }
  if (!qc->is_object()) fail("{}: 'quantization_config' must be an object", file);
  const std::string qfile = file + " quantization_config";
  const std::string m = get_str(*qc, "quant_method", "", qfile);
  if (m == "modelopt") {
    q.method = QuantMethod::kModelOpt;
    if (q.algo.empty()) q.algo = get_str(*qc, "quant_algo", "", qfile);
    if (!q.group_size) q.group_size = int32_t(get_int(*qc, "group_size", int64_t(0), qfile, false));
    for (const char* key : {"ignore", "exclude_modules"}) {
      for (auto& s : get_str_list(*qc, key, qfile)) q.excluded.push_back(s);
    }
    if (q.algo.empty()) fail("{}: missing quant_algo", qfile);
    std::string a = q.algo;
    std::transform(a.begin(), a.end(), a.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
    q.label = "modelopt " + a;
  } else if (m == "compressed-tensors") {
    q.method = QuantMethod::kCompressedTensors;
    q.algo = get_str(*qc, "format", "", qfile);
    q.excluded = get_str_list(*qc, "ignore", qfile);
    int64_t num_bits = 0;
    std::string type;
    if (const json* groups = member(*qc, "config_groups")) {
      if (!groups->is_object()) fail("{}: 'config_groups' must be an object", qfile);
      for (const auto& [gname, g] : groups->items()) {
        const json* w = member(g, "weights");
        if (!w) continue;
        const std::string gfile = qfile + " config_groups." + gname + ".weights";
        num_bits = get_int(*w, "num_bits", int64_t(0), gfile, false);
        type = get_str(*w, "type", "", gfile);
        q.weight_strategy = get_str(*w, "strategy", "", gfile);
        q.group_size = int32_t(get_int(*w, "group_size", int64_t(0), gfile, false));
        if (const json* bs = member(*w, "block_structure")) {
          if (!bs->is_array() || bs->size() != 2 || !(*bs)[0].is_number_integer() || !(*bs)[1].is_number_integer()) {
            fail("{}: block_structure must be [rows, cols]", gfile);
          }
          q.block_rows = (*bs)[0].get<int32_t>();
          q.block_cols = (*bs)[1].get<int32_t>();
        }
        if (const json* ia = member(g, "input_activations")) {
          // "dynamic" is a bool, or a string ("local": per-block dynamic with a static global scale).
          const json* d = member(*ia, "dynamic");
          q.dynamic_activations = d && (d->is_string() || (d->is_boolean() && d->get<bool>()));
        }
        break;  // the first group names the scheme; tensors are decoded by their own companions
      }
    }
    if (q.algo == "nvfp4-pack-quantized") {
      q.label = "compressed-tensors nvfp4";
    } else if (type == "float" && num_bits == 8) {
      q.label = "compressed-tensors fp8 " + q.weight_strategy;
    } else if (type == "int" && num_bits == 8) {
      q.label = "compressed-tensors int8 " + q.weight_strategy;
    } else {
      q.label = "compressed-tensors " + q.algo;
    }
  } else if (m == "quark") {
    q.method = QuantMethod::kQuark;
    q.excluded = get_str_list(*qc, "exclude", qfile);
    std::string dtype;
    if (const json* g = member(*qc, "global_quant_config")) {
      if (const json* w = member(*g, "weight")) {
        dtype = get_str(*w, "dtype", "", qfile);
        q.group_size = int32_t(get_int(*w, "group_size", int64_t(0), qfile, false));
      }
    }
    q.algo = dtype;
    q.label = dtype == "fp4" ? "quark nvfp4" : "quark " + dtype;
  } else if (m == "fp8") {
    q.method = QuantMethod::kFp8;
    q.dynamic_activations = get_str(*qc, "activation_scheme", "dynamic", qfile) == "dynamic";
    if (const json* bs = member(*qc, "weight_block_size")) {
      if (!bs->is_array() || bs->size() != 2 || !(*bs)[0].is_number_integer() || !(*bs)[1].is_number_integer()) {
        fail("{}: weight_block_size must be [rows, cols]", qfile);
      }
      q.block_rows = (*bs)[0].get<int32_t>();
      q.block_cols = (*bs)[1].get<int32_t>();
      q.weight_strategy = "block";
      q.label = fmt::format("fp8 block {}x{}", q.block_rows, q.block_cols);
    } else {
      q.weight_strategy = "tensor";
      q.label = "fp8 per-tensor";
    }
    q.excluded = get_str_list(*qc, "modules_to_not_convert", qfile);
  } else if (m == "gptq") {
    q.method = QuantMethod::kGptq;
    q.bits = int32_t(get_int(*qc, "bits", std::nullopt, qfile));
    const int64_t g = member(*qc, "group_size") && (*qc)["group_size"].is_number_integer() &&
                              (*qc)["group_size"].get<int64_t>() == -1
                          ? 0
                          : get_int(*qc, "group_size", int64_t(128), qfile);
    q.group_size = int32_t(g);
    q.desc_act = get_bool(*qc, "desc_act", false, qfile);
    q.sym = get_bool(*qc, "sym", true, qfile);
    const std::string fmt_ = get_str(*qc, "checkpoint_format", "gptq", qfile);
    if (fmt_ == "gptq") {
      q.gptq_version = 1;
    } else if (fmt_ == "gptq_v2") {
      q.gptq_version = 2;
    } else {
      fail("{}: GPTQ checkpoint_format '{}' is not supported (gptq, gptq_v2)", qfile, fmt_);
    }
    if (q.bits != 4) fail("{}: GPTQ with {} bits is not supported (4 only)", qfile, q.bits);
    q.label = fmt::format("gptq v{} {}-bit {}{}", q.gptq_version, q.bits,
                          q.group_size ? "g" + std::to_string(q.group_size) : std::string("per-row"),
                          q.desc_act ? " act-order" : "");
    q.excluded = get_str_list(*qc, "modules_to_not_convert", qfile);
  } else if (m == "awq") {
    q.method = QuantMethod::kAwq;
    q.bits = int32_t(get_int_any(*qc, {"bits", "w_bit"}, 4, qfile));
    q.group_size = int32_t(get_int_any(*qc, {"group_size", "q_group_size"}, 128, qfile));
    const std::string v = get_str(*qc, "version", "gemm", qfile);
    if (v != "gemm" && v != "GEMM") fail("{}: AWQ version '{}' is not supported (gemm only)", qfile, v);
    if (q.bits != 4) fail("{}: AWQ with {} bits is not supported (4 only)", qfile, q.bits);
    if (!get_bool(*qc, "zero_point", true, qfile)) fail("{}: AWQ without zero points is not supported", qfile);
    q.label = fmt::format("awq gemm {}-bit g{}", q.bits, q.group_size);
    q.excluded = get_str_list(*qc, "modules_to_not_convert", qfile);
  } else if (m == "mxfp4") {
    q.method = QuantMethod::kMxfp4;
    q.label = "mxfp4 (gpt-oss)";
    q.excluded = get_str_list(*qc, "modules_to_not_convert", qfile);
  } else if (m == "bitsandbytes") {
    q.method = QuantMethod::kBitsAndBytes;
    if (!get_bool(*qc, "load_in_4bit", false, qfile)) fail("{}: bitsandbytes 8-bit is not supported (4-bit nf4 only)", qfile);
    q.bnb_quant_type = get_str(*qc, "bnb_4bit_quant_type", "fp4", qfile);
    if (q.bnb_quant_type != "nf4") fail("{}: bitsandbytes quant type '{}' is not supported (nf4 only)", qfile, q.bnb_quant_type);
    q.label = "bitsandbytes nf4";
    q.excluded = get_str_list(*qc, "llm_int8_skip_modules", qfile);
  } else {
    fail("{}: quant_method '{}' is not supported", qfile, m);
  }
  return q;
}

std::string excluded_by(const QuantConfig& q, const std::string& module) {
  for (const auto& p : q.excluded) {
    if (p.rfind("re:", 0) == 0) {
      // compressed-tensors matches "re:" patterns with Python's re.match (anchored at the
      // start); BoundedRegex caps the work a hostile pattern can cause.
      if (BoundedRegex(std::string_view(p).substr(3), "quantization ignore pattern").matches(module, true)) return p;
    } else if (p == module || fnmatch(p.c_str(), module.c_str(), 0) == 0) {
      return p;
    }
  }
  return "";
}

namespace {

std::optional<json> read_json_file(const std::filesystem::path& p) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(p, ec)) return std::nullopt;
  const MappedFile f(p.string());
  const auto b = f.bytes();
  return parse_json_strict(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()), p.string());
}

// A special token in tokenizer_config.json: a string or {"content": …}.
std::string token_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return "";
}

}  // namespace

TokenizerInfo read_tokenizer_info(const std::string& dir, const json& config) {
  namespace fs = std::filesystem;
  TokenizerInfo info;
  std::map<std::string, int64_t> ids;  // token text → id, for the special tokens
  std::error_code ec;
  if (auto tj = read_json_file(fs::path(dir) / "tokenizer.json")) {
    const std::string file = (fs::path(dir) / "tokenizer.json").string();
    info.source = "tokenizer.json";
    const json* model = member(*tj, "model");
    if (!model || !model->is_object()) fail("{}: missing 'model' object", file);
    const std::string type = get_str(*model, "type", "", file);
    if (type == "BPE") {
      // SentencePiece models converted to tokenizer.json keep byte_fallback; byte-level BPE does not.
      info.model = get_bool(*model, "byte_fallback", false, file) ? "llama" : "gpt2";
      if (const json* merges = member(*model, "merges")) {
        if (!merges->is_array()) fail("{}: model.merges must be a list", file);
        info.n_merges = int64_t(merges->size());
      }
    } else if (type == "Unigram") {
      info.model = "t5";
    } else if (type == "WordPiece") {
      info.model = "bert";
    } else {
      fail("{}: tokenizer model type '{}' is not supported", file, type);
    }
    int64_t max_id = -1;
    auto note_id = [&](const std::string& text, const json& idv) {
      if (!idv.is_number_integer() || idv.get<int64_t>() < 0) fail("{}: token '{}' has a bad id {}", file, text, idv.dump());
      max_id = std::max(max_id, idv.get<int64_t>());
      ids[text] = idv.get<int64_t>();
    };
    if (const json* vocab = member(*model, "vocab")) {
      if (vocab->is_object()) {
        for (const auto& [text, idv] : vocab->items()) note_id(text, idv);
      } else if (vocab->is_array()) {  // Unigram: [[piece, score], …], id = position
        max_id = int64_t(vocab->size()) - 1;
      } else {
        fail("{}: model.vocab must be an object or a list", file);
      }
    }
    if (const json* added = member(*tj, "added_tokens")) {
      if (!added->is_array()) fail("{}: added_tokens must be a list", file);
      for (const auto& a : *added) {
        if (!a.is_object() || !a.contains("id") || !a.contains("content") || !a["content"].is_string()) {
          fail("{}: added_tokens entry {} lacks id/content", file, a.dump());
        }
        note_id(a["content"].get<std::string>(), a["id"]);
      }
    }
    info.n_tokens = max_id + 1;
  } else if (fs::is_regular_file(fs::path(dir) / "tokenizer.model", ec)) {
    info.model = "llama";  // SentencePiece protobuf; its vocabulary is read by the tokenizer itself
    info.source = "tokenizer.model";
  }
  if (auto tc = read_json_file(fs::path(dir) / "tokenizer_config.json")) {
    const std::string file = (fs::path(dir) / "tokenizer_config.json").string();
    if (const json* ct = member(*tc, "chat_template")) info.has_chat_template = ct->is_string() || ct->is_array();
    info.add_bos = get_bool(*tc, "add_bos_token", false, file);
    auto lookup = [&](const char* key) -> std::optional<int64_t> {
      const json* v = member(*tc, key);
      if (!v) return std::nullopt;
      const auto it = ids.find(token_text(*v));
      return it == ids.end() ? std::nullopt : std::optional<int64_t>(it->second);
    };
    info.bos_id = lookup("bos_token");
    info.eos_id = lookup("eos_token");
    info.unk_id = lookup("unk_token");
    info.pad_id = lookup("pad_token");
  }
  if (fs::is_regular_file(fs::path(dir) / "chat_template.jinja", ec)) info.has_chat_template = true;
  auto from_config = [&](const char* key) -> std::optional<int64_t> {
    const json* v = member(config, key);
    if (v && v->is_array() && !v->empty()) v = &(*v)[0];  // eos_token_id may be a list
    if (v && v->is_number_integer() && v->get<int64_t>() >= 0) return v->get<int64_t>();
    return std::nullopt;
  };
  if (!info.bos_id) info.bos_id = from_config("bos_token_id");
  if (!info.eos_id) info.eos_id = from_config("eos_token_id");
  if (!info.pad_id) info.pad_id = from_config("pad_token_id");
  return info;
}

}  // namespace imp
