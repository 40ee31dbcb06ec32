#include "quant/policy.h"

#include <algorithm>
#include <cctype>

#include "common/error.h"
#include "formats/traits.h"

namespace imp {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

bool plain(FormatId f) { return f == FormatId::F32 || f == FormatId::F16 || f == FormatId::BF16; }

const char* kStTypes = "nvfp4, fp8 (= fp8-tensor), fp8-channel, fp8-block, mxfp4, int4 (= gptq), f16, bf16, f32";

std::optional<std::string> match(const std::vector<BoundedRegex>& pats, const std::string& name) {
  for (const auto& re : pats) {
    if (re.matches(name, false)) return re.pattern();
  }
  return std::nullopt;
}

// llama.cpp's "quantize" predicate (llama_model_quantize_impl), for the tensors imp loads.
std::optional<std::string> gguf_not_quantized(const std::string& name, size_t ndims) {
  if (!name.ends_with("weight")) return "not a weight";
  if (ndims < 2) return "1-D";
  if (name.find("_norm.weight") != std::string::npos) return "norm";
  if (name.find("ffn_gate_inp.weight") != std::string::npos) return "MoE router";
  return std::nullopt;
}

std::optional<std::string> st_not_quantized(const std::string& name, size_t ndims) {
  if (ndims < 2) return "1-D";
  if (!name.ends_with(".weight")) return "not a weight";
  if (name.find("embed") != std::string::npos) return "embedding";  // embed_tokens, embed_positions
  if (name.find("lm_head") != std::string::npos) return "lm_head";
  if (name.find("norm") != std::string::npos) return "norm";
  if (name.ends_with(".mlp.gate.weight") || name.find("router") != std::string::npos) return "MoE router";
  return std::nullopt;
}

}  // namespace

QuantTarget parse_target(const std::string& type_in, const std::string& out_path, const std::string& layout,
                         bool pure) {
  QuantTarget t;
  t.type = lower(type_in);
  t.kind = lower(out_path).ends_with(".gguf") ? OutputKind::kGguf : OutputKind::kSafetensors;
  if (layout != "modelopt" && layout != "compressed-tensors") {
    fail("--layout must be modelopt or compressed-tensors, got '{}'", layout);
  }
  if (t.kind == OutputKind::kGguf) {
    t.mix = find_gguf_mix(t.type);
    if (!t.mix) fail("unknown --type '{}' for a GGUF output; known: {}", type_in, target_type_list());
    if (pure) t.mix->pure = true;
    return t;
  }
  if (pure) fail("--pure applies to GGUF outputs only");
  const std::string& s = t.type;
  if (s == "nvfp4") {
    t.scheme = StScheme::kNvfp4;
    t.format = FormatId::NVFP4_CKPT;
    t.compressed_tensors = layout == "compressed-tensors";
  } else if (s == "fp8" || s == "fp8-tensor") {
    t.scheme = StScheme::kFp8Tensor;
    t.format = FormatId::FP8_E4M3_TENSOR;
  } else if (s == "fp8-channel") {
    t.scheme = StScheme::kFp8Channel;
    t.format = FormatId::FP8_E4M3_CHANNEL;
  } else if (s == "fp8-block") {
    t.scheme = StScheme::kFp8Block;
    t.format = FormatId::FP8_E4M3_BLOCK128;
  } else if (s == "mxfp4") {
    t.scheme = StScheme::kMxfp4;
    t.format = FormatId::MXFP4_CKPT;
  } else if (s == "int4" || s == "gptq" || s == "int4-g128") {
    t.scheme = StScheme::kGptq;
    t.format = FormatId::INT4_GROUP;
    t.group = 128;
  } else if (s == "f32" || s == "f16" || s == "bf16") {
    t.scheme = StScheme::kPlain;
    t.format = *format_from_name(s);
  } else {
    fail("unknown --type '{}' for a safetensors folder output (OUT not ending in .gguf); known: {}", type_in, kStTypes);
  }
  if (t.compressed_tensors && t.scheme != StScheme::kNvfp4) fail("--layout compressed-tensors applies to nvfp4 only");
  return t;
}

std::string target_type_list() {
  std::string s = "GGUF (OUT.gguf): ";
  for (auto n : gguf_mix_names()) s += std::string(n) + " ";
  return s + "; safetensors (OUT folder): " + kStTypes;
}

Overrides Overrides::compile(const std::vector<std::string>& keep, const std::vector<std::string>& quantize) {
  Overrides o;
  auto add = [](auto& dst, const std::string& p, const char* flag) { dst.emplace_back(p, flag); };
  for (const auto& p : keep) add(o.keep, p, "--keep");
  for (const auto& p : quantize) add(o.quantize, p, "--quantize");
  return o;
}

