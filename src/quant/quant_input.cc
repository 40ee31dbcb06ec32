#include "quant/quant_input.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "common/error.h"
#include "io/tensor_names.h"

namespace imp {
namespace {

int layer_of(const std::string& gguf_name) {
  int l = -1;
  if (std::sscanf(gguf_name.c_str(), "blk.%d.", &l) != 1) return -1;
  return l;
}

bool permutes_rope(const std::string& arch) { return arch == "llama" || arch == "mistral"; }

}  // namespace

int64_t InputTensor::rows() const {
  int64_t r = 1;
  for (size_t i = 0; i + 1 < src->shape.size(); ++i) r *= src->shape[i];
  return r;
}
int64_t InputTensor::cols() const { return src->shape.empty() ? 1 : src->shape.back(); }

QuantInput open_quant_input(const std::string& path, OutputKind out) {
  QuantInput in;
  in.model = open_model_file(path);
  in.is_gguf = in.model->container.rfind("gguf", 0) == 0;
  in.arch = in.model->config.architecture;
  if (in.is_gguf) {
    in.gguf_map = std::make_unique<MappedFile>(path);
    in.gguf = parse_gguf(in.gguf_map->bytes(), path);
  }
  for (const auto& w : in.model->warnings) {
    // The loader skips tensors of dtypes it has no format for; quantizing without them
    // would silently drop weights.
    if (w.find("has no imp format") != std::string::npos) fail("{}: unsupported source dtype: {}", path, w);
  }
  const ModelConfig& c = in.model->config;
  std::map<std::string, int> requantized;  // source format → tensor count
  for (const auto& s : in.model->tensors) {
    if (s.layout != StoredLayout::kCanonical) {
      fail("{}: tensor '{}' is stored in a repacked layout ({}); requantizing it is not supported", path, s.name,
           in.model->quant_scheme);
    }
    InputTensor t;
    t.src = &s;
    if (in.is_gguf) {
      t.gguf_name = s.name;
      if (out == OutputKind::kGguf) {
        t.out_name = s.name;
      } else {
        const auto hf = gguf_to_hf_name(s.name, in.arch);
        if (!hf) {
          in.warnings.push_back(fmt::format("{}: no Hugging Face name for this tensor; skipped", s.name));
          continue;
        }
        t.out_name = *hf;
      }
    } else {
      const auto g = hf_to_gguf_name(s.name, in.arch);
      if (out == OutputKind::kGguf && !g) {
        in.warnings.push_back(fmt::format("{}: no GGUF name for this tensor; skipped", s.name));
        continue;
      }
      t.gguf_name = g ? *g : s.name;
      t.out_name = out == OutputKind::kGguf ? t.gguf_name : s.name;
    }
    t.layer = layer_of(t.gguf_name);
    if (in.is_gguf && out == OutputKind::kSafetensors && in.arch == "gemma3" && s.shape.size() == 1 &&
        t.gguf_name.ends_with("norm.weight")) {
      t.value_offset = -1.0f;
    }
    // HF keeps half-split RoPE pairs, llama.cpp's llama/mistral GGUFs adjacent ones.
    const bool converts = in.is_gguf != (out == OutputKind::kGguf);
    if (converts && permutes_rope(in.arch) && s.shape.size() == 2) {
      const bool q = t.gguf_name.ends_with("attn_q.weight"), k = t.gguf_name.ends_with("attn_k.weight");
      if (q || k) {
        t.rope_heads = q ? c.n_head : c.n_head_kv;
        if (t.rope_heads <= 0 || s.shape[0] % t.rope_heads != 0 || (s.shape[0] / t.rope_heads) % 2 != 0) {
          fail("{}: cannot permute {} rows for RoPE with {} heads", path, s.name, t.rope_heads);
        }
        t.rope_to_gguf = out == OutputKind::kGguf;
      }
    }
    if (s.format != FormatId::F32 && s.format != FormatId::F16 && s.format != FormatId::BF16) {
      ++requantized[std::string(format_name(s.format))];
    }
    in.tensors.push_back(std::move(t));
  }
  if (!requantized.empty()) {
    std::string list;
    for (const auto& [f, n] : requantized) list += fmt::format("{}{} × {}", list.empty() ? "" : ", ", n, f);
    in.warnings.push_back(
        fmt::format("the input is already quantized ({}): those tensors are dequantized to F32 and "
                    "requantized, which adds a second rounding error",
                    list));
  }
  if (out == OutputKind::kGguf) {
    // llama.cpp's order (llama_model_loader weight_name_comparer): by blk index, non-block
    // tensors (-1) first, then by name. The per-layer rule counters depend on it.
    std::stable_sort(in.tensors.begin(), in.tensors.end(), [](const InputTensor& a, const InputTensor& b) {
      return a.layer != b.layer ? a.layer < b.layer : a.out_name < b.out_name;
    });
  } else {
    std::stable_sort(in.tensors.begin(), in.tensors.end(),
                     [](const InputTensor& a, const InputTensor& b) { return a.out_name < b.out_name; });
  }
  return in;
}

namespace {

template <class T>
std::vector<T> permuted(const InputTensor& t, std::vector<T> v) {
  if (t.rope_heads <= 0) return v;
  const int64_t rows = t.rows();
  const int64_t row_bytes = int64_t(v.size() * sizeof(T)) / rows;
  std::vector<T> out(v.size());
  rope_permute_rows({reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(T)},
                    {reinterpret_cast<uint8_t*>(out.data()), out.size() * sizeof(T)}, t.rope_heads, rows / t.rope_heads,
                    row_bytes, t.rope_to_gguf);
  return out;
}

}  // namespace

std::vector<float> load_f32(const InputTensor& t) {
  const TensorSource& s = *t.src;
  std::vector<float> x;
  if (s.shape.size() <= 1 && !is_split_format(s.format)) {
    x = dequantize_row(s.format, s.data);
  } else {
    // Stacked [E, rows, cols] tensors flatten to (E·rows) × cols, which every plane
    // supports except 128×128 tiles (an expert boundary inside a tile).
    x = dequantize(s.matrix());
  }
  if (t.value_offset != 0.0f) {
    for (float& v : x) v += t.value_offset;
  }
  return permuted(t, std::move(x));
}

std::vector<uint8_t> load_bytes(const InputTensor& t) {
  const TensorSource& s = *t.src;
  if (is_split_format(s.format))
    fail("{}: {} keeps scales in separate tensors; it cannot be copied", s.name, format_name(s.format));
  if (t.value_offset != 0.0f) fail("{}: its values change on conversion; it cannot be copied", s.name);
  return permuted(t, std::vector<uint8_t>(s.data.begin(), s.data.end()));
}

}  // namespace imp
