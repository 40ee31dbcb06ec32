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

}  // namespace imp
