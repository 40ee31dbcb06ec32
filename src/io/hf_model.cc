// open_hf_model: a Hugging Face folder (config.json, hf_quant_config.json, one or many
// .safetensors shards, tokenizer files) or a single .safetensors file → ModelFile.
//
// Each quantized module is recognised by its companion tensors (the config says which
// scheme's semantics apply where names coincide, e.g. ModelOpt vs Quark NVFP4) and handed
// to its scheme (io/schemes/*.cc), which checks dtypes and shapes and consumes the
// companions. Everything else is loaded at stored precision: F32/F16/BF16/F8 tensors
// become plain TensorSources (modules excluded from quantization carry a note naming the
// pattern); integer tensors nobody consumed are skipped with a warning, except packed
// weights without their scales, which are an error.
#include <filesystem>

#include "common/error.h"
#include "io/hf_config.h"
#include "io/model_file.h"
#include "io/safetensors_reader.h"
#include "io/schemes/scheme.h"

namespace imp {
namespace {

namespace fs = std::filesystem;

std::optional<nlohmann::json> read_json(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) return std::nullopt;
  const MappedFile f(p.string());
  const auto b = f.bytes();
  return parse_json_strict(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()), p.string());
}

bool ends_with(const std::string& s, std::string_view suffix) { return s.ends_with(suffix); }
std::string strip(const std::string& s, std::string_view suffix) { return s.substr(0, s.size() - suffix.size()); }

std::optional<FormatId> plain_format(StDtype d) {
  switch (d) {
    case StDtype::F32: return FormatId::F32;
    case StDtype::F16: return FormatId::F16;
    case StDtype::BF16: return FormatId::BF16;
    case StDtype::F8_E4M3: return FormatId::F8_E4M3;
    case StDtype::F8_E5M2: return FormatId::F8_E5M2;
    default: return std::nullopt;
  }
}

// Dispatches one anchor tensor to its scheme; returns false when `name` anchors nothing.
bool dispatch(SchemeContext& ctx, const std::string& name, const StTensor& t) {
  const QuantMethod m = ctx.quant.method;
  if (ends_with(name, ".weight_packed")) {
    const std::string mod = strip(name, ".weight_packed");
    if (!ctx.get(mod + ".weight_global_scale")) {
      fail_tensor(t, "packed weight without weight_global_scale: only compressed-tensors nvfp4-pack-quantized is supported");
    }
    load_compressed_tensors_nvfp4(ctx, mod);
    return true;
  }
  if (ends_with(name, ".qweight")) {
    const std::string mod = strip(name, ".qweight");
    if (m == QuantMethod::kGptq) {
      load_gptq(ctx, mod);
    } else if (m == QuantMethod::kAwq) {
      load_awq(ctx, mod);
    } else {
      fail_tensor(t, "qweight found but quantization_config names neither gptq nor awq");
    }
    return true;
  }
  if (ends_with(name, "_blocks") && ctx.get(strip(name, "_blocks") + "_scales")) {
    load_mxfp4(ctx, strip(name, "_blocks"));
    return true;
  }
  if (!ends_with(name, ".weight")) return false;
  const std::string mod = strip(name, ".weight");
  if (t.dtype == StDtype::U8 && ctx.get(mod + ".weight_scale_2")) {
    if (m == QuantMethod::kQuark) {
      load_quark_nvfp4(ctx, mod);
    } else {
      load_modelopt_nvfp4(ctx, mod);
    }
    return true;
  }
  if (t.dtype == StDtype::U8 && ctx.get(name + ".absmax")) {
    load_bnb_nf4(ctx, mod);
    return true;
  }
  const bool has_scale = ctx.get(mod + ".weight_scale") || ctx.get(mod + ".weight_scale_inv");
  if (has_scale && (t.dtype == StDtype::F8_E4M3 || t.dtype == StDtype::F8_E5M2)) {
    if (t.dtype == StDtype::F8_E5M2) fail_tensor(t, "scaled F8_E5M2 weights are not supported (E4M3 only)");
    load_fp8(ctx, mod);
    return true;
  }
  if (has_scale && t.dtype == StDtype::I8) {
    load_int8_channel(ctx, mod);
    return true;
  }
  if (has_scale && t.dtype == StDtype::U8) {
    fail_tensor(t, "U8 weight with weight_scale but no weight_scale_2: not an NVFP4 layout imp knows");
  }
  return false;
}

}  // namespace

