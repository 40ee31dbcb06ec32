// `imp dump FILE_OR_FOLDER TENSOR [--out PATH]`: one tensor dequantized by the scalar
// reference (formats/quant_matrix) and written as raw little-endian float32, row-major in
// the tensor's PyTorch shape (what `imp inspect` prints), to stdout or PATH.
// Rows are decoded and written a chunk at a time, so a tensor larger than memory streams.
#include <fmt/core.h>

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <vector>

#include "common/error.h"
#include "formats/quant_matrix.h"
#include "io/model_file.h"
#include "tools/commands.h"

namespace imp {
namespace {

static_assert(std::endian::native == std::endian::little, "dump writes the host's float32 bytes");

constexpr int64_t kChunkElements = int64_t(1) << 22;  // 16 MiB of floats per write

void write_all(std::FILE* out, const float* p, size_t n, const std::string& dest) {
  if (std::fwrite(p, sizeof(float), n, out) != n) fail("{}: write failed", dest);
}

void run_dump(const std::string& path, const std::string& name, const std::string& out_path) {
  const auto model = open_model_file(path);
  TensorSource t = model->at(name);
  if (t.shape.empty()) t.shape = {1};  // a 0-d tensor is one value
  const QuantMatrix m = t.matrix();      // validates every plane against the shape
  const auto& traits = format_traits(m.format);
  const std::string dest = out_path.empty() ? "stdout" : out_path;
  const std::string tmp = out_path.empty() ? "" : fmt::format("{}.tmp.{}", out_path, ::getpid());
  std::FILE* out = out_path.empty() ? stdout : std::fopen(tmp.c_str(), "wb");
  if (!out) fail("{}: cannot create", out_path);
  try {
    const int64_t rows_per_chunk = std::max<int64_t>(1, kChunkElements / m.cols);
    std::vector<float> buf(size_t(std::min(m.rows, rows_per_chunk) * m.cols));
    for (int64_t r0 = 0; r0 < m.rows; r0 += rows_per_chunk) {
      const int64_t n = std::min(rows_per_chunk, m.rows - r0);
      for (int64_t r = 0; r < n; ++r) traits.dequantize_ref(row_planes(m, r0 + r), buf.data() + r * m.cols, m.cols);
      write_all(out, buf.data(), size_t(n * m.cols), dest);
    }
    if (std::fflush(out) != 0) fail("{}: write failed", dest);
  } catch (...) {
    if (!out_path.empty()) {
      std::fclose(out);
      std::remove(tmp.c_str());
    }
    throw;
  }
  if (!out_path.empty()) {
    if (std::fclose(out) != 0) {
      std::remove(tmp.c_str());
      fail("{}: write failed", out_path);
    }
    std::error_code ec;
    std::filesystem::rename(tmp, out_path, ec);
    if (ec) fail("{}: cannot rename {} into place: {}", out_path, tmp, ec.message());
  }
}

}  // namespace

void register_dump_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("dump", "Write one tensor dequantized, as little-endian float32");
  static std::string path, tensor, out;
  cmd->add_option("FILE_OR_FOLDER", path, "a .gguf file, a .safetensors file or a Hugging Face folder")->required();
  cmd->add_option("TENSOR", tensor, "tensor name as `imp inspect` lists it")->required();
  cmd->add_option("--out", out, "output file (default: stdout)");
  cmd->callback([] { run_dump(path, tensor, out); });
}

}  // namespace imp
