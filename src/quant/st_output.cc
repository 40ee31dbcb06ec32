// Safetensors-folder output of `imp quantize`: one model.safetensors, config.json with the
// scheme's quantization_config, hf_quant_config.json for ModelOpt layouts, and the input's
// tokenizer files. Tensor layouts (the ones io/schemes/*.cc load; M = the module, N = M.weight):
//   NVFP4 modelopt   M.weight U8 [.., in/2] · M.weight_scale F8_E4M3 [.., in/16] · M.weight_scale_2 F32 []
//   NVFP4 c-t        M.weight_packed U8 · M.weight_scale F8_E4M3 · M.weight_global_scale F32 [1] = 1/G
//   FP8 tensor       M.weight F8_E4M3 · M.weight_scale F32 []                   (ModelOpt FP8)
//   FP8 channel      M.weight F8_E4M3 · M.weight_scale F32 [out, 1]             (compressed-tensors)
//   FP8 block        M.weight F8_E4M3 · M.weight_scale_inv F32 [⌈out/128⌉, ⌈in/128⌉] (DeepSeek-V3;
//                    despite the name it multiplies)
//   MXFP4            N_blocks U8 [.., in/32, 16] · N_scales U8 [.., in/32]      (gpt-oss)
//   GPTQ g128 (v1)   M.qweight I32 [in/8, out] · M.qzeros I32 [in/128, out/8] (zero − 1) ·
//                    M.scales F16 [in/128, out] · M.g_idx I32 [in]              (io/schemes/gptq.h)
// Static activation scales (ModelOpt NVFP4 and FP8: M.input_scale F32 [] = amax / (6·448)
// resp. amax / 448; compressed-tensors NVFP4: M.input_global_scale F32 [1] = its divisor)
// are written when --calib gave the input's amax (quant/methods.h input_amax); without
// calibration they are absent (dynamic activation quantization, or weight-only W4A16).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>

#include "common/error.h"
#include "formats/traits.h"
#include "io/safetensors_writer.h"
#include "quant/hf_export.h"
#include "quant/pipeline_internal.h"

