// AutoAWQ GEMM loader and repack (layout in io/schemes/gptq.h).
#include <cstring>

#include "common/error.h"
#include "io/schemes/gptq.h"
#include "io/schemes/scheme.h"

namespace imp {
namespace {

// Column 8c + j lives in nibble slot kAwqSlot[j] of word c (AutoAWQ's pack order
// [0, 2, 4, 6, 1, 3, 5, 7] inverted).
constexpr int kAwqSlot[8] = {0, 4, 1, 5, 2, 6, 3, 7};

uint32_t nibble(std::span<const uint8_t> plane, int64_t word_index, int64_t col) {
  uint32_t w;
  std::memcpy(&w, plane.data() + 4 * word_index, 4);
  return (w >> (4 * kAwqSlot[col % 8])) & 15u;
}

}  // namespace

OwnedQuantMatrix repack_awq_to_int4_group(const TensorSource& s) {
  if (s.layout != StoredLayout::kAwqGemm) fail("{}: not stored in AWQ GEMM layout", s.name);
  if (s.shape.size() != 2) fail("{}: AWQ weight must be 2-D", s.name);
  const int64_t n_out = s.shape[0], n_in = s.shape[1];
  check_row_length(FormatId::INT4_GROUP, n_in, s.group);
  if (n_out % 8 != 0) fail("{}: AWQ output size {} is not a multiple of 8", s.name, n_out);
  const int64_t n_groups = n_in / s.group, words = n_out / 8;
  const auto check = [&](const char* plane, size_t have, int64_t want) {
    if (int64_t(have) != want) fail("{} ({}): {} plane holds {} bytes, the shape needs {}", s.name, s.file, plane, have, want);
  };
  check("qweight", s.data.size(), n_in * words * 4);
  check("qzeros", s.zeros.size(), n_groups * words * 4);
  check("scales", s.scales.size(), n_groups * n_out * 2);
  OwnedQuantMatrix m;
  m.format = FormatId::INT4_GROUP;
  m.rows = n_out;
  m.cols = n_in;
  m.group = s.group;
  m.data.assign(size_t(n_out * n_in / 2), 0);
  m.scales.resize(size_t(n_out * n_groups * 2));
  m.zeros.resize(size_t(n_out * n_groups));
  for (int64_t n = 0; n < n_out; ++n) {
    uint8_t* row = m.data.data() + n * (n_in / 2);
    for (int64_t k = 0; k < n_in; ++k) {
      const uint32_t q = nibble(s.data, k * words + n / 8, n);
      row[k / 2] |= uint8_t(k % 2 ? q << 4 : q);
    }
    for (int64_t g = 0; g < n_groups; ++g) {
      m.zeros[size_t(n * n_groups + g)] = uint8_t(nibble(s.zeros, g * words + n / 8, n));
      std::memcpy(m.scales.data() + 2 * (n * n_groups + g), s.scales.data() + 2 * (g * n_out + n), 2);
    }
  }
  return m;
}

void load_awq(SchemeContext& ctx, const std::string& module) {
  const auto& qw = ctx.need(module + ".qweight", {StDtype::I32}, "AWQ qweight");
  const auto& qz = ctx.need(module + ".qzeros", {StDtype::I32}, "AWQ qzeros");
  const auto& sc = ctx.need(module + ".scales", {StDtype::F16}, "AWQ scales");
  if (qw.shape.size() != 2) fail_tensor(qw, "AWQ qweight must be 2-D [in, out/8]");
  const int64_t n_in = qw.shape[0], n_out = qw.shape[1] * 8;
  const int64_t group = ctx.quant.group_size > 0 ? ctx.quant.group_size : n_in;
  if (group % 32 != 0 || n_in % group != 0) {
    fail_tensor(qw, fmt::format("AWQ group size {} must be a multiple of 32 dividing the input size {}", group, n_in));
  }
  ctx.expect_shape(qz, {n_in / group, n_out / 8}, "AWQ qzeros");
  ctx.expect_shape(sc, {n_in / group, n_out}, "AWQ scales");
  TensorSource s = ctx.source_for(qw, module + ".weight", FormatId::INT4_GROUP);
  s.shape = {n_out, n_in};
  s.scales = sc.data;
  s.zeros = qz.data;
  s.group = int32_t(group);
  s.layout = StoredLayout::kAwqGemm;
  s.note = "awq gemm packed [in, out/8] interleaved";
  ctx.add(std::move(s));
}

}  // namespace imp