GgufMixModel gguf_mix_model(const QuantInput& in) {
  GgufMixModel m;
  const ModelConfig& c = in.model->config;
  m.n_layer = c.n_layer;
  m.n_head = c.n_head;
  m.n_head_kv = c.n_head_kv > 0 ? c.n_head_kv : c.n_head;
  m.n_expert = c.n_expert;
  for (const auto& t : in.tensors) {
    const std::string& n = t.gguf_name;
    if (n.find("attn_v.weight") != std::string::npos || n.find("attn_qkv.weight") != std::string::npos) {
      ++m.n_attention_wv;
    }
    if (n == "output.weight") m.has_output = true;
    if (t.layer >= m.n_layer) m.n_layer = t.layer + 1;
  }
  return m;
}

std::vector<Decision> decide(const QuantInput& in, const QuantTarget& target, const Overrides& ov) {
  std::vector<Decision> out;
  const GgufMixModel model = gguf_mix_model(in);
  int i_wv = 0;
  for (const auto& t : in.tensors) {
    const TensorSource& s = *t.src;
    Decision d;
    const auto keep = match(ov.keep, t.out_name);
    const auto force = match(ov.quantize, t.out_name);
    // A kept tensor stays in its source format when the output can hold it: GGUF holds
    // every GGUF type; safetensors only the plain floats (a GGUF block type is widened to
    // F32). HF→GGUF stores 1-D tensors in F32 as convert_hf_to_gguf.py does.
    auto kept = [&](std::string why) {
      d.quantize = false;
      d.to = s.format;
      if (target.kind == OutputKind::kSafetensors && !plain(s.format)) d.to = FormatId::F32;
      if (target.kind == OutputKind::kGguf && !in.is_gguf && s.shape.size() <= 1) d.to = FormatId::F32;
      if (target.kind == OutputKind::kGguf && format_traits(d.to).gguf_type < 0) d.to = FormatId::F32;
      d.reason = std::move(why);
    };
    if (target.kind == OutputKind::kGguf) {
      const bool is_wv = t.gguf_name.find("attn_v.weight") != std::string::npos ||
                         t.gguf_name.find("attn_qkv.weight") != std::string::npos;
      const auto skip = gguf_not_quantized(t.gguf_name, s.shape.size());
      if (keep) {
        kept("--keep " + *keep);
      } else if (skip && !force) {
        kept(*skip);
      } else {
        const int64_t ne2 = s.shape.size() >= 3 ? s.shape[s.shape.size() - 3] : 1;
        GgufMixChoice c = gguf_mix_tensor_type(*target.mix, model, t.gguf_name, t.layer, i_wv, t.cols(), ne2);
        if (force && skip) c.reason = "--quantize " + *force + "; " + c.reason;
        if (c.format == s.format) {
          kept("already " + std::string(format_name(s.format)));
        } else {
          d.quantize = true;
          d.to = c.format;
          d.reason = c.reason;
        }
        d.fallback = c.fallback;
      }
      if (is_wv) ++i_wv;
    } else if (target.scheme == StScheme::kPlain) {
      if (keep) {
        kept("--keep " + *keep);
      } else {
        d.quantize = true;
        d.to = target.format;
        d.reason = "convert";
      }
    } else {
      const auto skip = st_not_quantized(t.out_name, s.shape.size());
      if (keep) {
        kept("--keep " + *keep);
      } else if (skip && !force) {
        kept(*skip + ", kept at source precision");
      } else {
        if (s.shape.size() < 2)
          fail("{}: --quantize {} matches a 1-D tensor; {} needs a matrix", t.out_name, *force, target.type);
        std::optional<std::string> cannot;
        try {
          check_row_length(target.format, t.cols(), target.group);
        } catch (const Error& e) {
          cannot = e.what();
        }
        if (cannot && force) {
          fail("{}: --quantize {} asks for {}, which cannot hold this tensor ({}); exclude it with --keep", t.out_name,
               *force, target.type, *cannot);
        }
        if (cannot) {
          // llama.cpp's answer to a row its type cannot hold is a fallback type; a checkpoint
          // scheme has one format, so the tensor stays at source precision (listed as excluded).
          kept(fmt::format("fallback: {} cannot hold it ({}), kept at source precision", target.type, *cannot));
          d.fallback = true;
        } else {
          d.quantize = true;
          d.to = target.format;
          d.reason = force && skip ? "--quantize " + *force : target.type;
        }
      }
    }
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace imp
