#include "formats/quant_matrix.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <thread>
#include <vector>

#include "common/error.h"
#include "formats/fp8_scaled.h"
#include "formats/nvfp4_ckpt.h"

namespace imp {
namespace {

int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  if (a < 0 || b < 0) fail("negative {} ({} × {})", what, a, b);
  if (a != 0 && b > std::numeric_limits<int64_t>::max() / a) fail("{} overflows: {} × {}", what, a, b);
  return a * b;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void check_plane(std::string_view plane, FormatId f, size_t have, int64_t want) {
  if (int64_t(have) != want) {
    fail("{} {} plane holds {} bytes, the shape needs {}", format_name(f), plane, have, want);
  }
}

}  // namespace

void check_row_length(FormatId format, int64_t n, int32_t group) {
  const auto& t = format_traits(format);
  if (n <= 0) fail("{}: row length must be positive, got {}", t.name, n);
  if (n % t.block_elems != 0) {
    fail("{}: row length {} is not a multiple of the block size {}", t.name, n, t.block_elems);
  }
  if (t.scale_layout == ScaleLayout::kPerGroup) {
    if (group <= 0 || group % t.block_elems != 0) {
      fail("{}: group size {} must be a positive multiple of {}", t.name, group, t.block_elems);
    }
    if (n % group != 0) fail("{}: row length {} is not a multiple of the group size {}", t.name, n, group);
  }
}

int64_t row_data_bytes(FormatId format, int64_t n) {
  const auto& t = format_traits(format);
  check_row_length(format, n, t.scale_layout == ScaleLayout::kPerGroup ? int32_t(t.block_elems) : 0);
  return checked_mul(n / t.block_elems, t.block_bytes, "row size");
}

int64_t scale_plane_bytes(FormatId format, int64_t rows, int64_t cols, int32_t group) {
  const auto& t = format_traits(format);
  switch (t.scale_layout) {
    case ScaleLayout::kNone:
    case ScaleLayout::kInBlock:
    case ScaleLayout::kPerTensor:
      return 0;
    case ScaleLayout::kPerBlock:
      return checked_mul(checked_mul(rows, cols / t.block_elems, "scale count"), t.scale_bytes, "scale plane");
    case ScaleLayout::kPerGroup:
      return checked_mul(checked_mul(rows, cols / group, "scale count"), t.scale_bytes, "scale plane");
    case ScaleLayout::kPerRow:
      return checked_mul(rows, t.scale_bytes, "scale plane");
    case ScaleLayout::kTile128:
      return checked_mul(checked_mul(ceil_div(rows, 128), ceil_div(cols, 128), "scale count"), t.scale_bytes,
                         "scale plane");
  }
  return 0;
}

int64_t zero_plane_bytes(FormatId format, int64_t rows, int64_t cols, int32_t group) {
  const auto& t = format_traits(format);
  if (!t.has_zero_points) return 0;
  return checked_mul(rows, cols / group, "zero plane");
}

void validate(const QuantMatrix& m) {
  const auto& t = format_traits(m.format);
  if (m.rows <= 0) fail("{}: matrix must have at least one row, got {}", t.name, m.rows);
  check_row_length(m.format, m.cols, m.group);
  check_plane("data", m.format, m.data.size(), checked_mul(m.rows, row_data_bytes(m.format, m.cols), "data plane"));
  check_plane("scales", m.format, m.scales.size(), scale_plane_bytes(m.format, m.rows, m.cols, m.group));
  check_plane("zeros", m.format, m.zeros.size(), zero_plane_bytes(m.format, m.rows, m.cols, m.group));
  if (t.needs_tensor_scale && !std::isfinite(m.tensor_scale)) {
    fail("{}: per-tensor scale is not finite ({})", t.name, m.tensor_scale);
  }
}

ConstRowPlanes row_planes(const QuantMatrix& m, int64_t r) {
  const auto& t = format_traits(m.format);
  ConstRowPlanes p;
  p.data = m.data.data() + r * row_data_bytes(m.format, m.cols);
  p.tensor_scale = m.tensor_scale;
  p.group = m.group;
  switch (t.scale_layout) {
    case ScaleLayout::kPerBlock:
      p.scales = m.scales.data() + r * (m.cols / t.block_elems) * t.scale_bytes;
      break;
    case ScaleLayout::kPerGroup:
      p.scales = m.scales.data() + r * (m.cols / m.group) * t.scale_bytes;
      if (t.has_zero_points) p.zeros = m.zeros.data() + r * (m.cols / m.group);
      break;
    case ScaleLayout::kPerRow:
      p.scales = m.scales.data() + r * t.scale_bytes;
      break;
    case ScaleLayout::kTile128:
      p.scales = m.scales.data() + (r / 128) * ceil_div(m.cols, 128) * t.scale_bytes;
      break;
    default:
      break;
  }
  return p;
}

namespace {
// fn(r0, r1) over [0, rows) in `threads` contiguous ranges (inline when threads ≤ 1).
template <class Fn>
void for_row_ranges(int64_t rows, int threads, Fn fn) {
  const int64_t n = std::clamp<int64_t>(threads, 1, std::max<int64_t>(rows, 1));
  if (n <= 1) return fn(int64_t(0), rows);
  std::vector<std::thread> pool;
  pool.reserve(size_t(n));
  for (int64_t i = 0; i < n; ++i) pool.emplace_back(fn, rows * i / n, rows * (i + 1) / n);
  for (auto& t : pool) t.join();
}
}  // namespace

void dequantize(const QuantMatrix& m, std::span<float> out, int threads) {
  validate(m);
  const auto& t = format_traits(m.format);
  if (int64_t(out.size()) != m.rows * m.cols) {
    fail("{}: output holds {} floats, the matrix has {}", t.name, out.size(), m.rows * m.cols);
  }
  for_row_ranges(m.rows, threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) t.dequantize_ref(row_planes(m, r), out.data() + r * m.cols, m.cols);
  });
}