std::unique_ptr<ModelFile> open_hf_model(const std::string& path) {
  auto mf = std::make_unique<ModelFile>();
  mf->path = path;
  std::error_code ec;
  const bool is_dir = fs::is_directory(path, ec);
  const fs::path dir = is_dir ? fs::path(path) : fs::path(path).parent_path();
  const fs::path config_path = (dir.empty() ? fs::path(".") : dir) / "config.json";
  auto config = read_json(config_path);
  if (!config && is_dir) fail("{}: no config.json in the folder", path);
  auto hfq = read_json(config_path.parent_path() / "hf_quant_config.json");

  StCollection st = open_safetensors(path);
  mf->container = st.container;
  const nlohmann::json cfg = config ? *config : nlohmann::json::object();
  if (config) {
    mf->config = parse_hf_config(cfg, config_path.string());
    mf->metadata = cfg;
  } else {
    mf->metadata = nlohmann::json::object();
  }
  if (hfq) mf->metadata["hf_quant_config"] = *hfq;
  const QuantConfig quant = parse_quant_config(cfg, hfq ? *hfq : nlohmann::json(), config_path.string());
  mf->quant_scheme = quant.label;
  mf->tokenizer = read_tokenizer_info((dir.empty() ? fs::path(".") : dir).string(), cfg);

  SchemeContext ctx{st, quant, *mf, {}};
  for (const auto& [name, t] : st.by_name) {
    if (ctx.consumed.count(name)) continue;
    const size_t before = mf->tensors.size();
    if (!dispatch(ctx, name, *t)) continue;
    for (size_t i = before; i < mf->tensors.size(); ++i) {
      std::string mod = mf->tensors[i].name;
      if (mod.ends_with(".weight")) mod = strip(mod, ".weight");
      const std::string pat = excluded_by(quant, mod);
      if (!pat.empty()) {
        mf->warnings.push_back(fmt::format("{}: excluded by '{}' but stored quantized; loaded as {}", mod, pat,
                                           format_name(mf->tensors[i].format)));
      }
    }
  }
  for (const auto& [name, t] : st.by_name) {
    if (ctx.consumed.count(name)) continue;
    const auto f = plain_format(t->dtype);
    if (!f) {
      if (quant.method != QuantMethod::kNone && name.ends_with(".weight")) {
        fail_tensor(*t, fmt::format("{} weight without the scale tensors of {}", st_dtype_name(t->dtype), quant.label));
      }
      mf->warnings.push_back(fmt::format("{}: {} tensor has no imp format; not loaded", name, st_dtype_name(t->dtype)));
      continue;
    }
    TensorSource s = ctx.source_for(*t, name, *f);
    if (quant.method != QuantMethod::kNone && name.ends_with(".weight")) {
      const std::string pat = excluded_by(quant, strip(name, ".weight"));
      if (!pat.empty()) s.note = fmt::format("excluded by '{}', stored precision", pat);
    }
    mf->tensors.push_back(std::move(s));
  }
  std::sort(mf->tensors.begin(), mf->tensors.end(),
            [](const TensorSource& a, const TensorSource& b) { return a.name < b.name; });
  for (size_t i = 1; i < mf->tensors.size(); ++i) {
    if (mf->tensors[i].name == mf->tensors[i - 1].name) {
      fail("{}: two tensors resolve to the name '{}' (a plain and a quantized copy?)", path, mf->tensors[i].name);
    }
  }
  warn_fused_scale_mismatch(*mf);
  for (auto& m : st.mappings) mf->mappings.push_back(std::move(m));
  return mf;
}

}  // namespace imp
