// GPTQ v1 / v2 loader and repack (layout in io/schemes/gptq.h).
#include "io/schemes/gptq.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "common/error.h"
#include "io/schemes/scheme.h"

namespace imp {
namespace {

uint32_t word(std::span<const uint8_t> plane, int64_t i) {
  uint32_t w;
  std::memcpy(&w, plane.data() + 4 * i, 4);
  return w;
}

int32_t i32_at(std::span<const uint8_t> plane, int64_t i) {
  int32_t v;
  std::memcpy(&v, plane.data() + 4 * i, 4);
  return v;
}

void check_size(const TensorSource& s, const char* plane, size_t have, int64_t want) {
  if (int64_t(have) != want) fail("{} ({}): {} plane holds {} bytes, the shape needs {}", s.name, s.file, plane, have, want);
}

}  // namespace

Int4Repacked repack_gptq_to_int4_group(const TensorSource& s) {
  if (s.layout != StoredLayout::kGptqV1 && s.layout != StoredLayout::kGptqV2) {
    fail("{}: not stored in GPTQ layout", s.name);
  }
  if (s.shape.size() != 2) fail("{}: GPTQ weight must be 2-D", s.name);
  const int64_t n_out = s.shape[0], n_in = s.shape[1], group = s.group;
  check_row_length(FormatId::INT4_GROUP, n_in, s.group);
  if (n_out % 8 != 0) fail("{}: GPTQ output size {} is not a multiple of 8", s.name, n_out);
  const int64_t n_groups = n_in / group;
  check_size(s, "qweight", s.data.size(), n_in / 8 * n_out * 4);
  check_size(s, "qzeros", s.zeros.size(), n_groups * n_out / 8 * 4);
  check_size(s, "scales", s.scales.size(), n_groups * n_out * 2);
  Int4Repacked r;
  std::vector<int32_t> perm(static_cast<size_t>(n_in));
  std::iota(perm.begin(), perm.end(), 0);
  if (!s.g_idx.empty()) {
    check_size(s, "g_idx", s.g_idx.size(), n_in * 4);
    std::vector<int32_t> g(static_cast<size_t>(n_in));
    bool natural = true;
    for (int64_t k = 0; k < n_in; ++k) {
      g[size_t(k)] = i32_at(s.g_idx, k);
      if (g[size_t(k)] < 0 || g[size_t(k)] >= n_groups) fail("{}: g_idx[{}] = {} is outside [0, {})", s.name, k, g[size_t(k)], n_groups);
      natural &= g[size_t(k)] == k / group;
    }
    if (!natural) {
      std::stable_sort(perm.begin(), perm.end(), [&](int32_t a, int32_t b) { return g[size_t(a)] < g[size_t(b)]; });
      for (int64_t j = 0; j < n_in; ++j) {
        if (g[size_t(perm[size_t(j)])] != j / group) {
          fail("{}: act-order g_idx does not give every group exactly {} inputs", s.name, group);
        }
      }
      r.input_perm = perm;
    }
  }
  OwnedQuantMatrix& m = r.matrix;
  m.format = FormatId::INT4_GROUP;
  m.rows = n_out;
  m.cols = n_in;
  m.group = int32_t(group);
  m.data.assign(size_t(n_out * n_in / 2), 0);
  m.scales.resize(size_t(n_out * n_groups * 2));
  m.zeros.resize(size_t(n_out * n_groups));
  const uint32_t zero_add = s.layout == StoredLayout::kGptqV1 ? 1 : 0;
  for (int64_t n = 0; n < n_out; ++n) {
    uint8_t* row = m.data.data() + n * (n_in / 2);
    for (int64_t j = 0; j < n_in; ++j) {
      const int64_t k = perm[size_t(j)];
      const uint32_t q = (word(s.data, (k / 8) * n_out + n) >> (4 * (k % 8))) & 15u;
      row[j / 2] |= uint8_t(j % 2 ? q << 4 : q);
    }
    for (int64_t gi = 0; gi < n_groups; ++gi) {
      const uint32_t z = (word(s.zeros, gi * (n_out / 8) + n / 8) >> (4 * (n % 8))) & 15u;
      m.zeros[size_t(n * n_groups + gi)] = uint8_t((z + zero_add) & 15u);
      std::memcpy(m.scales.data() + 2 * (n * n_groups + gi), s.scales.data() + 2 * (gi * n_out + n), 2);
    }
  }
  return r;
}

void load_gptq(SchemeContext& ctx, const std::string& module) {
  const auto& qw = ctx.need(module + ".qweight", {StDtype::I32}, "GPTQ qweight");
  const auto& qz = ctx.need(module + ".qzeros", {StDtype::I32}, "GPTQ qzeros");
  const auto& sc = ctx.need(module + ".scales", {StDtype::F16}, "GPTQ scales");
  const auto* gi = ctx.opt(module + ".g_idx", {StDtype::I32}, "GPTQ g_idx");
  if (qw.shape.size() != 2) fail_tensor(qw, "GPTQ qweight must be 2-D [in/8, out]");
  const int64_t n_in = qw.shape[0] * 8, n_out = qw.shape[1];
  const int64_t group = ctx.quant.group_size > 0 ? ctx.quant.group_size : n_in;
  if (group % 32 != 0 || n_in % group != 0) {
    fail_tensor(qw, fmt::format("GPTQ group size {} must be a multiple of 32 dividing the input size {}", group, n_in));
  }
  if (n_out % 8 != 0) fail_tensor(qw, fmt::format("GPTQ output size {} is not a multiple of 8", n_out));
  const int64_t n_groups = n_in / group;
  ctx.expect_shape(qz, {n_groups, n_out / 8}, "GPTQ qzeros");
  ctx.expect_shape(sc, {n_groups, n_out}, "GPTQ scales");
  TensorSource s = ctx.source_for(qw, module + ".weight", FormatId::INT4_GROUP);
  s.shape = {n_out, n_in};
  s.scales = sc.data;
  s.zeros = qz.data;
  s.group = int32_t(group);
  s.layout = ctx.quant.gptq_version == 2 ? StoredLayout::kGptqV2 : StoredLayout::kGptqV1;
  s.note = fmt::format("gptq v{} packed [in/8, out]", ctx.quant.gptq_version);
  if (gi) {
    ctx.expect_shape(*gi, {n_in}, "GPTQ g_idx");
    bool natural = true;
    for (int64_t k = 0; k < n_in; ++k) {
      const int32_t g = i32_at(gi->data, k);
      if (g < 0 || g >= n_groups) fail_tensor(*gi, fmt::format("g_idx[{}] = {} is outside [0, {})", k, g, n_groups));
      natural &= g == k / group;
    }
    if (!natural) {
      s.g_idx = gi->data;
      s.note += ", act-order";
    }
  }
  ctx.add(std::move(s));
}

}  // namespace imp