std::vector<float> dequantize(const QuantMatrix& m, int threads) {
  validate(m);
  std::vector<float> out(static_cast<size_t>(m.rows * m.cols));
  dequantize(m, out, threads);
  return out;
}

std::vector<float> dequantize_row(FormatId format, std::span<const uint8_t> bytes) {
  const auto& t = format_traits(format);
  if (is_split_format(format)) fail("{}: scales live in a separate tensor; use a QuantMatrix", t.name);
  if (bytes.empty() || bytes.size() % size_t(t.block_bytes) != 0) {
    fail("{}: {} bytes is not a whole number of {}-byte blocks", t.name, bytes.size(), t.block_bytes);
  }
  const int64_t n = int64_t(bytes.size() / size_t(t.block_bytes)) * t.block_elems;
  std::vector<float> out(static_cast<size_t>(n));
  t.dequantize_ref(ConstRowPlanes{bytes.data()}, out.data(), n);
  return out;
}

OwnedQuantMatrix quantize(FormatId format, std::span<const float> x, int64_t rows, int64_t cols, int32_t group,
                          int threads) {
  const auto& t = format_traits(format);
  if (t.is_activation_only && format != FormatId::Q8_1 && format != FormatId::Q8_K) {
    fail("{} is not a weight format", t.name);
  }
  check_row_length(format, cols, group);
  if (int64_t(x.size()) != checked_mul(rows, cols, "element count")) {
    fail("{}: got {} values for a {}×{} matrix", t.name, x.size(), rows, cols);
  }
  OwnedQuantMatrix m;
  m.format = format;
  m.rows = rows;
  m.cols = cols;
  m.group = group;
  m.data.resize(size_t(rows * row_data_bytes(format, cols)));
  m.scales.resize(size_t(scale_plane_bytes(format, rows, cols, group)));
  m.zeros.resize(size_t(zero_plane_bytes(format, rows, cols, group)));
  if (t.needs_tensor_scale) {
    float amax = 0.0f;
    for (float v : x) amax = std::fmax(amax, std::fabs(v));
    m.tensor_scale = format == FormatId::NVFP4_CKPT ? nvfp4_ckpt_tensor_scale(amax) : fp8_e4m3_tensor_scale(amax);
  }
  if (t.scale_layout == ScaleLayout::kTile128) {
    // A tile's scale spans 128 rows, so it is computed here before the row quantizers
    // (which read it from the scales plane): amax(tile) / 448, 1 for an all-zero tile.
    const int64_t tiles_per_row = ceil_div(cols, 128);
    std::vector<float> amax(size_t(ceil_div(rows, 128) * tiles_per_row), 0.0f);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        float& a = amax[size_t((r / 128) * tiles_per_row + c / 128)];
        a = std::fmax(a, std::fabs(x[size_t(r * cols + c)]));
      }
    }
    for (size_t i = 0; i < amax.size(); ++i) {
      const float s = amax[i] > 0.0f ? fp8_e4m3_tensor_scale(amax[i]) : 1.0f;
      std::memcpy(m.scales.data() + i * sizeof(float), &s, sizeof s);
    }
  }
  const QuantMatrix v = m.view();
  for_row_ranges(rows, threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const ConstRowPlanes c = row_planes(v, r);
      RowPlanes p{const_cast<void*>(c.data), const_cast<void*>(c.scales), const_cast<void*>(c.zeros),
                  c.tensor_scale, c.group};
      t.quantize_ref(x.data() + r * cols, p, cols);
    }
  });
  return m;
}

}  // namespace imp
