// GEMV kernel registry, selection (with every rejection reason), the
// IMP_CUDA_DISABLE_KERNELS kill list, plane sizes and the device dequantization entry.
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "backends/cuda/gemv_mma_layout.h"
#include "backends/cuda/gemv_registry.h"
#include "common/error.h"
#include "formats/quant_matrix.h"
#include "formats/traits.h"

namespace imp::cuda {
namespace {

int64_t mul_checked(int64_t a, int64_t b, const char* what) {
  if (a < 0 || b < 0 || (a != 0 && b > std::numeric_limits<int64_t>::max() / a)) {
    fail("{} overflows: {} × {}", what, a, b);
  }
  return a * b;
}

bool splits(FormatId f) { return f == FormatId::Q4_0 || f == FormatId::Q8_0 || f == FormatId::Q6_K; }

int split_payload_bytes(FormatId f) { return format_traits(f).block_bytes - 2; }

const std::vector<GemvKernel>& registry() {
  static const std::vector<GemvKernel> all = [] {
    std::vector<GemvKernel> v;
    for (auto family : {detail::mma_gemv_kernels(), detail::dp4a_gemv_kernels(), detail::float_gemv_kernels(), detail::gguf_gemv_kernels(), detail::fp4_gemv_kernels(),
                        detail::fp8_gemv_kernels(), detail::gguf_stage_gemv_kernels(), detail::int4_gemv_kernels()}) {
      v.insert(v.end(), family.begin(), family.end());
    }
    return v;
  }();
  return all;
}

// IMP_CUDA_DISABLE_KERNELS=name1,name2 (whitespace around names ignored).
bool disabled_by_env(std::string_view name) {
  const char* env = std::getenv("IMP_CUDA_DISABLE_KERNELS");
  if (!env) return false;
  std::string_view list(env);
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item == name) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

std::string_view layout_name(WeightLayout l) {
  return l == WeightLayout::kSplit ? "split" : l == WeightLayout::kMma ? "mma" : "native";
}

void require_mma_layout(FormatId format, int64_t cols) {
  const int u = mma_layout::unit_cols(format);
  if (u == 0) fail("{} has no mma layout (only q4_0, q4_k, q5_k, q6_k, q8_0, nvfp4_ckpt, mxfp4_ckpt)", format_name(format));
  if (cols % u != 0) fail("{} mma layout needs cols % {} == 0, got {}", format_name(format), u, cols);
}

// Shape and plane checks shared by every kernel and by dequantize(): throws.
void validate_matrix(const DeviceMatrix& w) {
  if (!gemv_supports(w.format)) fail("CUDA GEMV: format {} is not supported", format_name(w.format));
  if (w.rows <= 0) fail("CUDA GEMV: {} matrix needs at least one row, got {}", format_name(w.format), w.rows);
  check_row_length(w.format, w.cols, w.group);
  if (w.cols > std::numeric_limits<int32_t>::max()) fail("CUDA GEMV: cols {} exceeds 2^31 − 1", w.cols);
  (void)device_data_bytes(w.format, w.layout, w.rows, w.cols);
  if (!w.data) fail("CUDA GEMV: {} data pointer is null", format_name(w.format));
  if (device_scale_bytes(w.format, w.layout, w.rows, w.cols, w.group) > 0 && !w.scales) {
    fail("CUDA GEMV: {} ({} layout) needs a scales plane, got null", format_name(w.format), layout_name(w.layout));
  }
  if (device_zero_bytes(w.format, w.rows, w.cols, w.group) > 0 && !w.zeros) {
    fail("CUDA GEMV: {} needs a zero-point plane, got null", format_name(w.format));
  }
}

}  // namespace

namespace detail {

KernelArgs make_args(const DeviceMatrix& w, const float* x, float* y, GemvOut out) {
  KernelArgs a;
  a.add_to_y = out == GemvOut::kAdd ? 1 : 0;
  a.data = static_cast<const uint8_t*>(w.data);
  a.scales = static_cast<const uint8_t*>(w.scales);
  a.x = x;
  a.y = y;
  a.rows = w.rows;
  a.cols = w.cols;
  a.data_row_bytes = device_data_bytes(w.format, w.layout, 1, w.cols);
  // FP8_E4M3_BLOCK128: the stride of one *tile row* (128 matrix rows) of the scale plane.
  a.scale_row_bytes = w.format == FormatId::FP8_E4M3_BLOCK128 ? device_scale_bytes(w.format, w.layout, 1, w.cols)
                                                              : device_scale_bytes(w.format, w.layout, 1, w.cols, w.group);
  a.tensor_scale = w.tensor_scale;
  a.zeros = static_cast<const uint8_t*>(w.zeros);
  a.zero_row_bytes = device_zero_bytes(w.format, 1, w.cols, w.group);
  a.group = w.group;
  return a;
}

KernelCheck check_aligned(const void* p, int bytes, const char* what) {
  if (reinterpret_cast<uintptr_t>(p) % uintptr_t(bytes) != 0) {
    return {false, fmt::format("{} pointer is not {}-byte aligned", what, bytes)};
  }
  return {true, {}};
}

KernelCheck check_cols_multiple(int64_t cols, int64_t m, const char* why) {
  if (cols % m != 0) return {false, fmt::format("cols {} is not a multiple of {} ({})", cols, m, why)};
  return {true, {}};
}

KernelCheck all_of(std::initializer_list<KernelCheck> checks) {
  KernelCheck out{true, {}};
  for (const auto& c : checks) {
    if (!c.ok) {
      out.ok = false;
      out.reason += out.reason.empty() ? c.reason : "; " + c.reason;
    }
  }
  return out;
}

}  // namespace detail

bool gemv_supports(FormatId f) {
  switch (f) {
    case FormatId::BF16:
    case FormatId::F16:
    case FormatId::Q4_0:
    case FormatId::Q4_1:
    case FormatId::Q5_0:
    case FormatId::Q5_1:
    case FormatId::Q8_0:
    case FormatId::Q2_K:
    case FormatId::Q3_K:
    case FormatId::Q4_K:
    case FormatId::Q5_K:
    case FormatId::Q6_K:
    case FormatId::IQ4_NL:
    case FormatId::IQ4_XS:
    case FormatId::MXFP4:
    case FormatId::NVFP4:
    case FormatId::NVFP4_CKPT:
    case FormatId::MXFP4_CKPT:
    case FormatId::FP8_E4M3_TENSOR:
    case FormatId::FP8_E4M3_CHANNEL:
    case FormatId::FP8_E4M3_BLOCK128:
    case FormatId::INT4_GROUP:
      return true;
    default:
      return false;
  }
}

int64_t device_data_bytes(FormatId format, WeightLayout layout, int64_t rows, int64_t cols) {
  const int64_t native = mul_checked(rows, row_data_bytes(format, cols), "CUDA data plane");
  if (layout == WeightLayout::kNative) return native;
  if (layout == WeightLayout::kMma) {
    require_mma_layout(format, cols);
    return mul_checked(rows, cols * mma_layout::code_bits(format) / 8, "CUDA mma payload plane");
  }
  if (!splits(format)) fail("{} has no split layout (only q4_0, q8_0, q6_k)", format_name(format));
  return mul_checked(mul_checked(rows, cols / format_traits(format).block_elems, "block count"),
                     split_payload_bytes(format), "CUDA payload plane");
}

int64_t device_scale_bytes(FormatId format, WeightLayout layout, int64_t rows, int64_t cols, int32_t group) {
  if (layout == WeightLayout::kMma) {
    require_mma_layout(format, cols);
    if (format == FormatId::Q4_0 || format == FormatId::Q8_0) {
      return mul_checked(mul_checked(rows, cols / 32, "block count"), 2, "CUDA d plane");
    }
    if (format == FormatId::Q4_K || format == FormatId::Q5_K) {
      return mul_checked(mul_checked(rows, cols / 256, "superblock count"), 16, "CUDA K-quant header plane");
    }
    if (format == FormatId::Q6_K) return mul_checked(mul_checked(rows, cols / 128, "unit count"), 16, "CUDA Q6_K scale slot plane");
    return scale_plane_bytes(format, rows, cols, group);
  }
  if (layout == WeightLayout::kSplit) {
    if (!splits(format)) fail("{} has no split layout (only q4_0, q8_0, q6_k)", format_name(format));
    return mul_checked(mul_checked(rows, cols / format_traits(format).block_elems, "block count"), 2, "CUDA d plane");
  }
  if (format_traits(format).scale_layout == ScaleLayout::kPerGroup && group <= 0) {
    fail("{} needs a positive group size, got {}", format_name(format), group);
  }
  // The per-tensor scale travels in DeviceMatrix::tensor_scale, not in a plane.
  if (format_traits(format).scale_layout == ScaleLayout::kPerTensor) return 0;
  return scale_plane_bytes(format, rows, cols, group);
}

int64_t device_zero_bytes(FormatId format, int64_t rows, int64_t cols, int32_t group) {
  if (!format_traits(format).has_zero_points) return 0;
  if (group <= 0) fail("{} needs a positive group size, got {}", format_name(format), group);
  return zero_plane_bytes(format, rows, cols, group);
}

const std::vector<GemvKernel>& gemv_kernels() { return registry(); }

KernelCheck can_implement(const GemvKernel& k, const DeviceMatrix& w, const float* x, const float* y) {
  if (k.format != w.format) return {false, fmt::format("serves {}, not {}", format_name(k.format), format_name(w.format))};
  if (k.layout != w.layout) {
    return {false, fmt::format("needs the {} layout, weights are {}", layout_name(k.layout), layout_name(w.layout))};
  }
  if (disabled_by_env(k.name)) return {false, "disabled by IMP_CUDA_DISABLE_KERNELS"};
  if (!x || !y) return {false, "x or y is null"};
  return k.check(w, x, y);
}

const GemvKernel& select_gemv_kernel(const DeviceMatrix& w, const float* x, const float* y) {
  validate_matrix(w);
  std::string reasons;
  for (const GemvKernel& k : registry()) {
    const KernelCheck c = can_implement(k, w, x, y);
    if (c.ok) return k;
    if (k.format == w.format) reasons += fmt::format("\n  {}: {}", k.name, c.reason);
  }
  fail("CUDA GEMV: no kernel for {} {}×{} ({} layout):{}", format_name(w.format), w.rows, w.cols,
       layout_name(w.layout), reasons);
}

std::string_view gemv(const DeviceMatrix& w, const float* x, float* y, cudaStream_t stream, GemvOut out) {
  const GemvKernel& k = select_gemv_kernel(w, x, y);
  k.launch(w, x, y, stream, out);
  return k.name;
}

void dequantize(const DeviceMatrix& w, float* out, cudaStream_t stream) {
  validate_matrix(w);
  if (!out) fail("CUDA dequantize: output pointer is null");
  if (detail::mma_dequantize(w, out, stream) || detail::float_dequantize(w, out, stream) || detail::gguf_dequantize(w, out, stream) ||
      detail::fp4_dequantize(w, out, stream) || detail::fp8_dequantize(w, out, stream) ||
      detail::gguf_stage_dequantize(w, out, stream) || detail::int4_dequantize(w, out, stream)) {
    return;
  }
  fail("CUDA dequantize: no decoder for {} ({} layout)", format_name(w.format), layout_name(w.layout));
}

}  // namespace imp::cuda
