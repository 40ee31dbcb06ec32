// C ABI over the formats core for the Python reference tests (tests/ref/*.py load it
// with ctypes). Every function returns 0 on success; on failure it returns -1 and
// imp_last_error() holds the imp::Error message.
#include <cstdint>
#include <cstring>
#include <exception>
#include <nlohmann/json.hpp>
#include <span>
#include <string>

#include "backends/cpu/row_kernels.h"
#include "formats/quant_matrix.h"
#include "formats/traits.h"
#include "io/gguf_writer.h"

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

}  // extern "C"