namespace imp {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

StDtype plain_dtype(FormatId f) {
  switch (f) {
    case FormatId::F32:
      return StDtype::F32;
    case FormatId::F16:
      return StDtype::F16;
    case FormatId::BF16:
      return StDtype::BF16;
    default:
      fail("{} has no safetensors dtype", format_name(f));
  }
}

std::string module_of(const std::string& name) {
  if (!name.ends_with(".weight")) fail("{}: a quantized tensor must be named *.weight", name);
  return name.substr(0, name.size() - 7);
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct Plane {
  std::string name;
  StDtype dtype;
  std::vector<int64_t> shape;
};

// The static input scale of a quantized tensor of the NVFP4 / FP8-tensor schemes, from the
// calibration's amax; nullopt for other schemes or without calibration.
std::optional<float> input_scale_of(const PipelineRun& run, size_t i) {
  if (!run.methods || !run.decisions[i].quantize) return std::nullopt;
  const StScheme s = run.target.scheme;
  if (s != StScheme::kNvfp4 && s != StScheme::kFp8Tensor) return std::nullopt;
  const auto amax = run.methods->input_amax(run.in.tensors[i].gguf_name);
  if (!amax || !(*amax > 0.0f)) return std::nullopt;
  return s == StScheme::kNvfp4 ? *amax / (6.0f * 448.0f) : *amax / 448.0f;
}

std::vector<Plane> scheme_planes(const PipelineRun& run, size_t i, const std::string& m);

// The output tensors of input tensor i, in the order they are written.
std::vector<Plane> planes_of(const PipelineRun& run, size_t i) {
  const InputTensor& t = run.in.tensors[i];
  const Decision& d = run.decisions[i];
  const std::vector<int64_t>& shape = t.src->shape;
  if (!d.quantize || run.target.scheme == StScheme::kPlain) return {{t.out_name, plain_dtype(d.to), shape}};
  const std::string m = module_of(t.out_name);
  std::vector<Plane> p = scheme_planes(run, i, m);
  if (input_scale_of(run, i)) {
    if (run.target.compressed_tensors) {
      p.push_back({m + ".input_global_scale", StDtype::F32, {1}});
    } else {
      p.push_back({m + ".input_scale", StDtype::F32, {}});
    }
  }
  return p;
}

// The weight planes of a quantized tensor (module m) in the target scheme.
std::vector<Plane> scheme_planes(const PipelineRun& run, size_t i, const std::string& m) {
  const InputTensor& t = run.in.tensors[i];
  const std::vector<int64_t>& shape = t.src->shape;
  const int64_t rows = t.rows(), cols = t.cols();
  auto last = [&](int64_t c) {
    std::vector<int64_t> s = shape;
    s.back() = c;
    return s;
  };
  const bool two_d = shape.size() == 2;
  switch (run.target.scheme) {
    case StScheme::kNvfp4:
      if (run.target.compressed_tensors) {
        return {{m + ".weight_packed", StDtype::U8, last(cols / 2)},
                {m + ".weight_scale", StDtype::F8_E4M3, last(cols / 16)},
                {m + ".weight_global_scale", StDtype::F32, {1}}};
      }
      return {{m + ".weight", StDtype::U8, last(cols / 2)},
              {m + ".weight_scale", StDtype::F8_E4M3, last(cols / 16)},
              {m + ".weight_scale_2", StDtype::F32, {}}};
    case StScheme::kFp8Tensor:
      return {{m + ".weight", StDtype::F8_E4M3, shape}, {m + ".weight_scale", StDtype::F32, {}}};
    case StScheme::kFp8Channel:
      if (!two_d) fail("{}: fp8-channel needs a 2-D weight", t.out_name);
      return {{m + ".weight", StDtype::F8_E4M3, shape}, {m + ".weight_scale", StDtype::F32, {rows, 1}}};
    case StScheme::kFp8Block:
      if (!two_d) fail("{}: fp8-block needs a 2-D weight", t.out_name);
      return {{m + ".weight", StDtype::F8_E4M3, shape},
              {m + ".weight_scale_inv", StDtype::F32, {ceil_div(rows, 128), ceil_div(cols, 128)}}};
    case StScheme::kMxfp4: {
      std::vector<int64_t> b = last(cols / 32);
      std::vector<int64_t> s = b;
      b.push_back(16);
      return {{t.out_name + "_blocks", StDtype::U8, b}, {t.out_name + "_scales", StDtype::U8, s}};
    }
    case StScheme::kGptq: {
      if (!two_d) fail("{}: the GPTQ layout needs a 2-D weight", t.out_name);
      if (rows % 8 != 0)
        fail("{}: GPTQ packs 8 output rows per qzeros word; {} rows is not a multiple of 8", t.out_name, rows);
      const int64_t g = cols / run.target.group;
      return {{m + ".qweight", StDtype::I32, {cols / 8, rows}},
              {m + ".qzeros", StDtype::I32, {g, rows / 8}},
              {m + ".scales", StDtype::F16, {g, rows}},
              {m + ".g_idx", StDtype::I32, {cols}}};
    }
    case StScheme::kPlain:
      break;
  }
  fail("unreachable scheme");
}

std::vector<uint8_t> f32_bytes(float v) {
  std::vector<uint8_t> b(4);
  std::memcpy(b.data(), &v, 4);
  return b;
}

// compressed-tensors stores the global scale as a divisor D and loaders take G = 1 / D.
// 1 / (1 / G) is not always G in fp32; a neighbour of 1 / G usually round-trips exactly.
float ct_divisor(float g) {
  const float d = 1.0f / g;
  for (float c : {d, std::nextafter(d, 0.0f), std::nextafter(d, INFINITY)}) {
    if (1.0f / c == g) return c;
  }
  return d;
}

// INT4_GROUP canonical planes → GPTQ v1 words (the inverse of repack_gptq_to_int4_group).
std::vector<std::vector<uint8_t>> pack_gptq(const OwnedQuantMatrix& q) {
  const int64_t n_out = q.rows, n_in = q.cols, g = n_in / q.group;
  std::vector<uint32_t> qw(size_t(n_in / 8 * n_out), 0), qz(size_t(g * n_out / 8), 0);
  std::vector<uint16_t> sc(size_t(g * n_out));
  std::vector<int32_t> gidx(static_cast<size_t>(n_in));
  for (int64_t n = 0; n < n_out; ++n) {
    const uint8_t* row = q.data.data() + n * n_in / 2;
    for (int64_t k = 0; k < n_in; ++k) {
      const uint32_t v = (row[k / 2] >> (4 * (k % 2))) & 15u;
      qw[size_t((k / 8) * n_out + n)] |= v << (4 * (k % 8));
    }
    for (int64_t gi = 0; gi < g; ++gi) {
      const uint32_t z = (uint32_t(q.zeros[size_t(n * g + gi)]) - 1u) & 15u;  // v1 stores zero − 1
      qz[size_t(gi * (n_out / 8) + n / 8)] |= z << (4 * (n % 8));
      std::memcpy(&sc[size_t(gi * n_out + n)], q.scales.data() + 2 * (n * g + gi), 2);
    }
  }
  for (int64_t k = 0; k < n_in; ++k) gidx[size_t(k)] = int32_t(k / q.group);
  auto bytes = [](const auto& v) {
    std::vector<uint8_t> b(v.size() * sizeof(v[0]));
    std::memcpy(b.data(), v.data(), b.size());
    return b;
  };
  return {bytes(qw), bytes(qz), bytes(sc), bytes(gidx)};
}

std::vector<std::vector<uint8_t>> scheme_bytes(PipelineRun& run, size_t i);

// The bytes of each plane of input tensor i (same order as planes_of).
std::vector<std::vector<uint8_t>> produce(PipelineRun& run, size_t i) {
  const InputTensor& t = run.in.tensors[i];
  const Decision& d = run.decisions[i];
  if (!d.quantize) {
    if (d.to == t.src->format && !run.kept_changes(i) && t.value_offset == 0.0f) return {load_bytes(t)};
    const std::vector<float> x = run.load(i);
    TensorJob job{t.out_name, x, t.rows(), t.cols(), d.to, 0};
    return {quantize_tensor(job, QuantOptions{}).data};
  }
  std::vector<std::vector<uint8_t>> planes = scheme_bytes(run, i);
  if (const auto s = input_scale_of(run, i)) planes.push_back(f32_bytes(run.target.compressed_tensors ? ct_divisor(*s) : *s));
  return planes;
}

// The bytes of the weight planes of quantized tensor i (same order as scheme_planes).
std::vector<std::vector<uint8_t>> scheme_bytes(PipelineRun& run, size_t i) {
  OwnedQuantMatrix q = run.quantize(i);
  switch (run.target.scheme) {
    case StScheme::kPlain:
      return {std::move(q.data)};
    case StScheme::kNvfp4:
      return {std::move(q.data), std::move(q.scales),
              f32_bytes(run.target.compressed_tensors ? ct_divisor(q.tensor_scale) : q.tensor_scale)};
    case StScheme::kFp8Tensor:
      return {std::move(q.data), f32_bytes(q.tensor_scale)};
    case StScheme::kFp8Channel:
    case StScheme::kFp8Block:
    case StScheme::kMxfp4:
      return {std::move(q.data), std::move(q.scales)};
    case StScheme::kGptq:
      return pack_gptq(q);
  }
  fail("unreachable scheme");
}

// GPTQ configs have no exclusion list; transformers/optimum read modules_in_block_to_quantize
// (module paths inside a decoder layer) instead. Returns them when some layer linears stay
// unquantized (--keep, row-length fallback) and every layer quantizes the same set, else null.
json gptq_block_modules(const PipelineRun& run) {
  std::map<int, std::set<std::string>> quantized;  // layer → module paths inside it
  bool any_kept = false;
  for (size_t i = 0; i < run.in.tensors.size(); ++i) {
    const InputTensor& t = run.in.tensors[i];
    const std::string& n = t.out_name;
    int layer = -1, at = 0;
    if (std::sscanf(n.c_str(), "model.layers.%d.%n", &layer, &at) != 1 || at == 0 || !n.ends_with(".weight")) continue;
    if (t.src->shape.size() < 2) continue;
    const std::string rel = n.substr(size_t(at), n.size() - size_t(at) - 7);
    if (run.decisions[i].quantize) {
      quantized[layer].insert(rel);
    } else {
      quantized[layer];
      any_kept = true;
    }
  }
  if (!any_kept || quantized.empty()) return nullptr;
  const std::set<std::string>& first = quantized.begin()->second;
  for (const auto& [layer, mods] : quantized) {
    if (mods != first) return nullptr;
  }
  return json::array({json(std::vector<std::string>(first.begin(), first.end()))});
}

// input_scales: static activation scales were written (compressed-tensors then declares W4A4
// input activations as llm-compressor's NVFP4 preset does; without them it is W4A16).
json quant_config(const QuantTarget& t, const std::vector<std::string>& excluded, const json& gptq_modules,
                  bool input_scales) {
  switch (t.scheme) {
    case StScheme::kPlain:
      return nullptr;
    case StScheme::kNvfp4:
      if (t.compressed_tensors) {
        return {{"quant_method", "compressed-tensors"},
                {"format", "nvfp4-pack-quantized"},
                {"quantization_status", "compressed"},
                {"config_groups",
                 {{"group_0",
                   {{"targets", {"Linear"}},
                    {"weights",
                     {{"num_bits", 4},
                      {"type", "float"},
                      {"strategy", "tensor_group"},
                      {"group_size", 16},
                      {"symmetric", true},
                      {"dynamic", false}}},
                    {"input_activations",
                     input_scales ? json{{"num_bits", 4},
                                         {"type", "float"},
                                         {"strategy", "tensor_group"},
                                         {"group_size", 16},
                                         {"symmetric", true},
                                         {"dynamic", "local"}}
                                  : json(nullptr)}}}}},
                {"ignore", excluded}};
      }
      return {{"quant_method", "modelopt"}, {"quant_algo", "NVFP4"}, {"group_size", 16}, {"exclude_modules", excluded}};
    case StScheme::kFp8Tensor:
      return {{"quant_method", "modelopt"}, {"quant_algo", "FP8"}, {"exclude_modules", excluded}};
    case StScheme::kFp8Channel:
      return {
          {"quant_method", "compressed-tensors"},
          {"format", "float-quantized"},
          {"quantization_status", "compressed"},
          {"config_groups",
           {{"group_0",
             {{"targets", {"Linear"}},
              {"weights",
               {{"num_bits", 8}, {"type", "float"}, {"strategy", "channel"}, {"symmetric", true}, {"dynamic", false}}},
              {"input_activations",
               {{"num_bits", 8}, {"type", "float"}, {"strategy", "token"}, {"symmetric", true}, {"dynamic", true}}}}}}},
          {"ignore", excluded}};
    case StScheme::kFp8Block:
      return {{"quant_method", "fp8"},
              {"activation_scheme", "dynamic"},
              {"fmt", "e4m3"},
              {"weight_block_size", {128, 128}},
              {"modules_to_not_convert", excluded}};
    case StScheme::kMxfp4:
      return {{"quant_method", "mxfp4"}, {"modules_to_not_convert", excluded}};
    case StScheme::kGptq:
    {
      json j = {
          {"quant_method", "gptq"}, {"bits", 4},           {"group_size", t.group},       {"desc_act", false},
          {"sym", false},           {"damp_percent", 0.0}, {"checkpoint_format", "gptq"}, {"true_sequential", true}};
      if (!gptq_modules.is_null()) j["modules_in_block_to_quantize"] = gptq_modules;
      return j;
    }
  }
  return nullptr;
}

void write_json(const fs::path& p, const json& j) {
  std::ofstream f(p);
  f << j.dump(2) << "\n";
  if (!f) fail("{}: write failed", p.string());
}

}  // namespace

void write_st_output(PipelineRun& run) {
  QuantInput& in = run.in;
  fs::create_directories(run.tmp);
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  std::vector<std::string> excluded;
  for (size_t i = 0; i < in.tensors.size(); ++i) {
    for (const auto& pl : planes_of(run, i)) w.add(pl.name, pl.dtype, pl.shape);
    const auto& t = in.tensors[i];
    if (!run.decisions[i].quantize && t.src->shape.size() >= 2 && t.out_name.ends_with(".weight")) {
      excluded.push_back(t.out_name.substr(0, t.out_name.size() - 7));
    }
  }
  if (std::find(excluded.begin(), excluded.end(), "lm_head") == excluded.end() &&
      in.model->config.tie_word_embeddings) {
    excluded.push_back("lm_head");  // tied: the head is the (unquantized) embedding
  }
  w.begin((fs::path(run.tmp) / "model.safetensors").string());
  for (size_t i = 0; i < in.tensors.size(); ++i) {
    const auto planes = planes_of(run, i);
    auto bytes = produce(run, i);
    int64_t n = 0;
    for (size_t k = 0; k < planes.size(); ++k) {
      w.write(planes[k].name, bytes[k]);
      n += int64_t(bytes[k].size());
    }
    run.report(i, n);
  }
  w.finish();

  json config;
  if (in.is_gguf) {
    config = hf_config_from_gguf(in);
    if (const auto note = write_hf_tokenizer_from_gguf(in, run.tmp)) run.notes.push_back(*note);
  } else {
    config = in.model->metadata;
    config.erase("hf_quant_config");
    config.erase("quantization_config");
    const fs::path dir =
        fs::is_directory(in.model->path) ? fs::path(in.model->path) : fs::path(in.model->path).parent_path();
    copy_hf_aux_files(dir.string(), run.tmp);
  }
  bool input_scales = false;
  for (size_t i = 0; i < in.tensors.size() && !input_scales; ++i) input_scales = input_scale_of(run, i).has_value();
  const json qc = quant_config(run.target, excluded, gptq_block_modules(run), input_scales);
  if (!qc.is_null()) config["quantization_config"] = qc;
  if (run.target.scheme == StScheme::kPlain) {
    config["torch_dtype"] = run.target.type == "f32" ? "float32" : run.target.type == "f16" ? "float16" : "bfloat16";
  }
  write_json(fs::path(run.tmp) / "config.json", config);
  const bool modelopt = (run.target.scheme == StScheme::kNvfp4 && !run.target.compressed_tensors) ||
                        run.target.scheme == StScheme::kFp8Tensor;
  if (modelopt) {
    write_json(fs::path(run.tmp) / "hf_quant_config.json",
               {{"producer", {{"name", "modelopt"}, {"version", "imp-quantize"}}},
                {"quantization",
                 {{"quant_algo", run.target.scheme == StScheme::kNvfp4 ? "NVFP4" : "FP8"},
                  {"kv_cache_quant_algo", nullptr},
                  {"group_size", run.target.scheme == StScheme::kNvfp4 ? 16 : 0},
                  {"exclude_modules", excluded}}}});
  }
  if (run.target.scheme == StScheme::kNvfp4 || run.target.scheme == StScheme::kFp8Tensor) {
    int64_t with = 0, quantized = 0;
    for (size_t i = 0; i < in.tensors.size(); ++i) {
      quantized += run.decisions[i].quantize;
      with += input_scale_of(run, i).has_value();
    }
    if (with == 0) {
      run.notes.push_back(
          "no input_scale / input_global_scale written: without --calib there are no calibration activations "
          "(weight-only; loaders that need static activation scales will ask for them)");
    } else {
      run.notes.push_back(fmt::format("static input scales from the calibration's amax written for {} of {} quantized "
                                      "tensors",
                                      with, quantized));
    }
  }
}

}  // namespace imp
