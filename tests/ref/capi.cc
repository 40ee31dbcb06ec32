// C ABI over the formats core for the Python reference tests (tests/ref/*.py load it
// with ctypes). Every function returns 0 on success; on failure it returns -1 and
// imp_last_error() holds the imp::Error message.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>

#include "backends/cpu/act_emulation.h"
#include "backends/cpu/row_kernels.h"
#include "common/error.h"
#include "formats/quant_matrix.h"
#include "formats/traits.h"
#include "io/gguf_writer.h"
#include "io/model_file.h"
#include "io/schemes/gptq.h"
#include "quant/weighted_ggml.h"

namespace {
thread_local std::string g_last_error;

template <class F>
int guarded(F&& f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    g_last_error = e.what();
    return -1;
  }
}

imp::QuantMatrix make_view(int format, const uint8_t* data, int64_t data_len, const uint8_t* scales,
                           int64_t scales_len, const uint8_t* zeros, int64_t zeros_len, float tensor_scale,
                           int32_t group, int64_t rows, int64_t cols) {
  imp::QuantMatrix m;
  m.format = imp::FormatId(format);
  m.rows = rows;
  m.cols = cols;
  m.data = {data, size_t(data_len)};
  m.scales = {scales, size_t(scales_len)};
  m.zeros = {zeros, size_t(zeros_len)};
  m.tensor_scale = tensor_scale;
  m.group = group;
  return m;
}
}  // namespace

