// open_gguf_model: a GGUF file → ModelFile. One TensorSource per tensor (shape in PyTorch
// order = reversed ne, data mapped, never copied), metadata as JSON, ModelConfig and
// TokenizerInfo from the standard keys (io/gguf_config.h).
//
// NVFP4 companions (../shared/specs/formats.md §6.4): llama.cpp's converter stores an NVFP4
// weight's per-tensor scale (ModelOpt weight_scale_2) as a separate F32 tensor
// "<base>.scale" next to "<base>.weight" and multiplies the matmul output by it. A
// one-element scale is folded into the weight's TensorSource::tensor_scale and dropped
// from the list; a per-expert scale ([n_expert]) cannot be one multiplier and stays a
// tensor of its own, with a warning. ".input_scale" tensors (activation scales) stay as
// they are.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "common/error.h"
#include "io/gguf_config.h"
#include "io/gguf_reader.h"
#include "io/model_file.h"

namespace imp {
namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

void note_rope_permutation(ModelFile& m) {
  const std::string& arch = m.config.architecture;
  if (arch != "llama" && arch != "mistral") return;
  m.rope_rows_permuted = true;
  for (auto& t : m.tensors) {
    if (ends_with(t.name, ".attn_q.weight") || ends_with(t.name, ".attn_k.weight") ||
        ends_with(t.name, ".attn_q.bias") || ends_with(t.name, ".attn_k.bias")) {
      t.note += std::string(t.note.empty() ? "" : "; ") + "rows in adjacent-pair RoPE order";
    }
  }
}

void attach_nvfp4_scales(ModelFile& m) {
  std::vector<bool> drop(m.tensors.size(), false);
  for (size_t k = 0; k < m.tensors.size(); ++k) {
    const TensorSource& s = m.tensors[k];
    if (!ends_with(s.name, ".scale") || s.format != FormatId::F32) continue;
    const std::string base = s.name.substr(0, s.name.size() - 6);
    TensorSource* w = nullptr;
    for (const std::string& cand : {base + ".weight", base}) {
      for (auto& t : m.tensors) {
        if (t.name == cand && t.format == FormatId::NVFP4) w = &t;
      }
      if (w) break;
    }
    if (!w) continue;
    if (s.elements() != 1) {
      m.warnings.push_back(fmt::format("{}: {} scales for NVFP4 '{}' (one per expert) kept as a separate tensor",
                                       s.name, s.elements(), w->name));
      continue;
    }
    float scale;
    std::memcpy(&scale, s.data.data(), sizeof scale);
    if (!std::isfinite(scale)) fail("{}: tensor '{}' (scale of '{}') is not finite", m.path, s.name, w->name);
    w->tensor_scale = scale;
    w->note = fmt::format("tensor_scale {} from {}", scale, s.name);
    drop[k] = true;
  }
  std::vector<TensorSource> kept;
  for (size_t k = 0; k < m.tensors.size(); ++k) {
    if (!drop[k]) kept.push_back(std::move(m.tensors[k]));
  }
  m.tensors = std::move(kept);
}

// "gguf Q4_K_M: q4_k, q6_k, f32" — file_type (informational) then the formats present,
// largest share of bytes first.
std::string quant_scheme(const GgufFile& g, const ModelFile& m) {
  std::string s = "gguf";
  if (const GgufValue* ft = g.find("general.file_type")) {
    if (const auto id = ft->as_int()) {
      const std::string name = gguf_file_type_name(*id);
      s += " " + (name.empty() ? fmt::format("file_type {}", *id) : name);
    }
  }
  std::map<FormatId, int64_t> bytes;
  for (const auto& t : m.tensors) bytes[t.format] += t.bytes();
  std::vector<std::pair<int64_t, FormatId>> order;
  for (const auto& [f, b] : bytes) order.emplace_back(b, f);
  std::sort(order.rbegin(), order.rend());
  for (size_t k = 0; k < order.size(); ++k) s += fmt::format("{}{}", k ? ", " : ": ", format_name(order[k].second));
  return s;
}

}  // namespace

std::unique_ptr<ModelFile> open_gguf_model(const std::string& path) {
  auto m = std::make_unique<ModelFile>();
  auto map = std::make_unique<MappedFile>(path);
  const GgufFile g = parse_gguf(map->bytes(), path);
  m->path = path;
  m->container = fmt::format("gguf v{}", g.version);
  m->metadata = gguf_metadata_json(g);
  for (const auto& info : g.tensors) {
    TensorSource t;
    t.name = info.name;
    t.shape = info.shape();
    t.format = info.format;
    t.data = g.tensor_data(info);
    t.file = path;
    m->tensors.push_back(std::move(t));
  }
  attach_nvfp4_scales(*m);
  m->config = gguf_model_config(g, m->warnings);
  note_rope_permutation(*m);
  m->tokenizer = gguf_tokenizer_info(g);
  m->quant_scheme = quant_scheme(g, *m);
  m->mappings.push_back(std::move(map));
  return m;
}

}  // namespace imp
