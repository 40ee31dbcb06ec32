#include "io/tensor_source.h"

#include "common/error.h"

namespace imp {

int64_t TensorSource::elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

QuantMatrix TensorSource::matrix() const {
  if (shape.empty()) fail("{}: a scalar tensor is not a matrix", name);
  if (layout != StoredLayout::kCanonical) {
    fail("{} ({}): stored in a checkpoint packing ({}); repack it to {} first", name, file,
         note.empty() ? "non-canonical" : note, format_name(format));
  }
  QuantMatrix m;
  m.format = format;
  m.cols = shape.back();
  m.rows = elements() / (m.cols ? m.cols : 1);
  m.data = data;
  m.scales = scales;
  m.zeros = zeros;
  m.tensor_scale = tensor_scale;
  m.group = group;
  try {
    validate(m);
  } catch (const Error& e) {
    fail("{} ({}): {}", name, file, e.what());
  }
  return m;
}

TensorSource TensorSource::slice_outer(int64_t i) const {
  if (shape.size() < 3) fail("{}: slice_outer needs a tensor of 3 or more dims", name);
  if (i < 0 || i >= shape[0]) fail("{}: slice {} out of range [0, {})", name, i, shape[0]);
  const QuantMatrix whole = matrix();  // validates every plane against the full shape
  const int64_t n = shape[0];
  const auto cut = [&](std::span<const uint8_t> plane, const char* what) {
    if (plane.size() % size_t(n) != 0) fail("{}: {} plane of {} bytes does not split into {} slices", name, what, plane.size(), n);
    const size_t per = plane.size() / size_t(n);
    return plane.subspan(size_t(i) * per, per);
  };
  TensorSource s = *this;
  s.name = name + "[" + std::to_string(i) + "]";
  s.shape.erase(s.shape.begin());
  const int64_t rows = whole.rows / n;
  if (format_traits(format).scale_layout == ScaleLayout::kTile128 && rows % 128 != 0) {
    fail("{}: {} rows per slice do not align with 128-row scale tiles", name, rows);
  }
  s.data = cut(data, "data");
  s.scales = scales.empty() || format_traits(format).scale_layout == ScaleLayout::kPerTensor ? scales : cut(scales, "scales");
  s.zeros = zeros.empty() ? zeros : cut(zeros, "zeros");
  return s;
}

}  // namespace imp