extern "C" {

const char* imp_last_error() { return g_last_error.c_str(); }
int imp_format_count() { return imp::kFormatCount; }
const char* imp_format_name(int id) { return imp::format_traits(imp::FormatId(id)).name.data(); }
int imp_format_gguf_type(int id) { return imp::format_traits(imp::FormatId(id)).gguf_type; }
int imp_format_block_elems(int id) { return imp::format_traits(imp::FormatId(id)).block_elems; }
int imp_format_block_bytes(int id) { return imp::format_traits(imp::FormatId(id)).block_bytes; }

// Plane sizes in bytes for a rows × cols matrix.
int imp_plane_bytes(int format, int64_t rows, int64_t cols, int32_t group, int64_t* data, int64_t* scales,
                    int64_t* zeros) {
  return guarded([&] {
    const auto f = imp::FormatId(format);
    imp::check_row_length(f, cols, group);
    *data = rows * imp::row_data_bytes(f, cols);
    *scales = imp::scale_plane_bytes(f, rows, cols, group);
    *zeros = imp::zero_plane_bytes(f, rows, cols, group);
  });
}

// Reference quantization; the caller sizes the planes with imp_plane_bytes.
int imp_quantize(int format, const float* x, int64_t rows, int64_t cols, int32_t group, uint8_t* data,
                 uint8_t* scales, uint8_t* zeros, float* tensor_scale) {
  return guarded([&] {
    const auto q = imp::quantize(imp::FormatId(format), std::span<const float>(x, size_t(rows * cols)), rows, cols,
                                 group);
    std::memcpy(data, q.data.data(), q.data.size());
    if (!q.scales.empty()) std::memcpy(scales, q.scales.data(), q.scales.size());
    if (!q.zeros.empty()) std::memcpy(zeros, q.zeros.data(), q.zeros.size());
    *tensor_scale = q.tensor_scale;
  });
}

// Importance-weighted GGUF quantization (quant/weighted_ggml.h): qw has cols entries.
int imp_quantize_weighted(int format, const float* x, int64_t rows, int64_t cols, const float* qw, uint8_t* data) {
  return guarded([&] {
    const auto q = imp::quant::quantize_weighted(imp::FormatId(format), std::span<const float>(x, size_t(rows * cols)),
                                                 rows, cols, std::span<const float>(qw, size_t(cols)));
    std::memcpy(data, q.data.data(), q.data.size());
  });
}

// isa: 0 = scalar reference (formats/), 1 = the fastest CPU kernel available.
int imp_dequantize(int format, int isa, const uint8_t* data, int64_t data_len, const uint8_t* scales,
                   int64_t scales_len, const uint8_t* zeros, int64_t zeros_len, float tensor_scale, int32_t group,
                   int64_t rows, int64_t cols, float* out) {
  return guarded([&] {
    const auto m = make_view(format, data, data_len, scales, scales_len, zeros, zeros_len, tensor_scale, group, rows,
                             cols);
    if (isa == 0) {
      imp::dequantize(m, std::span<float>(out, size_t(rows * cols)));
      return;
    }
    imp::validate(m);
    const auto k = imp::cpu_row_kernels(m.format);
    for (int64_t r = 0; r < rows; ++r) k.dequantize(imp::row_planes(m, r), out + r * cols, cols);
  });
}

// y[r] = W[r] · quantize_activation(x) for every row; isa as above.
int imp_matvec(int format, int isa, const uint8_t* data, int64_t data_len, const uint8_t* scales, int64_t scales_len,
               const uint8_t* zeros, int64_t zeros_len, float tensor_scale, int32_t group, int64_t rows, int64_t cols,
               const float* x, float* y) {
  return guarded([&] {
    const auto m = make_view(format, data, data_len, scales, scales_len, zeros, zeros_len, tensor_scale, group, rows,
                             cols);
    imp::validate(m);
    const auto k = imp::cpu_row_kernels(m.format, isa == 0 ? imp::CpuIsa::kScalar : imp::best_cpu_isa());
    const auto act_format = imp::format_traits(m.format).dot_activation;
    std::string act(size_t(imp::row_data_bytes(act_format, cols)), '\0');
    imp::RowPlanes ap;
    ap.data = act.data();
    k.quantize_activation(x, ap, cols);
    for (int64_t r = 0; r < rows; ++r) y[r] = k.vec_dot(imp::row_planes(m, r), act.data(), cols);
  });
}

// Writes a GGUF v3 file with imp's GgufWriter (tests/ref/test_gguf_io.py reads it back with
// gguf-py). spec_json: {"kv": [[key, {"type", "value"[, "elem_type"]}], ...],
// "tensors": [{"name", "shape" (PyTorch order), "format" (imp name)}, ...]};
// data[i] / sizes[i]: tensor i's bytes.
int imp_gguf_write(const char* path, const char* spec_json, const uint8_t* const* data, const int64_t* sizes) {
  return guarded([&] {
    const auto spec = nlohmann::json::parse(spec_json);
    imp::GgufWriter w;
    for (const auto& kv : spec.at("kv")) w.set(kv.at(0).get<std::string>(), imp::from_typed_json(kv.at(1)));
    size_t i = 0;
    for (const auto& t : spec.at("tensors")) {
      const auto format = imp::format_from_name(t.at("format").get<std::string>());
      if (!format) throw std::runtime_error("unknown format " + t.at("format").dump());
      w.add_tensor(t.at("name").get<std::string>(), t.at("shape").get<std::vector<int64_t>>(), *format,
                   {data[i], size_t(sizes[i])});
      ++i;
    }
    w.write(path);
  });
}

// --- model files (io/): what `imp inspect --json` will show, until that command lands ---

// The ModelFile at `path` as JSON (container, scheme, config, tokenizer, warnings, every
// tensor with format, shape, scales). Returns the JSON length and copies as much as fits
// in buf (NUL-terminated when it all fits); -1 on error.
int64_t imp_open_model_json(const char* path, char* buf, int64_t len) {
  std::string text;
  if (guarded([&] {
        const auto mf = imp::open_model_file(path);
        nlohmann::json j;
        j["path"] = mf->path;
        j["container"] = mf->container;
        j["quant_scheme"] = mf->quant_scheme;
        const auto& c = mf->config;
        j["config"] = {{"architecture", c.architecture}, {"n_vocab", c.n_vocab}, {"n_ctx_train", c.n_ctx_train},
                       {"n_embd", c.n_embd}, {"n_layer", c.n_layer}, {"n_ff", c.n_ff}, {"n_head", c.n_head},
                       {"n_head_kv", c.n_head_kv}, {"head_dim", c.head_dim}, {"rms_norm_eps", c.rms_norm_eps},
                       {"rope_theta", c.rope_theta}, {"rope_scaling_type", c.rope_scaling.type},
                       {"rope_scaling_factor", c.rope_scaling.factor},
                       {"rope_original_context", c.rope_scaling.original_context},
                       {"sliding_window", c.sliding_window}, {"n_expert", c.n_expert},
                       {"n_expert_used", c.n_expert_used}, {"tie_word_embeddings", c.tie_word_embeddings}};
        const auto& t = mf->tokenizer;
        auto opt = [](const std::optional<int64_t>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
        j["tokenizer"] = {{"model", t.model}, {"n_tokens", t.n_tokens}, {"n_merges", t.n_merges},
                          {"bos_id", opt(t.bos_id)}, {"eos_id", opt(t.eos_id)}, {"add_bos", t.add_bos},
                          {"has_chat_template", t.has_chat_template}, {"source", t.source}};
        j["warnings"] = mf->warnings;
        static const char* kLayouts[] = {"canonical", "gptq_v1", "gptq_v2", "awq_gemm"};
        auto& ts = j["tensors"] = nlohmann::json::array();
        for (const auto& s : mf->tensors) {
          ts.push_back({{"name", s.name}, {"shape", s.shape}, {"format", imp::format_name(s.format)},
                        {"tensor_scale", s.tensor_scale},
                        {"input_scale", s.input_scale ? nlohmann::json(*s.input_scale) : nlohmann::json()},
                        {"group", s.group}, {"note", s.note}, {"layout", kLayouts[int(s.layout)]}, {"file", s.file},
                        {"data_bytes", s.data.size()}, {"scales_bytes", s.scales.size()},
                        {"zeros_bytes", s.zeros.size()}});
        }
        text = j.dump();
      }) != 0) {
    return -1;
  }
  if (buf && len > 0) {
    const size_t n = std::min(size_t(len - 1), text.size());
    std::memcpy(buf, text.data(), n);
    buf[n] = '\0';
  }
  return int64_t(text.size());
}

// Dequantizes tensor `name` of the model at `path` into out (n floats, row-major in the
// tensor's shape). GPTQ / AWQ tensors go through their repack (act-order permutation
// undone, so out is in the checkpoint's input order).
int imp_tensor_dequant(const char* path, const char* name, float* out, int64_t n) {
  return guarded([&] {
    const auto mf = imp::open_model_file(path);
    const auto& s = mf->at(name);
    if (s.elements() != n) imp::fail("{}: has {} elements, the buffer {}", name, s.elements(), n);
    if (s.layout == imp::StoredLayout::kCanonical) {
      imp::dequantize(s.matrix(), std::span<float>(out, size_t(n)));
      return;
    }
    imp::Int4Repacked r;
    if (s.layout == imp::StoredLayout::kAwqGemm) {
      r.matrix = imp::repack_awq_to_int4_group(s);
    } else {
      r = imp::repack_gptq_to_int4_group(s);
    }
    const auto w = imp::dequantize(r.matrix.view());
    const int64_t rows = r.matrix.rows, cols = r.matrix.cols;
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < cols; ++j) {
        const int64_t k = r.input_perm.empty() ? j : r.input_perm[size_t(j)];
        out[i * cols + k] = w[size_t(i * cols + j)];
      }
    }
  });
}

