#include "eval/weight_error.h"

#include <algorithm>
#include <cmath>
#include <fmt/ranges.h>
#include <limits>

#include "common/error.h"
#include "formats/traits.h"

namespace imp::eval {

ErrorSums error_sums(const std::vector<float>& w, const std::vector<float>& r) {
  if (w.size() != r.size()) fail("error_sums: {} values against {}", w.size(), r.size());
  ErrorSums s;
  for (size_t i = 0; i < w.size(); ++i) {
    const double d = double(w[i]) - double(r[i]);
    s.err2 += d * d;
    s.ref2 += double(r[i]) * double(r[i]);
  }
  return s;
}

double rel_rmse(const ErrorSums& s) {
  if (s.ref2 > 0.0) return std::sqrt(s.err2 / s.ref2);
  return s.err2 > 0.0 ? std::numeric_limits<double>::infinity() : 0.0;
}

double snr_db(const ErrorSums& s) {
  if (s.err2 == 0.0) return std::numeric_limits<double>::infinity();
  if (s.ref2 == 0.0) return -std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(s.ref2 / s.err2);
}

WeightReport compare_weights(const ModelFile& model, const ModelFile& ref) {
  WeightReport rep;
  for (const TensorSource& t : model.tensors) {
    const TensorSource* r = ref.find(t.name);
    if (!r) {
      rep.missing_in_ref.push_back(t.name);
      continue;
    }
    if (r->shape != t.shape)
      fail("tensor '{}' has shape [{}] in {} but [{}] in the reference {}", t.name, fmt::join(t.shape, ", "), model.path,
           fmt::join(r->shape, ", "), ref.path);
    std::vector<float> w, rw;
    try {
      w = dequantize(t.matrix());
      rw = dequantize(r->matrix());
    } catch (const Error& e) {
      fail("tensor '{}': {}", t.name, e.what());
    }
    const ErrorSums s = error_sums(w, rw);
    rep.total.err2 += s.err2;
    rep.total.ref2 += s.ref2;
    rep.elements += t.elements();
    rep.bits += 8.0 * double(t.bytes());
    rep.tensors.push_back({t.name, std::string(format_name(t.format)), std::string(format_name(r->format)), t.shape,
                           t.bits_per_weight(), rel_rmse(s), snr_db(s)});
  }
  std::stable_sort(rep.tensors.begin(), rep.tensors.end(),
                   [](const TensorError& a, const TensorError& b) { return a.rel_rmse > b.rel_rmse; });
  return rep;
}

}  // namespace imp::eval