// The canonical INT4_GROUP planes a GPTQ / AWQ tensor repacks to (sizes from its shape
// and group: data out·in/2, scales out·in/group·2, zeros out·in/group) and, for act-order
// GPTQ, the input permutation (in int32; -1 everywhere when the order is natural).
int imp_tensor_int4_planes(const char* path, const char* name, uint8_t* data, uint8_t* scales, uint8_t* zeros,
                           int32_t* perm) {
  return guarded([&] {
    const auto mf = imp::open_model_file(path);
    const auto& s = mf->at(name);
    imp::Int4Repacked r;
    if (s.layout == imp::StoredLayout::kAwqGemm) {
      r.matrix = imp::repack_awq_to_int4_group(s);
    } else {
      r = imp::repack_gptq_to_int4_group(s);
    }
    std::memcpy(data, r.matrix.data.data(), r.matrix.data.size());
    std::memcpy(scales, r.matrix.scales.data(), r.matrix.scales.size());
    std::memcpy(zeros, r.matrix.zeros.data(), r.matrix.zeros.size());
    for (int64_t k = 0; k < r.matrix.cols; ++k) perm[k] = r.input_perm.empty() ? -1 : r.input_perm[size_t(k)];
  });
}

// Activation fake quantization (backends/cpu/act_emulation.h) of x (n_tok, cols) into out;
// mode 0 none, 1 nvfp4, 2 mxfp4, 3 fp8; has_static picks static_scale over the dynamic one.
// *scale_used receives the global scale applied.
int imp_fake_quant_activations(int mode, const float* x, int64_t n_tok, int64_t cols, int has_static,
                               float static_scale, float* out, float* scale_used) {
  return guarded([&] {
    if (mode < 0 || mode > 3) imp::fail("fake quant mode {} is not 0..3", mode);
    *scale_used = imp::fake_quantize_activations(imp::ActEmulation(mode), x, n_tok, cols,
                                                 has_static ? std::optional<float>(static_scale) : std::nullopt, out);
  });
}

}  // extern "C"
